// The `stytch` (email magic links) and `passage` (vendor JWT) kinds through the real Worker
// (wrangler dev / workerd, local D1 and KV), against local fakes of the vendors that speak
// the documented shapes of docs/vendors.md (tests/support/fake-stytch.mjs,
// tests/support/fake-passage.mjs). Linking by (issuer, sub), vendor-side logout, provider
// failures that leave nothing behind, the same answer for known and unknown addresses, rate
// limits, login CSRF for magic links, and Passage token refusals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startGatehouse, baseSecrets, freshRateWindow, Client } from './support/harness.mjs';
import { startFakeStytch } from './support/fake-stytch.mjs';
import { startFakePassage } from './support/fake-passage.mjs';
import { expiredAccess, signingKeyOf } from './support/jwt.mjs';

let gh;
let stytch;
let psg; // the main Passage app
let psgRot; // an app of its own for key rotation (its JWKS cache is separate)
let psgDown; // an app whose JWKS fails
let signingKey;
before(async () => {
  [stytch, psg, psgRot, psgDown] = await Promise.all([startFakeStytch(), startFakePassage(), startFakePassage(), startFakePassage()]);
  const secrets = baseSecrets();
  signingKey = signingKeyOf(secrets);
  gh = await startGatehouse({
    vars: {
      PROVIDERS: {
        mail: { kind: 'stytch', project_id: stytch.projectId, api_url: stytch.url, display_name: 'Email' },
        psg: { kind: 'passage', app_id: psg.appId, jwks_url: psg.jwksUrl, display_name: 'Passkeys' },
        'psg-rot': { kind: 'passage', app_id: psgRot.appId, jwks_url: psgRot.jwksUrl },
        'psg-down': { kind: 'passage', app_id: psgDown.appId, jwks_url: psgDown.jwksUrl },
      },
    },
    secrets: { ...secrets, PROVIDER_MAIL_SECRET: stytch.secret },
  });
});

/** /auth/me for a browser holding `session` whose access token has expired: 200 only if renewed. */
async function renewalStatus(user, session) {
  const expired = expiredAccess(signingKey, gh.url, { sub: user.id, sid: user.session_id });
  return (await fetch(`${gh.url}/auth/me`, { headers: { cookie: `gh_access=${expired}; gh_session=${session}` } })).status;
}
after(async () => {
  await gh?.stop();
  await Promise.all([stytch, psg, psgRot, psgDown].map((f) => f?.close()));
});

const STYTCH_ISSUER = () => `stytch:${stytch.projectId}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
/** A fresh client IP per request (wrangler dev passes CF-Connecting-IP through), so that
 * the per-IP send limit is only met where a test means to meet it. */
let ipCounter = 0;
const uniqueIp = () => `203.0.113.${++ipCounter}`;

const counts = async () => (await gh.d1('SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM identities) AS identities'))[0];
const sessionKeys = async () => (await gh.kv.list('s:')).sort();
const identityOf = async (issuer, sub) => (await gh.d1(`SELECT user_id, email FROM identities WHERE issuer = '${issuer}' AND sub = '${sub}'`));

/** Posts the email form as a browser would (same-origin form post). */
async function requestLink(client, email, { returnTo, ip = uniqueIp(), json = false, provider } = {}) {
  const fields = { email, ...(returnTo ? { return_to: returnTo } : {}), ...(provider ? { provider } : {}) };
  const init = json
    ? { method: 'POST', headers: { origin: gh.url, 'content-type': 'application/json', 'cf-connecting-ip': ip }, body: JSON.stringify(fields) }
    : { method: 'POST', headers: { origin: gh.url, accept: 'text/html', ...FORM, 'cf-connecting-ip': ip }, body: new URLSearchParams(fields).toString() };
  return client.fetch(`${gh.url}/auth/magic-link`, init);
}

/** Requests a link in `client` and returns the link the fake "sent". */
async function linkFor(client, email, opts) {
  const sentBefore = stytch.sent.length;
  const r = await requestLink(client, email, opts);
  assert.equal(r.status, opts?.json ? 202 : 200, await r.text());
  assert.equal(stytch.sent.length, sentBefore + 1, 'one link sent');
  return stytch.sent[stytch.sent.length - 1].link;
}

/** The whole magic-link sign-in in one browser; returns the callback's response. */
async function magicSignIn(client, email, opts) {
  const link = await linkFor(client, email, opts);
  return client.fetch(link, { headers: { accept: 'text/html' } });
}

async function me(client) {
  const r = await client.fetch(`${gh.url}/auth/me`);
  return r.status === 200 ? r.json() : null;
}

// ---------------------------------------------------------------------------------------
// Stytch: the sign-in.

test('stytch: the link Gatehouse asks Stytch to send points at the callback with this browser\'s state', async () => {
  const browser = new Client();
  const link = new URL(await linkFor(browser, `shape-${randomBytes(4).toString('hex')}@example.com`));
  assert.equal(`${link.origin}${link.pathname}`, `${gh.url}/auth/callback/mail`);
  const state = browser.cookie(gh.url, 'gh_txn').split('.')[0];
  assert.equal(link.searchParams.get('gh_state'), state);
  assert.equal(link.searchParams.get('stytch_token_type'), 'magic_links');
  const call = stytch.callsTo('magic_links/email/login_or_create').at(-1);
  assert.equal(call.auth, `Basic ${Buffer.from(`${stytch.projectId}:${stytch.secret}`).toString('base64')}`);
  assert.equal(call.body.login_magic_link_url, call.body.signup_magic_link_url);
  assert.equal(call.body.login_expiration_minutes, 10, 'the link lives no longer than the transaction');
});

test('stytch: first sign-in creates a user, the second links to it, a changed email updates it, logout revokes the Stytch session', async () => {
  const email = `ada-${randomBytes(4).toString('hex')}@example.com`;
  const before = await counts();
  const browser = new Client();
  const done = await magicSignIn(browser, email, { returnTo: '/after?x=1' });
  assert.equal(done.status, 302, await done.text());
  assert.equal(done.headers.get('location'), '/after?x=1');
  const user = await me(browser);
  assert.equal(user.email, email);
  assert.match(user.id, /^usr_/);
  const sub = stytch.userIdOf(email);
  assert.deepEqual(await identityOf(STYTCH_ISSUER(), sub), [{ user_id: user.id, email }]);
  assert.deepEqual(await counts(), { users: before.users + 1, identities: before.identities + 1 });
  const auth = stytch.callsTo('magic_links/authenticate').at(-1).body;
  assert.equal(auth.session_duration_minutes, 60, 'the session duration is always sent');

  // A second sign-in, in another browser: the same user.
  const other = new Client();
  assert.equal((await magicSignIn(other, email)).status, 302);
  assert.equal((await me(other)).id, user.id);
  assert.deepEqual(await counts(), { users: before.users + 1, identities: before.identities + 1 });

  // The address changes at Stytch (and a name is set): the next sign-in updates the user.
  const newEmail = `ada-new-${randomBytes(4).toString('hex')}@example.com`;
  stytch.setEmail(sub, newEmail);
  stytch.setName(sub, { first_name: 'Ada', last_name: 'Lovelace' });
  const third = new Client();
  assert.equal((await magicSignIn(third, newEmail)).status, 302);
  const updated = await me(third);
  assert.equal(updated.id, user.id, 'no new user');
  assert.equal(updated.email, newEmail);
  assert.equal(updated.name, 'Ada Lovelace');
  const [row] = await gh.d1(`SELECT email, name FROM users WHERE id = '${user.id}'`);
  assert.deepEqual(row, { email: newEmail, name: 'Ada Lovelace' });
  assert.deepEqual(await counts(), { users: before.users + 1, identities: before.identities + 1 });

  // Logout ends Gatehouse's session and revokes the Stytch session of that sign-in only.
  const liveBefore = stytch.sessions.size;
  const revokedBefore = stytch.revoked.length;
  const session = browser.cookie(gh.url, 'gh_session');
  const otherUser = await me(other);
  const otherSession = other.cookie(gh.url, 'gh_session');
  assert.equal(await renewalStatus(user, session), 200, 'the session renews before logout');
  const out = await browser.fetch(`${gh.url}/auth/logout`, { method: 'POST', headers: { origin: gh.url, ...FORM }, body: '' });
  assert.equal(out.status, 303);
  assert.equal(await renewalStatus(user, session), 401, 'the old session cookie, replayed, renews nothing');
  assert.equal(stytch.revoked.length, revokedBefore + 1, 'sessions/revoke called');
  assert.equal(stytch.sessions.size, liveBefore - 1);
  assert.equal(stytch.callsTo('sessions/revoke').at(-1).auth, `Basic ${Buffer.from(`${stytch.projectId}:${stytch.secret}`).toString('base64')}`);
  assert.equal(await renewalStatus(otherUser, otherSession), 200, 'the other browser stays signed in: its session renews');
});

test('stytch: the form answers identically for known and unknown addresses (form and JSON)', async () => {
  const known = `known-${randomBytes(4).toString('hex')}@example.com`;
  assert.equal((await magicSignIn(new Client(), known)).status, 302);
  const unknown = `unknown-${randomBytes(4).toString('hex')}@example.com`;
  assert.equal(stytch.userIdOf(unknown), undefined);

  const answers = [];
  for (const email of [known, unknown]) {
    const r = await requestLink(new Client(), email);
    answers.push({ status: r.status, type: r.headers.get('content-type'), body: await r.text(), txn: r.headers.getSetCookie().some((c) => c.startsWith('gh_txn=')) });
  }
  assert.equal(answers[0].status, 200);
  assert.deepEqual(answers[0], answers[1]);
  assert.match(answers[0].body, /Check your email/);

  const apiAnswers = [];
  for (const email of [known, `unknown2-${randomBytes(4).toString('hex')}@example.com`]) {
    const r = await requestLink(new Client(), email, { json: true });
    apiAnswers.push({ status: r.status, body: await r.json() });
  }
  assert.equal(apiAnswers[0].status, 202);
  assert.deepEqual(apiAnswers[0], apiAnswers[1]);
  assert.equal(apiAnswers[0].body.status, 'sent');
});

test('stytch: login page shows an accessible email form; ?provider=mail shows it instead of redirecting', async () => {
  const page = await fetch(`${gh.url}/auth/login?return_to=%2Fdash`);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<form method="post" action="\/auth\/magic-link">/);
  assert.match(html, /<label for="email-mail">Email address<\/label><input id="email-mail" name="email" type="email" autocomplete="email"[^>]* required/);
  assert.match(html, /name="return_to" value="\/dash"/);
  assert.match(html, /Continue with Passkeys/);
  const direct = await fetch(`${gh.url}/auth/login?provider=mail`, { redirect: 'manual' });
  assert.equal(direct.status, 200);
  assert.match(await direct.text(), /Sign in with Email/);
  assert.equal(direct.headers.getSetCookie().length, 0, 'no transaction until an address is sent');
});

test('stytch: bad input is refused before anything is sent; cross-site posts are refused', async () => {
  const sent = stytch.sent.length;
  const post = (body, headers = {}) => fetch(`${gh.url}/auth/magic-link`, { method: 'POST', headers: { origin: gh.url, 'content-type': 'application/json', 'cf-connecting-ip': uniqueIp(), ...headers }, body });
  for (const email of ['', 'plain', 'a@b', 'a b@example.com', '<script>@example.com']) {
    const r = await post(JSON.stringify({ email }));
    assert.equal(r.status, 400, email);
    assert.equal((await r.json()).error, 'bad_request', email);
  }
  assert.equal((await post(JSON.stringify({ email: 'a@example.com', return_to: '//evil.com' }))).status, 400);
  assert.equal((await post(JSON.stringify({ email: 'a@example.com', provider: 'psg' }))).status, 400);
  assert.equal((await post('{not json')).status, 400);
  assert.equal((await post(JSON.stringify({ email: 'a@example.com' }), { origin: 'https://evil.example' })).status, 403);
  assert.equal((await post('email=a%40example.com', { origin: 'null', 'content-type': FORM['content-type'] })).status, 403);
  assert.equal(stytch.sent.length, sent, 'nothing sent');
});

test('stytch: sends are rate limited per address and per client IP', async () => {
  await freshRateWindow(900);
  const email = `flood-${randomBytes(4).toString('hex')}@example.com`;
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push((await requestLink(new Client(), email, { json: true })).status);
  assert.deepEqual(statuses, [202, 202, 202, 202, 202, 429]);
  const r = await requestLink(new Client(), email.toUpperCase(), { json: true });
  assert.equal(r.status, 429, 'case does not dodge the limit');
  assert.equal((await r.json()).error, 'rate_limited');
  assert.equal(stytch.sent.filter((s) => s.email.toLowerCase() === email).length, 5);

  const ip = '198.51.100.7';
  const byIp = [];
  for (let i = 0; i < 21; i++) byIp.push((await requestLink(new Client(), `ip-${i}-${randomBytes(3).toString('hex')}@example.com`, { json: true, ip })).status);
  assert.deepEqual(byIp.slice(0, 20), Array(20).fill(202));
  assert.equal(byIp[20], 429);
  assert.equal((await requestLink(new Client(), `other-ip-${randomBytes(3).toString('hex')}@example.com`, { json: true })).status, 202);
});

test('stytch: a burst of concurrent sends keeps both limits (5 per address, 20 per client IP)', async () => {
  await freshRateWindow(900);
  const email = `burst-${randomBytes(4).toString('hex')}@example.com`;
  const sentTo = (address) => stytch.sent.filter((x) => x.email.toLowerCase() === address).length;
  const byAddress = await Promise.all(Array.from({ length: 15 }, () => requestLink(new Client(), email, { json: true })));
  const ip = '198.51.100.77';
  const byIp = await Promise.all(Array.from({ length: 40 }, (_, i) => requestLink(new Client(), `burst-ip-${i}-${randomBytes(3).toString('hex')}@example.com`, { json: true, ip })));
  for (const r of [...byAddress, ...byIp]) assert.ok(r.status === 202 || r.status === 429, `HTTP ${r.status}`);
  // Both bursts are measured before anything is asserted, so that a failure reports both.
  const accepted = byAddress.filter((r) => r.status === 202).length;
  const fromIp = byIp.filter((r) => r.status === 202).length;
  assert.deepEqual(
    { perAddress: Math.min(accepted, 6), mailed: Math.min(sentTo(email), 6), perClient: Math.min(fromIp, 21) },
    { perAddress: Math.min(accepted, 5), mailed: Math.min(sentTo(email), 5), perClient: Math.min(fromIp, 20) },
    `accepted ${accepted}/15 sends to one address (limit 5), mailed ${sentTo(email)}, accepted ${fromIp}/40 from one client (limit 20)`,
  );
});

test('stytch: Stytch\'s own 429 becomes 429, with no transaction started', async () => {
  const email = `fast-${randomBytes(4).toString('hex')}@example.com`;
  stytch.sendIntervalMs = 60_000;
  try {
    assert.equal((await requestLink(new Client(), email, { json: true })).status, 202);
    const browser = new Client();
    const r = await requestLink(browser, email, { json: true });
    assert.equal(r.status, 429);
    assert.equal((await r.json()).error, 'rate_limited');
    assert.equal(browser.cookie(gh.url, 'gh_txn'), undefined);
  } finally {
    stytch.sendIntervalMs = 0;
  }
});

// ---------------------------------------------------------------------------------------
// Stytch: login CSRF, replays and failures.

test('stytch: a link requested in browser A cannot sign in browser B (no cookie, or B\'s own sign-in)', async () => {
  const attackerEmail = `mallory-${randomBytes(4).toString('hex')}@example.com`;
  const attacker = new Client();
  const link = await linkFor(attacker, attackerEmail);
  const before = await counts();
  const sessionsBefore = await sessionKeys();

  const noCookie = await new Client().fetch(link);
  assert.equal(noCookie.status, 400);
  assert.equal((await noCookie.json()).error, 'invalid_login_transaction');

  const victim = new Client();
  await linkFor(victim, `victim-${randomBytes(4).toString('hex')}@example.com`);
  const r = await victim.fetch(link, { headers: { accept: 'text/html' } });
  assert.equal(r.status, 400);
  assert.match(await r.text(), /another browser or tab/);
  assert.equal(r.headers.getSetCookie().some((c) => c.startsWith('gh_session=') && !c.startsWith('gh_session=;')), false);
  assert.equal(await me(victim), null);

  assert.deepEqual(await counts(), before, 'no user, no identity');
  assert.deepEqual(await sessionKeys(), sessionsBefore, 'no session');
  assert.equal(stytch.callsTo('magic_links/authenticate').filter((c) => link.includes(c.body.token)).length, 0, 'the token was never spent');
  // The link still works where it was requested.
  assert.equal((await attacker.fetch(link)).status, 302);
});

test('stytch: a used or expired link is refused (Stytch 401 unable_to_auth_magic_link) and creates nothing', async () => {
  const email = `replay-${randomBytes(4).toString('hex')}@example.com`;
  const browser = new Client();
  const link = await linkFor(browser, email);
  assert.equal((await browser.fetch(link)).status, 302);
  const before = await counts();
  const sessionsBefore = await sessionKeys();

  // The same link inside a new sign-in of the same browser: Stytch refuses the spent token.
  await linkFor(browser, email);
  const state = browser.cookie(gh.url, 'gh_txn').split('.')[0];
  const replay = new URL(link);
  replay.searchParams.set('gh_state', state);
  const mark = gh.mark();
  const r = await browser.fetch(replay.toString());
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.error, 'provider_error');
  assert.doesNotMatch(JSON.stringify(body), /unable_to_auth|request-id/, 'no vendor detail echoed');
  assert.ok(await gh.waitForLog(/unable_to_auth_magic_link/, { since: mark }), 'the vendor error is in the log');

  // An expired link.
  const fresh = new Client();
  const expiring = await linkFor(fresh, email);
  stytch.expireTokens();
  assert.equal((await fresh.fetch(expiring)).status, 400);

  assert.deepEqual(await counts(), before);
  assert.deepEqual(await sessionKeys(), sessionsBefore);
});

test('stytch: other token types are a clear 400', async () => {
  const browser = new Client();
  const link = new URL(await linkFor(browser, `oauth-${randomBytes(4).toString('hex')}@example.com`));
  link.searchParams.set('stytch_token_type', 'oauth');
  const r = await browser.fetch(link.toString());
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.error, 'bad_request');
  assert.match(body.message, /"oauth" link/);
});

for (const [label, fault, status, code] of [
  ['Stytch error JSON', { status: 400, body: { error_type: 'invalid_token', error_message: 'Token format is invalid.', error_url: 'https://stytch.com/docs/api/errors/400' } }, 400, 'provider_error'],
  ['HTTP 503', { status: 503 }, 502, 'provider_unavailable'],
  ['malformed JSON', { status: 200, raw: '{"user_id": ' }, 400, 'provider_error'],
  ['a timeout', { delayMs: 8000 }, 502, 'provider_unavailable'],
]) {
  test(`stytch: ${label} at magic_links/authenticate ends with no session and no user`, async () => {
    const email = `fail-${randomBytes(4).toString('hex')}@example.com`;
    const browser = new Client();
    const link = await linkFor(browser, email);
    const before = await counts();
    const sessionsBefore = await sessionKeys();
    stytch.fault('magic_links/authenticate', fault);
    try {
      const r = await browser.fetch(link);
      assert.equal(r.status, status);
      assert.equal((await r.json()).error, code);
      assert.equal(await me(browser), null);
    } finally {
      stytch.fault('magic_links/authenticate', null);
    }
    assert.deepEqual(await counts(), before);
    assert.deepEqual(await sessionKeys(), sessionsBefore);
    assert.deepEqual(await identityOf(STYTCH_ISSUER(), stytch.userIdOf(email)), []);
  });
}

test('stytch: a failing send (5xx, error JSON) is a clear error and starts no transaction', async () => {
  for (const [fault, status] of [[{ status: 500 }, 502], [{ status: 400, body: { error_type: 'invalid_magic_link_url', error_message: 'bad url' } }, 400]]) {
    stytch.fault('magic_links/email/login_or_create', fault);
    try {
      const browser = new Client();
      const r = await requestLink(browser, `sendfail-${randomBytes(4).toString('hex')}@example.com`, { json: true });
      assert.equal(r.status, status);
      assert.equal(browser.cookie(gh.url, 'gh_txn'), undefined);
    } finally {
      stytch.fault('magic_links/email/login_or_create', null);
    }
  }
});

// ---------------------------------------------------------------------------------------
// Passage.

test('passage: the JWT in the cookie or a bearer header signs in; the same sub is the same user', async () => {
  const sub = `psg-user-${randomBytes(4).toString('hex')}`;
  const before = await counts();
  const browser = new Client();
  const r = await browser.fetch(`${gh.url}/auth/callback/psg?return_to=%2Fapp`, { headers: { cookie: `psg_auth_token=${psg.mint({ sub })}` } });
  assert.equal(r.status, 302, await r.text());
  assert.equal(r.headers.get('location'), '/app');
  const user = await me(browser);
  assert.match(user.id, /^usr_/);
  assert.deepEqual(await identityOf(`passage:${psg.appId}`, sub), [{ user_id: user.id, email: null }]);
  assert.deepEqual(await counts(), { users: before.users + 1, identities: before.identities + 1 });

  const api = new Client();
  const r2 = await api.fetch(`${gh.url}/auth/callback/psg`, { headers: { authorization: `Bearer ${psg.mint({ sub })}` } });
  assert.equal(r2.status, 302);
  assert.equal(r2.headers.get('location'), '/');
  assert.equal((await me(api)).id, user.id);
  assert.deepEqual(await counts(), { users: before.users + 1, identities: before.identities + 1 });

  // The login route sends the browser straight to the callback.
  const start = await fetch(`${gh.url}/auth/login?provider=psg&return_to=%2Fapp`, { redirect: 'manual' });
  assert.equal(start.status, 302);
  assert.equal(start.headers.get('location'), `${gh.url}/auth/callback/psg?return_to=%2Fapp`);
});

test('passage: bad signature, wrong aud, wrong iss, expired, alg none and friends are refused and create nothing', async () => {
  const before = await counts();
  const sessionsBefore = await sessionKeys();
  const kid = psg.current().kid;
  const foreign = psg.foreignKey();
  const now = Math.floor(Date.now() / 1000);
  // label → [token, the reason Gatehouse logs]
  const cases = {
    'bad signature': [psg.mint({}, { key: { ...foreign, kid } }), 'bad signature'],
    'wrong aud': [psg.mint({ aud: ['another-app'] }), 'wrong audience'],
    'wrong iss': [psg.mint({ iss: 'https://auth.passage.id/v1/apps/another-app' }), 'wrong issuer'],
    expired: [psg.mint({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 }), 'token expired'],
    'alg none': [psg.mint({}, { alg: 'none' }), 'algorithm not allowed: none'],
    'alg none with a signature': [`${psg.mint({}, { alg: 'none' })}c2lnbmF0dXJl`, 'algorithm not allowed: none'],
    'HS256 header': [psg.mint({}, { header: { alg: 'HS256' } }), 'algorithm not allowed: HS256'],
    'embedded jwk': [psg.mint({}, { header: { jwk: psg.current().jwk } }), 'header carries a key'],
    'not yet valid': [psg.mint({ nbf: now + 3600, iat: now + 3600, exp: now + 7200 }), 'token not yet valid'],
    'no sub': [psg.mint({ sub: undefined }), 'missing or invalid claim sub'],
    garbage: ['not.a.jwt', 'malformed token'],
  };
  for (const [label, [token, reason]] of Object.entries(cases)) {
    const mark = gh.mark();
    const r = await new Client().fetch(`${gh.url}/auth/callback/psg`, { headers: { cookie: `psg_auth_token=${token}` } });
    assert.equal(r.status, 400, label);
    assert.equal((await r.json()).error, 'provider_error', label);
    assert.equal(r.headers.getSetCookie().some((c) => /^gh_(session|access)=[^;]/.test(c)), false, label);
    const logged = new RegExp(`provider psg rejected: Passage token: ${reason}`);
    assert.ok(await gh.waitForLog(logged, { since: mark }), `${label}: log lacks ${logged}`);
  }
  const none = await fetch(`${gh.url}/auth/callback/psg`);
  assert.equal(none.status, 401);
  assert.equal((await none.json()).error, 'unauthorized');
  const badReturn = await fetch(`${gh.url}/auth/callback/psg?return_to=%2F%2Fevil.com`, { headers: { cookie: `psg_auth_token=${psg.mint()}` } });
  assert.equal(badReturn.status, 400);
  assert.deepEqual(await counts(), before);
  assert.deepEqual(await sessionKeys(), sessionsBefore);
});

test('passage: a rotated key with an unknown kid forces one JWKS refetch', async () => {
  const browser = new Client();
  assert.equal((await browser.fetch(`${gh.url}/auth/callback/psg-rot`, { headers: { cookie: `psg_auth_token=${psgRot.mint()}` } })).status, 302);
  const fetched = psgRot.jwksFetches;
  assert.equal((await new Client().fetch(`${gh.url}/auth/callback/psg-rot`, { headers: { cookie: `psg_auth_token=${psgRot.mint()}` } })).status, 302);
  assert.equal(psgRot.jwksFetches, fetched, 'cached while the kid is known');
  psgRot.rotate({ retire: true });
  const r = await new Client().fetch(`${gh.url}/auth/callback/psg-rot`, { headers: { cookie: `psg_auth_token=${psgRot.mint()}` } });
  assert.equal(r.status, 302, 'the new key is found after a refetch');
  assert.equal(psgRot.jwksFetches, fetched + 1);
});

test('passage: an unreachable JWKS (5xx, timeout) ends with no session and no user', async () => {
  const before = await counts();
  const sessionsBefore = await sessionKeys();
  for (const fault of [{ status: 503 }, { delayMs: 8000 }]) {
    psgDown.fault(fault);
    const r = await new Client().fetch(`${gh.url}/auth/callback/psg-down`, { headers: { cookie: `psg_auth_token=${psgDown.mint()}` } });
    assert.equal(r.status, 502);
    assert.equal((await r.json()).error, 'provider_unavailable');
  }
  psgDown.fault(null);
  assert.deepEqual(await counts(), before);
  assert.deepEqual(await sessionKeys(), sessionsBefore);
});
