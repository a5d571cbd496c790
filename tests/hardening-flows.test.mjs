// Hardening of the sign-in flows, through the real Worker (wrangler dev / workerd, local D1,
// KV and the Rate Limiting binding) against the Stytch and XWMS fakes:
//
// - single use is spent atomically (D1 `spent` table): concurrent redemptions of one login
//   transaction or one invitation → exactly one success, and the provider is asked once;
// - per-client-network limits (an IPv4 address, an IPv6 /64) on login starts (which call
//   XWMS with the client secret), callbacks and magic-link sends, exact under a concurrent
//   burst; a callback without a login transaction writes no D1 row;
// - Stytch magic links with PKCE: a token taken from someone's mail is refused in the thief's
//   own flow, and still signs the victim in from their own browser; the same for invitations;
// - the cron trigger prunes expired spent keys.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startGatehouse, baseSecrets, Client } from './support/harness.mjs';
import { startFakeStytch } from './support/fake-stytch.mjs';
import { startFakeXwms } from './support/fake-xwms.mjs';

/** The per-network limit of this deployment: small, so that a burst meets it. */
const LIMIT = 5;
const PERIOD = 60;
const XWMS = { clientId: 'gatehouse-client', domain: 'app.example.test', clientSecret: randomBytes(24).toString('base64url') };

let gh;
let stytch;
let xw;
let secrets;
before(async () => {
  [stytch, xw] = await Promise.all([startFakeStytch(), startFakeXwms(XWMS)]);
  secrets = baseSecrets();
  gh = await startGatehouse({
    vars: {
      PROVIDERS: {
        mail: { kind: 'stytch', project_id: stytch.projectId, api_url: stytch.url, display_name: 'Email' },
        xwms: { kind: 'xwms', client_id: XWMS.clientId, domain: XWMS.domain, api_url: xw.url, display_name: 'XWMS' },
      },
    },
    secrets: { ...secrets, PROVIDER_MAIL_SECRET: stytch.secret, PROVIDER_XWMS_SECRET: XWMS.clientSecret },
    rateLimit: { limit: LIMIT, period: PERIOD },
    testScheduled: true,
  });
});
after(async () => {
  await gh?.stop();
  await Promise.all([stytch?.close(), xw?.close()]);
});

/** A client network of its own per call, so that each test meets only the limits it means to. */
let net = 0;
const freshIp = () => { net += 1; return `198.51.${Math.floor(net / 250)}.${(net % 250) + 1}`; };
const authenticateCalls = () => stytch.callsTo('magic_links/authenticate').length;
const sessionKeys = async () => (await gh.kv.list('s:')).length;
const failedEvents = async () => (await gh.d1("SELECT COUNT(*) AS n FROM events WHERE type = 'sign_in_failed'"))[0].n;
const uniqEmail = (who) => `${who}-${randomBytes(4).toString('hex')}@example.com`;

/** Requests a magic link in `browser` (its own network); returns the link the fake "sent". */
async function linkFor(browser, email, ip = freshIp()) {
  const before = stytch.sent.length;
  const r = await browser.fetch(`${gh.url}/auth/magic-link`, {
    method: 'POST',
    headers: { origin: gh.url, 'content-type': 'application/json', 'cf-connecting-ip': ip },
    body: JSON.stringify({ email }),
  });
  assert.equal(r.status, 202, await r.text());
  assert.equal(stytch.sent.length, before + 1);
  return stytch.sent.at(-1).link;
}

/** Sends an invitation through the admin API; returns its link. */
async function invite(email) {
  const r = await fetch(`${gh.url}/admin/magic-links`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secrets.ADMIN_API_KEY}`, 'content-type': 'application/json', 'cf-connecting-ip': freshIp() },
    body: JSON.stringify({ email }),
  });
  assert.equal(r.status, 202, await r.text());
  return stytch.sent.at(-1).link;
}

/**
 * Runs `burst(ip)` (N concurrent requests from one network) and returns its statuses. A burst
 * that straddles the limiter's fixed window (it counts per `PERIOD`-second window of the
 * clock) is run again from a fresh network, so that the count is exact.
 */
async function inOneWindow(burst) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const window = () => Math.floor(Date.now() / (PERIOD * 1000));
    const started = window();
    const statuses = await burst(freshIp());
    if (window() === started) return statuses;
  }
  throw new Error('three bursts in a row straddled a window boundary');
}

const sha256 = (s) => createHash('sha256').update(s).digest('base64url');
const tally = (statuses) => statuses.reduce((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {});

// ---------------------------------------------------------------------------------------
// Single use, spent atomically.

test('ten concurrent callbacks with one browser\'s transaction and link: exactly one signs in, and Stytch is asked once', async () => {
  const victim = new Client();
  const link = await linkFor(victim, uniqEmail('race'));
  const [authBefore, sessionsBefore] = [authenticateCalls(), await sessionKeys()];
  // The same cookie and URL, from ten networks at once (so no rate limit is met).
  const cookie = victim.cookieHeader(gh.url);
  const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(link, {
    redirect: 'manual', headers: { cookie, 'cf-connecting-ip': freshIp() },
  })));
  const statuses = answers.map((r) => r.status);
  assert.deepEqual(tally(statuses), { 302: 1, 400: 9 }, JSON.stringify(statuses));
  const refused = await Promise.all(answers.filter((r) => r.status === 400).map((r) => r.json()));
  assert.ok(refused.every((b) => b.error === 'invalid_login_transaction'), JSON.stringify(refused));
  assert.equal(authenticateCalls(), authBefore + 1, 'only the one that spent the transaction reached Stytch');
  assert.equal(await sessionKeys(), sessionsBefore + 1, 'one session');
  const spent = await gh.d1("SELECT key FROM spent WHERE key LIKE 'txn:%'");
  const state = new URL(link).searchParams.get('gh_state');
  assert.ok(spent.some((r) => r.key === `txn:${sha256(state)}`), 'spent by hash');
  assert.ok(spent.every((r) => !r.key.includes(state)), 'the state itself is not stored');
});

test('the same invitation confirmed ten times at once: exactly one sign-in', async () => {
  const link = await invite(uniqEmail('invitee'));
  const [authBefore, sessionsBefore] = [authenticateCalls(), await sessionKeys()];
  const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(link, {
    method: 'POST', redirect: 'manual', headers: { origin: gh.url, 'cf-connecting-ip': freshIp() },
  })));
  const statuses = answers.map((r) => r.status);
  assert.deepEqual(tally(statuses), { 302: 1, 400: 9 }, JSON.stringify(statuses));
  assert.equal(authenticateCalls(), authBefore + 1);
  assert.equal(await sessionKeys(), sessionsBefore + 1);
  // Spent: its page no longer offers it.
  const page = await fetch(link, { headers: { 'cf-connecting-ip': freshIp() } });
  assert.equal(page.status, 400);
  assert.equal((await page.json()).error, 'invalid_login_transaction');
});

test('a transaction or invitation that KV still shows after its use is not spent twice (KV is eventually consistent)', async () => {
  // At the edge a KV read can return a value for up to 60 s after it was deleted elsewhere:
  // a get-then-delete lets a replay through. Here the stale copy is written back by hand.
  const browser = new Client();
  const link = await linkFor(browser, uniqEmail('stale'));
  const txnKey = `t:${sha256(new URL(link).searchParams.get('gh_state'))}`;
  const txnValue = await gh.kv.get(txnKey);
  assert.ok(txnValue, 'the transaction is in KV');
  const invitation = await invite(uniqEmail('stale-invitee'));
  const invKey = `ti:${sha256(new URL(invitation).searchParams.get('gh_invite'))}`;
  const invValue = await gh.kv.get(invKey);
  assert.ok(invValue, 'the invitation is in KV');

  const cookie = browser.cookieHeader(gh.url);
  const callback = () => fetch(link, { redirect: 'manual', headers: { cookie, 'cf-connecting-ip': freshIp() } });
  const confirm = () => fetch(invitation, { method: 'POST', redirect: 'manual', headers: { origin: gh.url, 'cf-connecting-ip': freshIp() } });
  assert.equal((await callback()).status, 302);
  assert.equal((await confirm()).status, 302);
  const authBefore = authenticateCalls();
  await gh.kv.put(txnKey, txnValue.trim());
  await gh.kv.put(invKey, invValue.trim());
  for (const replay of [callback, confirm]) {
    const r = await replay();
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error, 'invalid_login_transaction');
  }
  assert.equal(authenticateCalls(), authBefore, 'a replay never reaches Stytch');
});

test('the cron trigger forgets spent keys once they have expired, and keeps live ones', async () => {
  const now = Math.floor(Date.now() / 1000);
  const tag = randomBytes(4).toString('hex');
  await gh.d1(`INSERT INTO spent (key, expires_at) VALUES ('txn:old-${tag}', ${now - 10}), ('inv:live-${tag}', ${now + 3600})`);
  const r = await fetch(`${gh.url}/__scheduled?cron=${encodeURIComponent('17 3 * * *')}`);
  assert.equal(r.status, 200);
  assert.ok(await gh.waitForLog(/pruned \d+ spent single-use keys/), gh.logs());
  const left = (await gh.d1(`SELECT key FROM spent WHERE key LIKE '%-${tag}'`)).map((x) => x.key);
  assert.deepEqual(left, [`inv:live-${tag}`]);
});

test('the cron trigger prunes expired invitations (accepted or not) and refresh tokens of expired families, and keeps live ones', async () => {
  const now = Math.floor(Date.now() / 1000);
  const tag = randomBytes(4).toString('hex');
  const user = `usr_${tag}`;
  const client = `app_${tag}`;
  await gh.d1(`INSERT INTO users (id, created_at, updated_at) VALUES ('${user}', ${now}, ${now})`);
  await gh.d1(`INSERT INTO clients (id, name, type, created_at, updated_at) VALUES ('${client}', 'App', 'public', ${now}, ${now})`);
  const invitation = (id, expiresAt, usedAt = 'NULL') => `('${id}-${tag}', 'h-${id}-${tag}', '/', ${now - 86400}, ${expiresAt}, ${usedAt})`;
  await gh.d1(`INSERT INTO invitations (id, token_hash, return_to, created_at, expires_at, used_at) VALUES ${[
    invitation('old', now - 10), invitation('old-accepted', now - 10, now - 20),
    invitation('live', now + 3600), invitation('live-accepted', now + 3600, now - 20),
  ].join(', ')}`);
  const token = (hash, family, expiresAt, usedAt = 'NULL') => `('${hash}-${tag}', '${family}-${tag}', '${client}', '${user}', '', ${now - 100}, ${expiresAt}, ${usedAt})`;
  await gh.d1(`INSERT INTO oauth_refresh_tokens (hash, family, client_id, user_id, grant_data, created_at, expires_at, used_at) VALUES ${[
    token('dead-1', 'dead', now - 50, now - 60), token('dead-2', 'dead', now - 5),
    token('live-1', 'live', now - 50, now - 60), token('live-2', 'live', now + 3600),
  ].join(', ')}`);
  const mark = gh.mark();
  const r = await fetch(`${gh.url}/__scheduled?cron=${encodeURIComponent('17 3 * * *')}`);
  assert.equal(r.status, 200);
  assert.ok(await gh.waitForLog(/gatehouse: pruned [1-9]\d* expired refresh tokens/, { since: mark }), gh.logs());
  assert.match(gh.logs().slice(mark), /gatehouse: pruned [1-9]\d* expired invitations/);
  const invitations = (await gh.d1(`SELECT id FROM invitations WHERE id LIKE '%-${tag}'`)).map((x) => x.id).sort();
  assert.deepEqual(invitations, [`live-${tag}`, `live-accepted-${tag}`].sort());
  const tokens = (await gh.d1(`SELECT hash FROM oauth_refresh_tokens WHERE family LIKE '%-${tag}' ORDER BY hash`)).map((x) => x.hash);
  assert.deepEqual(tokens, [`live-1-${tag}`, `live-2-${tag}`], 'a rotated token stays while its family lives');
});

// ---------------------------------------------------------------------------------------
// Rate limits per client network.

test('login starts: a concurrent burst from one network gets exactly the limit, and XWMS is called only that often', async () => {
  const burst = 4 * LIMIT;
  const before = xw.callsTo('sign-token').length;
  const statuses = await inOneWindow((ip) => Promise.all(Array.from({ length: burst }, () => fetch(`${gh.url}/auth/login?provider=xwms`, {
    redirect: 'manual', headers: { 'cf-connecting-ip': ip },
  }).then(async (r) => { await r.arrayBuffer(); return r.status; }))));
  assert.deepEqual(tally(statuses), { 302: LIMIT, 429: burst - LIMIT }, JSON.stringify(statuses));
  // (inOneWindow may have run the burst more than once; each run called XWMS LIMIT times.)
  const called = xw.callsTo('sign-token').length - before;
  assert.equal(called % LIMIT, 0);
  assert.ok(called >= LIMIT && called <= 3 * LIMIT, `XWMS called ${called} times`);
});

test('an IPv6 client is limited per /64: another address in it shares the limit, the next /64 does not', async () => {
  await inOneWindow(async () => {
    const prefix = `2001:db8:${(net += 1).toString(16)}`;
    const start = (ip) => fetch(`${gh.url}/auth/login?provider=mail`, { headers: { 'cf-connecting-ip': ip } }).then(async (r) => { await r.arrayBuffer(); return r.status; });
    const results = [];
    for (let i = 0; i < LIMIT; i++) results.push(await start(`${prefix}:1::${i + 1}`));
    assert.deepEqual(results, Array(LIMIT).fill(200));
    assert.equal(await start(`${prefix}:1:ffff:ffff:ffff:ffff`), 429, 'same /64');
    assert.equal(await start(`${prefix}:2::1`), 200, 'the next /64');
    return results;
  });
});

test('Pseudo IPv4: one IPv6 /64 showing up as many class E addresses is still one network', async () => {
  await inOneWindow(async () => {
    const prefix = `2001:db8:${(net += 1).toString(16)}`;
    const start = (v4, v6) => fetch(`${gh.url}/auth/login?provider=mail`, {
      headers: { 'cf-connecting-ip': v4, 'cf-connecting-ipv6': v6 },
    }).then(async (r) => { await r.arrayBuffer(); return r.status; });
    const results = [];
    for (let i = 0; i < LIMIT; i++) results.push(await start(`240.${net % 250}.0.${i + 1}`, `${prefix}:1::${i + 1}`));
    assert.deepEqual(results, Array(LIMIT).fill(200));
    assert.equal(await start(`255.${net % 250}.9.9`, `${prefix}:1:ffff::1`), 429, 'another pseudo address, same /64');
    assert.equal(await start(`240.${net % 250}.0.1`, `${prefix}:2::1`), 200, 'the next /64');
    return results;
  });
});

test('callbacks without a login transaction: limited per network, and none of them writes a D1 row', async () => {
  const burst = 4 * LIMIT;
  const eventsBefore = await failedEvents();
  const statuses = await inOneWindow((ip) => Promise.all(Array.from({ length: burst }, (_, i) => fetch(
    `${gh.url}/auth/callback/xwms?gh_state=forged-${i}&token=t${i}`,
    { headers: { 'cf-connecting-ip': ip } },
  ).then(async (r) => { await r.arrayBuffer(); return r.status; }))));
  assert.deepEqual(tally(statuses), { 400: LIMIT, 429: burst - LIMIT }, JSON.stringify(statuses));
  assert.equal(await failedEvents(), eventsBefore, 'no row for a callback that carries no transaction');
  assert.equal(xw.callsTo('sign-token-verify').length, 0, 'no token was verified');
  assert.ok(/login transaction: No sign-in was started/.test(gh.logs()), 'the refusal is logged');
});

test('a failed sign-in after a spent transaction is still audited', async () => {
  const browser = new Client();
  const link = new URL(await linkFor(browser, uniqEmail('audited')));
  const before = await failedEvents();
  link.searchParams.set('token', 'not-a-token-stytch-issued');
  const r = await browser.fetch(link.toString(), { headers: { 'cf-connecting-ip': freshIp() } });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error, 'provider_error');
  assert.equal(await failedEvents(), before + 1);
});

test('magic-link sends: a concurrent burst from one network sends exactly the limit', async () => {
  const burst = 4 * LIMIT;
  const sentBefore = stytch.sent.length;
  const statuses = await inOneWindow((ip) => Promise.all(Array.from({ length: burst }, () => fetch(`${gh.url}/auth/magic-link`, {
    method: 'POST',
    headers: { origin: gh.url, 'content-type': 'application/json', 'cf-connecting-ip': ip },
    body: JSON.stringify({ email: uniqEmail('burst') }),
  }).then(async (r) => { await r.arrayBuffer(); return r.status; }))));
  assert.deepEqual(tally(statuses), { 202: LIMIT, 429: burst - LIMIT }, JSON.stringify(statuses));
  const sent = stytch.sent.length - sentBefore;
  assert.equal(sent % LIMIT, 0);
  assert.ok(sent >= LIMIT && sent <= 3 * LIMIT, `${sent} links sent`);
});

// ---------------------------------------------------------------------------------------
// Stytch magic links with PKCE.

test('stytch PKCE: the token of a link taken from the victim\'s mail is refused in the thief\'s own flow; the victim\'s browser still signs in', async () => {
  const victimEmail = uniqEmail('victim');
  const victim = new Client();
  const victimLink = await linkFor(victim, victimEmail);
  const send = stytch.callsTo('magic_links/email/login_or_create').at(-1).body;
  assert.match(send.code_challenge, /^[A-Za-z0-9_-]{43}$/, 'an S256 challenge is sent');
  const stolen = new URL(victimLink).searchParams.get('token');

  // The thief starts a flow of their own: their own cookie, their own gh_state.
  const thief = new Client();
  const thiefLink = new URL(await linkFor(thief, uniqEmail('thief')));
  thiefLink.searchParams.set('token', stolen);
  const sessionsBefore = await sessionKeys();
  const r = await thief.fetch(thiefLink.toString(), { headers: { 'cf-connecting-ip': freshIp() } });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error, 'provider_error');
  assert.ok(!r.headers.getSetCookie().some((c) => /^(__Host-)?gh_session=./.test(c)), 'no session cookie');
  assert.equal((await thief.fetch(`${gh.url}/auth/me`)).status, 401);
  assert.equal(await sessionKeys(), sessionsBefore, 'no session');
  assert.ok(await gh.waitForLog(/pkce_mismatch/), 'Stytch refused the verifier');

  // The victim's own browser: signed in with the same token.
  const done = await victim.fetch(victimLink, { headers: { 'cf-connecting-ip': freshIp() } });
  assert.equal(done.status, 302, await done.text());
  const auth = stytch.callsTo('magic_links/authenticate').at(-1).body;
  assert.equal(createHash('sha256').update(auth.code_verifier).digest('base64url'), send.code_challenge);
  const me = await (await victim.fetch(`${gh.url}/auth/me`)).json();
  assert.equal(me.email, victimEmail);
});

test('stytch PKCE for invitations: the invitation\'s token is refused in anyone\'s own flow; the invitation works', async () => {
  const email = uniqEmail('invited');
  const invitation = await invite(email);
  const stolen = new URL(invitation).searchParams.get('token');
  const thief = new Client();
  const thiefLink = new URL(await linkFor(thief, uniqEmail('thief')));
  thiefLink.searchParams.set('token', stolen);
  const r = await thief.fetch(thiefLink.toString(), { headers: { 'cf-connecting-ip': freshIp() } });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error, 'provider_error');
  assert.equal((await thief.fetch(`${gh.url}/auth/me`)).status, 401);

  const invitee = new Client();
  const done = await invitee.fetch(invitation, { method: 'POST', headers: { origin: gh.url, 'cf-connecting-ip': freshIp() } });
  assert.equal(done.status, 302, await done.text());
  assert.equal((await (await invitee.fetch(`${gh.url}/auth/me`)).json()).email, email);
});
