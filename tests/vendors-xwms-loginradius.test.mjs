// The `xwms` and `loginradius` kinds through the real Worker, against local fakes of the two
// vendors (tests/support/fake-*.mjs) that implement the documented endpoints and error shapes
// and check their input like the vendors: linking by (issuer, sub), profile refresh, vendor-side
// logout, vendor errors, timeouts and 5xx, and login CSRF (the `gh_state` binding).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { startGatehouse, baseSecrets, Client } from './support/harness.mjs';
import { startFakeXwms } from './support/fake-xwms.mjs';
import { startFakeLoginRadius, lrError } from './support/fake-loginradius.mjs';
import { expiredAccess, signingKeyOf } from './support/jwt.mjs';

/** The vendor's token in a callback URL (the vendors append `?token=` by plain concatenation). */
const tokenOf = (callback) => decodeURIComponent(callback.match(/[?&]token=([^&]*)/)[1]);

const XWMS = { clientId: 'gatehouse-client', domain: 'app.example.test', clientSecret: randomBytes(24).toString('base64url') };
const XWMS_ISSUER = `xwms:${XWMS.domain}`;
const LR = { appName: 'gatehouse-test', apiKey: randomUUID(), apiSecret: randomBytes(24).toString('base64url') };
const LR_ISSUER = `loginradius:${LR.appName}`;

let gh;
let xw;
let lr;
let ADMIN_KEY;
let SIGNING_KEY;
before(async () => {
  xw = await startFakeXwms(XWMS);
  lr = await startFakeLoginRadius({ apiKey: LR.apiKey });
  const secrets = baseSecrets();
  ADMIN_KEY = secrets.ADMIN_API_KEY;
  SIGNING_KEY = signingKeyOf(secrets);
  const lrSettings = { kind: 'loginradius', app_name: LR.appName, hub_url: lr.hubUrl, api_url: lr.apiUrl };
  gh = await startGatehouse({
    vars: {
      PROVIDERS: {
        xwms: { kind: 'xwms', client_id: XWMS.clientId, domain: XWMS.domain, api_url: xw.url, display_name: 'XWMS' },
        lr: { ...lrSettings, api_key: LR.apiKey, display_name: 'LoginRadius' },
        // Another app, whose key LoginRadius does not know (ErrorCode 901). (Not the same
        // app_name: two providers with one identity issuer are refused.)
        'lr-badkey': { ...lrSettings, app_name: `${LR.appName}-badkey`, api_key: 'not-the-api-key' },
      },
    },
    secrets: { ...secrets, PROVIDER_XWMS_SECRET: XWMS.clientSecret, PROVIDER_LR_SECRET: LR.apiSecret },
  });
});
after(async () => { await gh?.stop(); await xw?.close(); await lr?.close(); });
beforeEach(() => { xw?.reset(); lr?.reset(); });

const uniq = (prefix) => `${prefix}-${randomBytes(5).toString('hex')}`;
const isCallback = (u) => u.startsWith(`${gh.url}/auth/callback/`);

/**
 * Walks `client` from Gatehouse's login route through the vendor's hosted page back to the
 * callback; returns the callback URL (with `stopAtCallback`) or Gatehouse's answer to it.
 */
async function signIn(client, provider, { stopAtCallback = false } = {}) {
  const { res, next } = await client.follow(`${gh.url}/auth/login?provider=${provider}`, { stop: isCallback });
  if (!next) throw new Error(`the vendor never sent the browser back: HTTP ${res.status} ${await res.text()}`);
  return stopAtCallback ? next : client.fetch(next);
}

/** Users, identities and sessions: what a refused sign-in must leave unchanged. */
async function snapshot() {
  const [row] = await gh.d1('SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM identities) AS identities');
  return { ...row, sessions: (await gh.kv.list('s:')).length };
}

const identities = (issuer, sub) => gh.d1(`SELECT user_id, email, provider FROM identities WHERE issuer = '${issuer}' AND sub = '${sub}'`);

async function me(client) {
  const r = await client.fetch(`${gh.url}/auth/me`);
  assert.equal(r.status, 200, 'signed in');
  return r.json();
}

/** The callback was refused with `status`/`code`, set no session cookie and stored nothing. */
async function assertRefused(res, status, code, before, label) {
  assert.equal(res.status, status, label);
  assert.equal((await res.json()).error, code, label);
  assert.doesNotMatch(res.headers.getSetCookie().join('\n'), /gh_session=[^;]/, `${label}: no session cookie`);
  assert.deepEqual(await snapshot(), before, `${label}: no user, identity or session`);
}

/** The `gh_state` of the login transaction `client` holds (the state part of its cookie). */
const txnState = (client) => client.cookie(gh.url, 'gh_txn').split('.')[0];

// ---------------------------------------------------------------------------------------
// XWMS

test('xwms: first sign-in creates a user, the next links to it, a changed email updates it', async () => {
  const sub = uniq('xw');
  xw.setUser({ sub, name: '', given_name: 'Ada', family_name: 'Lovelace', email: `${sub}@old.example`, picture: 'https://img.example/ada.png' });
  const before = await snapshot();

  const first = new Client();
  const done = await signIn(first, 'xwms');
  assert.equal(done.status, 302);
  assert.equal(done.headers.get('location'), '/');
  const [start] = xw.callsTo('sign-token').slice(-1);
  assert.deepEqual({ ...start.body, redirect_url: undefined }, { client_id: XWMS.clientId, domain: XWMS.domain, client_secret: XWMS.clientSecret, redirect_url: undefined });
  assert.match(start.body.redirect_url, new RegExp(`^${gh.url}/auth/callback/xwms\\?gh_state=[\\w-]+$`));
  const [verify] = xw.callsTo('sign-token-verify').slice(-1);
  assert.deepEqual(Object.keys(verify.body).sort(), ['client_id', 'client_secret', 'domain', 'token']);

  const user = await me(first);
  assert.equal(user.email, `${sub}@old.example`);
  assert.equal(user.name, 'Ada Lovelace', 'name falls back to given_name family_name');
  assert.deepEqual(await identities(XWMS_ISSUER, sub), [{ user_id: user.id, email: `${sub}@old.example`, provider: 'xwms' }]);
  assert.deepEqual(await snapshot(), { users: before.users + 1, identities: before.identities + 1, sessions: before.sessions + 1 });

  // Same XWMS account, new email and name at the vendor, another browser.
  xw.setUser({ sub, name: 'Ada King', email: `${sub}@new.example` });
  const second = new Client();
  assert.equal((await signIn(second, 'xwms')).status, 302);
  const again = await me(second);
  assert.equal(again.id, user.id, 'linked by sub');
  assert.equal(again.email, `${sub}@new.example`);
  assert.equal(again.name, 'Ada King');
  const [row] = await gh.d1(`SELECT email, name FROM users WHERE id = '${user.id}'`);
  assert.deepEqual(row, { email: `${sub}@new.example`, name: 'Ada King' });
  assert.deepEqual(await snapshot(), { users: before.users + 1, identities: before.identities + 1, sessions: before.sessions + 2 });
});

test('xwms: vendor error answers end with no session and no user', async () => {
  const sub = uniq('xw-err');
  xw.setUser({ sub, name: 'Eve', email: `${sub}@example.test` });
  const before = await snapshot();

  // The token ran out at XWMS before the browser came back: {"status":"error"} with a 400.
  let browser = new Client();
  let callback = await signIn(browser, 'xwms', { stopAtCallback: true });
  xw.expireAll();
  const expiredMark = gh.mark();
  await assertRefused(await browser.fetch(callback), 400, 'provider_error', before, 'expired token');
  assert.ok(await gh.waitForLog(/provider xwms rejected: sign-token-verify: HTTP 400, status "error": Invalid or expired token/, { since: expiredMark }), 'the reason is logged');

  // HTTP 200 but a status other than "success".
  xw.fail('sign-token-verify', { status: 200, body: { status: 'failed', message: 'Token expired', data: { sub } } });
  browser = new Client();
  callback = await signIn(browser, 'xwms', { stopAtCallback: true });
  await assertRefused(await browser.fetch(callback), 400, 'provider_error', before, 'non-success status');

  // Malformed JSON.
  xw.fail('sign-token-verify', 'malformed');
  browser = new Client();
  callback = await signIn(browser, 'xwms', { stopAtCallback: true });
  await assertRefused(await browser.fetch(callback), 400, 'provider_error', before, 'malformed JSON');

  // XWMS refuses to start (client credentials): no redirect, no transaction cookie.
  xw.fail('sign-token', { status: 401, body: { status: 'error', message: 'Invalid client credentials.' } });
  browser = new Client();
  const start = await browser.fetch(`${gh.url}/auth/login?provider=xwms`, { headers: { accept: 'text/html' } });
  assert.equal(start.status, 400);
  assert.match(await start.text(), /Sign-in with xwms failed/);
  assert.equal(browser.cookie(gh.url, 'gh_txn'), undefined);

  assert.deepEqual(await identities(XWMS_ISSUER, sub), []);
  assert.doesNotMatch(gh.logs(), new RegExp(XWMS.clientSecret), 'the client secret is never logged');
});

test('xwms: a token is single use at the vendor', async () => {
  const sub = uniq('xw-once');
  xw.setUser({ sub, name: 'Once' });
  const browser = new Client();
  const callback = await signIn(browser, 'xwms', { stopAtCallback: true });
  assert.equal((await browser.fetch(callback)).status, 302);
  const token = tokenOf(callback);
  assert.equal(xw.isLive(token), false, 'used by the sign-in');
  // The same token in a fresh, valid transaction of the same browser: XWMS refuses it.
  const before = await snapshot();
  await browser.fetch(`${gh.url}/auth/login?provider=xwms`);
  const replay = `${gh.url}/auth/callback/xwms?gh_state=${txnState(browser)}&token=${token}`;
  const r = await browser.fetch(replay);
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error, 'provider_error');
  assert.equal((await snapshot()).users, before.users);
});

test('xwms: a timeout or a 5xx at XWMS ends with 502 and nothing stored', async () => {
  const sub = uniq('xw-down');
  xw.setUser({ sub, name: 'Slow' });
  const before = await snapshot();

  xw.fail('sign-token-verify', 'hold');
  let browser = new Client();
  let callback = await signIn(browser, 'xwms', { stopAtCallback: true });
  const t0 = Date.now();
  const timeoutMark = gh.mark();
  await assertRefused(await browser.fetch(callback), 502, 'provider_unavailable', before, 'verify timeout');
  const waited = Date.now() - t0;
  assert.ok(waited >= 4000, `Gatehouse waited for its outbound timeout (${waited} ms)`);
  assert.ok(await gh.waitForLog(/provider xwms unavailable: .*sign-token-verify: timed out/, { since: timeoutMark }), 'the timeout is logged');

  xw.fail('sign-token-verify', 'http500');
  browser = new Client();
  callback = await signIn(browser, 'xwms', { stopAtCallback: true });
  await assertRefused(await browser.fetch(callback), 502, 'provider_unavailable', before, 'verify 500');

  xw.fail('sign-token', 'http500');
  const start = await new Client().fetch(`${gh.url}/auth/login?provider=xwms`);
  assert.equal(start.status, 502);
  assert.equal((await start.json()).error, 'provider_unavailable');

  assert.deepEqual(await identities(XWMS_ISSUER, sub), []);
});

test('xwms: login CSRF — the callback of one browser cannot sign in another', async () => {
  const attackerSub = uniq('xw-mallory');
  xw.setUser({ sub: attackerSub, name: 'Mallory' });
  const attacker = new Client();
  const attackerCallback = await signIn(attacker, 'xwms', { stopAtCallback: true });
  const token = tokenOf(attackerCallback);
  const before = await snapshot();

  const victim = new Client();
  await assertRefused(await victim.fetch(attackerCallback), 400, 'invalid_login_transaction', before, 'no login in the victim browser');
  // The victim has a login of its own in progress: the attacker's callback still fails.
  assert.equal((await victim.fetch(`${gh.url}/auth/login?provider=xwms`)).status, 302);
  await assertRefused(await victim.fetch(attackerCallback), 400, 'invalid_login_transaction', before, 'victim has its own login');
  assert.equal(xw.isLive(token), true, 'refused before XWMS was asked');
  assert.deepEqual(await identities(XWMS_ISSUER, attackerSub), []);

  // The attacker's own browser can still finish: the refusal was the browser binding.
  assert.equal((await attacker.fetch(attackerCallback)).status, 302);
  assert.equal((await identities(XWMS_ISSUER, attackerSub)).length, 1);
});

// ---------------------------------------------------------------------------------------
// LoginRadius

test('loginradius: first sign-in creates a user, the next links to it, a changed email updates it', async () => {
  const uid = uniq('lr');
  lr.setUser({ uid, email: `${uid}@old.example`, firstName: 'Grace', lastName: 'Hopper', imageUrl: 'https://img.example/g.png' });
  const before = await snapshot();

  const first = new Client();
  const callback = await signIn(first, 'lr', { stopAtCallback: true });
  const [hosted] = lr.callsTo('hosted').slice(-1);
  assert.equal(hosted.action, 'login');
  assert.match(hosted.returnUrl, new RegExp(`^${gh.url}/auth/callback/lr\\?gh_state=[\\w-]+$`));
  const token = tokenOf(callback);
  assert.equal((await first.fetch(callback)).status, 302);
  const [profileCall] = lr.callsTo('account').slice(-1);
  assert.deepEqual(profileCall.query, { apikey: LR.apiKey });
  assert.equal(profileCall.authorization, `Bearer ${token}`);

  const user = await me(first);
  assert.equal(user.email, `${uid}@old.example`, 'Email[0].Value');
  assert.equal(user.name, 'Grace Hopper', 'FirstName LastName without FullName');
  assert.deepEqual(await identities(LR_ISSUER, uid), [{ user_id: user.id, email: `${uid}@old.example`, provider: 'lr' }]);
  assert.deepEqual(await snapshot(), { users: before.users + 1, identities: before.identities + 1, sessions: before.sessions + 1 });
  const [identity] = await gh.d1(`SELECT profile FROM identities WHERE issuer = '${LR_ISSUER}' AND sub = '${uid}'`);
  assert.doesNotMatch(identity.profile, new RegExp(token), 'the access token is not kept on the identity');

  lr.setUser({ uid, email: `${uid}@new.example`, fullName: 'Rear Admiral Hopper' });
  const second = new Client();
  assert.equal((await signIn(second, 'lr')).status, 302);
  const again = await me(second);
  assert.equal(again.id, user.id, 'linked by Uid');
  assert.equal(again.email, `${uid}@new.example`);
  assert.equal(again.name, 'Rear Admiral Hopper');
  assert.deepEqual(await snapshot(), { users: before.users + 1, identities: before.identities + 1, sessions: before.sessions + 2 });
});

test('loginradius: logout invalidates the access token at LoginRadius', async () => {
  const uid = uniq('lr-out');
  lr.setUser({ uid, email: `${uid}@example.test`, fullName: 'Out' });
  const browser = new Client();
  const callback = await signIn(browser, 'lr', { stopAtCallback: true });
  const token = tokenOf(callback);
  assert.equal((await browser.fetch(callback)).status, 302);
  const user = await me(browser);
  const { session_id } = user;
  const session = browser.cookie(gh.url, 'gh_session');
  assert.equal(lr.isLive(token), true);
  const sessionRecord = await gh.kv.get(`s:${session_id}`);
  assert.ok(sessionRecord, 'session in KV');

  const invalidations = lr.callsTo('invalidate').length;
  const out = await browser.fetch(`${gh.url}/auth/logout`, { method: 'POST', headers: { origin: gh.url } });
  assert.equal(out.status, 204);
  const calls = lr.callsTo('invalidate');
  assert.equal(calls.length, invalidations + 1, 'LoginRadius was asked once');
  assert.deepEqual(calls.at(-1).query, { apikey: LR.apiKey, preventRefresh: 'true' });
  assert.equal(calls.at(-1).authorization, `Bearer ${token}`);
  assert.equal(lr.isLive(token), false, 'the token is dead at LoginRadius');
  const direct = await fetch(`${lr.apiUrl}identity/v2/auth/account?apikey=${encodeURIComponent(LR.apiKey)}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(direct.status, 401);
  assert.equal((await direct.json()).ErrorCode, 906);
  assert.equal(await gh.kv.get(`s:${session_id}`), null, 'session gone');
  // The old session cookie, replayed next to an expired access token, renews nothing.
  const replay = await fetch(`${gh.url}/auth/me`, { headers: { cookie: `gh_access=${expiredAccess(SIGNING_KEY, gh.url, { sub: user.id, sid: session_id })}; gh_session=${session}` } });
  assert.equal(replay.status, 401);
});

test('loginradius: every other end of a session invalidates its token too: a revoked device, a new sign-in in the same browser, the admin, a refused sign-in', async () => {
  const uid = uniq('lr-ends');
  lr.setUser({ uid, email: `${uid}@example.test`, fullName: 'Ends' });
  const signInWithToken = async (browser) => {
    const callback = await signIn(browser, 'lr', { stopAtCallback: true });
    return { token: tokenOf(callback), res: await browser.fetch(callback, { headers: { accept: 'text/html' } }) };
  };
  const laptop = new Client();
  const phone = new Client();
  const a = await signInWithToken(laptop);
  const b = await signInWithToken(phone);
  assert.equal(a.res.status, 302);
  assert.equal(b.res.status, 302);
  const user = await me(laptop);
  const phoneSid = (await me(phone)).session_id;

  // The laptop revokes the phone: the phone's token dies at LoginRadius, the laptop's lives.
  const revoked = await laptop.fetch(`${gh.url}/auth/sessions/${phoneSid}`, { method: 'DELETE', headers: { origin: gh.url } });
  assert.equal(revoked.status, 204);
  assert.equal(lr.isLive(b.token), false, 'revoked device');
  assert.equal(lr.isLive(a.token), true);

  // Signing in again in the laptop supersedes its session: gone here and at LoginRadius.
  const a2 = await signInWithToken(laptop);
  assert.equal(a2.res.status, 302);
  assert.equal(await gh.kv.get(`s:${user.session_id}`), null, 'the superseded session is gone');
  assert.equal(lr.isLive(a.token), false, 'superseded session');
  assert.equal(lr.isLive(a2.token), true);

  // The admin's "revoke all".
  const admin = (method, path) => fetch(`${gh.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal((await admin('DELETE', `/admin/users/${user.id}/sessions`)).status, 204);
  assert.equal(lr.isLive(a2.token), false, 'admin revoke-all');

  // A sign-in refused after the LoginRadius step (a deactivated user) leaves no live token.
  assert.equal((await admin('POST', `/admin/users/${user.id}/deactivate`)).status, 200);
  const refused = await signInWithToken(new Client());
  assert.equal(refused.res.status, 403);
  assert.equal(lr.isLive(refused.token), false, 'refused sign-in');
});

test('loginradius: logout still ends the session when LoginRadius is down', async () => {
  const uid = uniq('lr-out-down');
  lr.setUser({ uid, fullName: 'Down' });
  const browser = new Client();
  assert.equal((await signIn(browser, 'lr')).status, 302);
  const { session_id } = await me(browser);
  lr.fail('invalidate', 'http500');
  const mark = gh.mark();
  const out = await browser.fetch(`${gh.url}/auth/logout`, { method: 'POST', headers: { origin: gh.url } });
  assert.equal(out.status, 204);
  assert.equal(await gh.kv.get(`s:${session_id}`), null);
  assert.ok(await gh.waitForLog(/vendor logout at lr failed/, { since: mark }), 'the failure is logged');
});

test('loginradius: ErrorCode answers end with no session and no user', async () => {
  const uid = uniq('lr-err');
  lr.setUser({ uid, email: `${uid}@example.test`, fullName: 'Err' });
  const before = await snapshot();

  // The access token expired at LoginRadius before the browser came back (906, real path).
  let browser = new Client();
  let callback = await signIn(browser, 'lr', { stopAtCallback: true });
  lr.expireAll();
  await assertRefused(await browser.fetch(callback), 400, 'provider_error', before, '906 expired token');

  // An ErrorCode body with HTTP 200: the body decides.
  lr.fail('account', { status: 200, body: lrError(906).body });
  browser = new Client();
  callback = await signIn(browser, 'lr', { stopAtCallback: true });
  await assertRefused(await browser.fetch(callback), 400, 'provider_error', before, 'ErrorCode with 200');
  // The token the hosted page issued does not outlive the refused sign-in.
  assert.equal(lr.isLive(tokenOf(callback)), false, 'invalidated at LoginRadius');
  lr.reset();

  // A key LoginRadius does not know (901 from the fake's real check).
  browser = new Client();
  callback = await signIn(browser, 'lr-badkey', { stopAtCallback: true });
  const mark = gh.mark();
  await assertRefused(await browser.fetch(callback), 400, 'provider_error', before, '901 bad API key');
  assert.ok(await gh.waitForLog(/provider lr-badkey rejected: profile: HTTP 403, ErrorCode 901/, { since: mark }), '901 is logged');

  // Malformed JSON.
  lr.fail('account', 'malformed');
  browser = new Client();
  callback = await signIn(browser, 'lr', { stopAtCallback: true });
  await assertRefused(await browser.fetch(callback), 400, 'provider_error', before, 'malformed JSON');

  // A callback without a token.
  browser = new Client();
  callback = await signIn(browser, 'lr', { stopAtCallback: true });
  await assertRefused(await browser.fetch(callback.replace(/[?&]token=[^&]+/, '')), 400, 'bad_request', before, 'no token');

  assert.deepEqual(await identities(LR_ISSUER, uid), []);
});

test('loginradius: a timeout or a 5xx at LoginRadius ends with 502 and nothing stored', async () => {
  const uid = uniq('lr-down');
  lr.setUser({ uid, fullName: 'Slow' });
  const before = await snapshot();

  lr.fail('account', 'hold');
  let browser = new Client();
  let callback = await signIn(browser, 'lr', { stopAtCallback: true });
  const t0 = Date.now();
  const mark = gh.mark();
  await assertRefused(await browser.fetch(callback), 502, 'provider_unavailable', before, 'profile timeout');
  const waited = Date.now() - t0;
  assert.ok(waited >= 4000, `Gatehouse waited for its outbound timeout (${waited} ms)`);
  assert.ok(await gh.waitForLog(/provider lr unavailable: .*identity\/v2\/auth\/account: timed out/, { since: mark }), 'the timeout is logged');
  assert.ok(!gh.logs().includes(LR.apiKey), 'the API key stays out of the log');

  lr.fail('account', 'http500');
  browser = new Client();
  callback = await signIn(browser, 'lr', { stopAtCallback: true });
  await assertRefused(await browser.fetch(callback), 502, 'provider_unavailable', before, 'profile 500');

  assert.deepEqual(await identities(LR_ISSUER, uid), []);
});

test('loginradius: login CSRF — the callback of one browser cannot sign in another', async () => {
  const attackerUid = uniq('lr-mallory');
  lr.setUser({ uid: attackerUid, fullName: 'Mallory' });
  const attacker = new Client();
  const attackerCallback = await signIn(attacker, 'lr', { stopAtCallback: true });
  const before = await snapshot();
  const profileCalls = lr.callsTo('account').length;

  const victim = new Client();
  await assertRefused(await victim.fetch(attackerCallback), 400, 'invalid_login_transaction', before, 'no login in the victim browser');
  assert.equal((await victim.fetch(`${gh.url}/auth/login?provider=lr`)).status, 302);
  await assertRefused(await victim.fetch(attackerCallback), 400, 'invalid_login_transaction', before, 'victim has its own login');
  assert.equal(lr.callsTo('account').length, profileCalls, 'refused before LoginRadius was asked');
  assert.deepEqual(await identities(LR_ISSUER, attackerUid), []);

  assert.equal((await attacker.fetch(attackerCallback)).status, 302);
  assert.equal((await identities(LR_ISSUER, attackerUid)).length, 1);
});

// A limit, by design and documented in docs/providers-xwms-loginradius.md: neither vendor
// binds its token to the return URL it was minted for, so the binding rests on gh_state — 256
// random bits that only the victim's browser (HttpOnly cookie), the victim's redirect and the
// vendor ever see. An attacker who could read the victim's gh_state is out of scope.
