// Sign-in through a real OpenID Connect provider (npm `oidc-provider`, nobody here wrote it)
// and the real Worker: linking by (issuer, sub) in local D1, sessions in local KV, logout,
// login-transaction refusals, and concurrent first sign-ins.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';
import { expiredAccess, signingKeyOf } from './support/jwt.mjs';

let gh;
let idp;
let key; // the deployment's signing key, to mint the expired access tokens browsers hold
before(async () => {
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({
    clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`], token_endpoint_auth_method: 'client_secret_basic' }],
  });
  const secrets = { ...baseSecrets(), PROVIDER_DEV_SECRET: secret };
  key = signingKeyOf(secrets);
  gh = await startGatehouse({
    port,
    vars: { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse', display_name: 'Local dev' } } },
    secrets,
  });
});
after(async () => { await gh?.stop(); await idp?.close(); });

const sidOf = (raw) => createHash('sha256').update(raw).digest('base64url');
const usersWithSub = async (sub) => (await gh.d1(`SELECT user_id FROM identities WHERE sub = '${sub}'`)).map((r) => r.user_id);
/**
 * What a browser holding this session cookie gets once its access token has expired: the
 * request must be renewed from the session (200 with a fresh access cookie) or refused (401).
 */
async function renewal(session, me) {
  const expired = expiredAccess(key, gh.url, { sub: me.id, sid: me.session_id });
  const r = await fetch(`${gh.url}/auth/me`, { headers: { cookie: `gh_access=${expired}; gh_session=${session}` } });
  const renewed = r.headers.getSetCookie().some((c) => /^gh_access=[^;]/.test(c));
  assert.equal(renewed, r.status === 200, `a fresh access cookie exactly when renewed (HTTP ${r.status})`);
  return r.status;
}
const counts = async () => (await gh.d1('SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM identities) AS identities'))[0];

test('sign in, /auth/me, sign in again as the same user, logout', async () => {
  const browser = new Client();
  const done = await oidcSignIn(browser, gh.url, { login: 'alice', returnTo: '/after?x=1' });
  assert.equal(done.status, 302);
  assert.equal(done.headers.get('location'), '/after?x=1');
  const cookies = done.headers.getSetCookie().join('\n');
  assert.match(cookies, /gh_session=[^;]+; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Lax/);
  assert.match(cookies, /gh_access=[^;]+; Max-Age=300; Path=\/; HttpOnly; SameSite=Lax/);

  const me = await browser.fetch(`${gh.url}/auth/me`);
  assert.equal(me.status, 200);
  const user = await me.json();
  assert.equal(user.email, 'alice@example.test', 'email comes from userinfo');
  assert.equal(user.email_verified, true, 'and the provider verified it');
  assert.equal(user.name, 'User alice');
  assert.match(user.id, /^usr_/);
  assert.deepEqual(await usersWithSub('alice'), [user.id]);

  // The session is in KV under the hash of the cookie, never the cookie itself.
  const raw = browser.cookie(gh.url, 'gh_session');
  assert.equal(user.session_id, sidOf(raw));
  assert.ok(await gh.kv.get(`s:${user.session_id}`), 'session stored under its hash');
  assert.deepEqual(await gh.kv.list(`u:${user.id}:`), [`u:${user.id}:${user.session_id}`], 'per-user index');
  assert.ok(!(await gh.kv.list('')).some((k) => k.includes(raw)), 'raw session id is not a KV key');

  // A second sign-in (another browser) links to the same user with a new session id.
  const other = new Client();
  await oidcSignIn(other, gh.url, { login: 'alice' });
  const me2 = await (await other.fetch(`${gh.url}/auth/me`)).json();
  assert.equal(me2.id, user.id);
  assert.notEqual(me2.session_id, user.session_id);
  assert.deepEqual(await usersWithSub('alice'), [user.id]);
  const events = await gh.d1(`SELECT type FROM events WHERE user_id = '${user.id}' AND type = 'sign_in'`);
  assert.equal(events.length, 2, 'an audit event per sign-in');

  // Logout (a form post from our own origin) ends the session and clears the cookies.
  const oldAccess = browser.cookie(gh.url, 'gh_access');
  const otherSession = other.cookie(gh.url, 'gh_session');
  assert.equal(await renewal(raw, user), 200, 'before logout, the session renews an expired token');
  const out = await browser.fetch(`${gh.url}/auth/logout`, { method: 'POST', headers: { origin: gh.url, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
  assert.equal(out.status, 303);
  assert.match(out.headers.getSetCookie().join('\n'), /gh_session=; Max-Age=0/);
  assert.equal(await gh.kv.get(`s:${user.session_id}`), null, 'session gone from KV');
  // The old session cookie, replayed (a copy kept by the browser or a thief) next to an
  // expired access token, renews nothing; nor does it get a token for an SPA.
  assert.equal(await renewal(raw, user), 401, 'the ended session renews nothing');
  const token = await fetch(`${gh.url}/auth/token`, { method: 'POST', headers: { cookie: `gh_session=${raw}`, origin: gh.url } });
  assert.equal(token.status, 401);
  // The ended session's access token still reads /auth/me until it expires (the documented
  // bound), but it can no longer change the account: here, revoke the other device.
  const revoke = await fetch(`${gh.url}/auth/sessions/${me2.session_id}`, { method: 'DELETE', headers: { authorization: `Bearer ${oldAccess}`, origin: gh.url } });
  assert.equal(revoke.status, 401);
  // The other browser's session is untouched: it still renews.
  assert.equal(await renewal(otherSession, me2), 200);
});

test('logout sends a browser to a safe return_to, and to / for an unsafe one', async () => {
  for (const [returnTo, location] of [['/bye?x=1', '/bye?x=1'], ['//evil.com', '/'], ['https://evil.example/', '/'], [undefined, '/']]) {
    const browser = new Client();
    await oidcSignIn(browser, gh.url, { login: 'lou' });
    const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
    const session = browser.cookie(gh.url, 'gh_session');
    const query = returnTo === undefined ? '' : `?return_to=${encodeURIComponent(returnTo)}`;
    const out = await browser.fetch(`${gh.url}/auth/logout${query}`, { method: 'POST', headers: { origin: gh.url, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    assert.equal(out.status, 303, String(returnTo));
    assert.equal(out.headers.get('location'), location, String(returnTo));
    assert.equal(await gh.kv.get(`s:${me.session_id}`), null, 'the session ended either way');
    assert.equal(await renewal(session, me), 401);
  }
});

test('logout from another site is refused and changes nothing', async () => {
  const browser = new Client();
  await oidcSignIn(browser, gh.url, { login: 'carol' });
  const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  const r = await browser.fetch(`${gh.url}/auth/logout`, { method: 'POST', headers: { origin: 'https://evil.example' } });
  assert.equal(r.status, 403);
  const r2 = await browser.fetch(`${gh.url}/auth/logout`, { method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } });
  assert.equal(r2.status, 403);
  assert.ok(await gh.kv.get(`s:${me.session_id}`), 'session still there');
  assert.equal(await renewal(browser.cookie(gh.url, 'gh_session'), me), 200, 'and it still renews');
});

test('a replayed callback is refused and creates nothing', async () => {
  const browser = new Client();
  const callback = await oidcSignIn(browser, gh.url, { login: 'dave', stopAtCallback: true });
  const first = await browser.fetch(callback);
  assert.equal(first.status, 302);
  const before = await counts();
  const sessionsBefore = (await gh.kv.list('s:')).length;
  const again = await browser.fetch(callback, { headers: { cookie: `gh_txn=${new URL(callback).searchParams.get('state')}.x` } });
  assert.equal(again.status, 400);
  assert.equal((await again.json()).error, 'invalid_login_transaction');
  assert.deepEqual(await counts(), before);
  assert.equal((await gh.kv.list('s:')).length, sessionsBefore);
});

test('a callback in another browser (no transaction cookie, or another one) is refused', async () => {
  const victim = new Client();
  const attacker = new Client();
  const attackerCallback = await oidcSignIn(attacker, gh.url, { login: 'mallory', stopAtCallback: true });
  // The victim has a login of their own in progress; the attacker's callback must not finish it.
  await victim.fetch(`${gh.url}/auth/login?provider=dev`);
  const before = await counts();
  const r1 = await victim.fetch(attackerCallback);
  assert.equal(r1.status, 400);
  const r2 = await new Client().fetch(attackerCallback);
  assert.equal(r2.status, 400);
  const r3 = await victim.fetch(attackerCallback.replace(/state=[^&]+/, 'state=forged'));
  assert.equal(r3.status, 400);
  assert.deepEqual(await counts(), before);
  assert.deepEqual(await usersWithSub('mallory'), []);
});

test('the provider error parameter ends the sign-in with a clear page', async () => {
  const browser = new Client();
  await browser.fetch(`${gh.url}/auth/login?provider=dev`);
  const state = browser.cookie(gh.url, 'gh_txn').split('.')[0];
  const before = await counts();
  const r = await browser.fetch(`${gh.url}/auth/callback/dev?error=access_denied&state=${state}`, { headers: { accept: 'text/html' } });
  assert.equal(r.status, 400);
  const page = await r.text();
  assert.match(page, /Sign-in with dev failed/);
  assert.doesNotMatch(page, /access_denied/, 'provider detail stays in the log');
  assert.deepEqual(await counts(), before);
});

test('return_to open-redirect variants are refused before anything is stored', async () => {
  const variants = ['//evil.com', 'https:evil.com', '\\\\evil.com', '/\\evil.com', '/%2F%2Fevil.com', '%2F%2Fevil.com',
    'javascript:alert(1)', 'https://evil.com/', 'http://127.0.0.1.evil.com/', '/.//evil.com', '/a/..//evil.com'];
  const txnsBefore = (await gh.kv.list('t:')).length;
  for (const v of variants) {
    const r = await fetch(`${gh.url}/auth/login?provider=dev&return_to=${encodeURIComponent(v)}`);
    assert.equal(r.status, 400, v);
    assert.equal((await r.json()).error, 'bad_request', v);
  }
  assert.equal((await gh.kv.list('t:')).length, txnsBefore, 'no login transaction stored');
});

test('20 concurrent first sign-ins for one new sub make exactly one user', async () => {
  const browsers = Array.from({ length: 20 }, () => new Client());
  // Walk every browser to the point where the provider sends it back, then fire all the
  // callbacks at once, so that the first sign-ins race inside Gatehouse.
  const callbacks = await Promise.all(browsers.map((b) => oidcSignIn(b, gh.url, { login: 'zoe', stopAtCallback: true })));
  const results = await Promise.all(browsers.map((b, i) => b.fetch(callbacks[i])));
  assert.deepEqual(results.map((r) => r.status), Array(20).fill(302));
  const owners = await usersWithSub('zoe');
  assert.equal(owners.length, 1);
  const users = await gh.d1(`SELECT COUNT(*) AS n FROM users WHERE email = 'zoe@example.test'`);
  assert.equal(users[0].n, 1, 'exactly one user row');
  const ids = await Promise.all(browsers.map(async (b) => (await (await b.fetch(`${gh.url}/auth/me`)).json()).id));
  assert.deepEqual(new Set(ids), new Set(owners));
});
