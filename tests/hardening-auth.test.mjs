// Hardening of who may do what, through the real Worker (wrangler dev, local D1 and KV, two
// real OpenID Connect providers): a leaked access token cannot change the account; revocation
// takes effect exactly at the access token's `exp` (no leeway on Gatehouse's own tokens) and
// reaches sessions KV's index does not list; duplicated auth cookies are refused; proxy mode
// strips X-Gatehouse-* whatever the case and `_`/`-`; configuration refuses two providers with
// one identity issuer and plain-http provider URLs off loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn, newSigningKey } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';
import { signEd25519, accessClaims, decode } from './support/jwt.mjs';

let gh;
let idp; // provider "dev"
let idp2; // provider "other"
let origin; // proxy mode's origin: records the headers it receives
let KEY;
let signingKey;
const seen = [];

before(async () => {
  origin = createServer((req, res) => {
    seen.push({ url: req.url, rawHeaders: req.rawHeaders, headers: req.headers });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('origin');
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  const port = await freePort();
  const s1 = randomBytes(24).toString('base64url');
  const s2 = randomBytes(24).toString('base64url');
  const client = (secret, name) => ({ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/${name}`] });
  idp = await startOidcProvider({ clients: [client(s1, 'dev')] });
  idp2 = await startOidcProvider({ clients: [client(s2, 'other')] });
  signingKey = newSigningKey();
  const secrets = { ...baseSecrets(), SIGNING_KEYS: JSON.stringify([signingKey]), PROVIDER_DEV_SECRET: s1, PROVIDER_OTHER_SECRET: s2 };
  KEY = secrets.ADMIN_API_KEY;
  gh = await startGatehouse({
    port,
    vars: {
      PROVIDERS: {
        dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' },
        other: { kind: 'oidc', issuer: idp2.issuer, client_id: 'gatehouse' },
        // Never reached: only its cookie name matters here.
        psg: { kind: 'passage', app_id: 'app1', jwks_url: 'http://127.0.0.1:9/jwks' },
      },
      ORIGIN_URL: `http://127.0.0.1:${origin.address().port}`,
    },
    secrets,
  });
});
after(async () => { await gh?.stop(); await idp?.close(); await idp2?.close(); origin?.close(); });

const admin = (method, path) => fetch(`${gh.url}${path}`, { method, headers: { authorization: `Bearer ${KEY}`, 'cf-connecting-ip': '192.0.2.99' } });
const q = (s) => `'${String(s).replaceAll("'", "''")}'`;
const identities = async (userId) => (await gh.d1(`SELECT issuer, sub FROM identities WHERE user_id = ${q(userId)} ORDER BY issuer, sub`));

/** Signs `login` in at `provider` in a fresh browser; returns { browser, me }. */
async function signIn(login, provider = 'dev', url = gh.url) {
  const browser = new Client();
  const done = await oidcSignIn(browser, url, { provider, login });
  assert.equal(done.status, 302, `sign-in of ${login}`);
  const me = await (await browser.fetch(`${url}/auth/me`)).json();
  return { browser, me };
}

/** A victim with two identities (dev + other) and two devices (laptop, phone). */
async function victim(login) {
  const laptop = await signIn(login);
  const linked = await oidcSignIn(laptop.browser, gh.url, { provider: 'other', login: `${login}-other`, link: true });
  assert.equal(linked.status, 302, 'the victim links a second provider from their own browser');
  const phone = await signIn(login);
  assert.equal(phone.me.id, laptop.me.id);
  assert.equal((await identities(laptop.me.id)).length, 2);
  return { id: laptop.me.id, laptop, phone, access: laptop.browser.cookie(gh.url, 'gh_access') };
}

test('a stolen access token alone cannot start a link, finish one, unlink or revoke a device', async () => {
  const v = await victim('vera');
  const bearer = { authorization: `Bearer ${v.access}` };
  const txnsBefore = (await gh.kv.list('t:')).length;

  // Starting a link: no redirect to the provider, no transaction cookie, no transaction.
  const start = await fetch(`${gh.url}/auth/login?provider=other&link=1`, { headers: bearer, redirect: 'manual' });
  assert.equal(start.status, 401);
  assert.match((await start.json()).message, /access token alone/);
  assert.equal(start.headers.get('set-cookie'), null);
  assert.equal((await gh.kv.list('t:')).length, txnsBefore);
  // Not with an Origin header of our own either (anyone can send one from curl).
  const withOrigin = await fetch(`${gh.url}/auth/login?provider=other&link=1`, { headers: { ...bearer, origin: gh.url, 'sec-fetch-site': 'same-origin' }, redirect: 'manual' });
  assert.equal(withOrigin.status, 401);
  assert.equal((await gh.kv.list('t:')).length, txnsBefore);

  // Unlinking.
  const unlink = await fetch(`${gh.url}/auth/identities?issuer=${encodeURIComponent(idp.issuer)}&sub=vera`, { method: 'DELETE', headers: bearer });
  assert.equal(unlink.status, 401);
  assert.equal((await identities(v.id)).length, 2, 'nothing unlinked');

  // Revoking the other device.
  const revoke = await fetch(`${gh.url}/auth/sessions/${v.phone.me.session_id}`, { method: 'DELETE', headers: bearer });
  assert.equal(revoke.status, 401);
  assert.equal((await v.phone.browser.fetch(`${gh.url}/auth/me`)).status, 200, 'the phone is still signed in');
  assert.ok(await gh.kv.get(`s:${v.phone.me.session_id}`), 'its session is untouched');

  // Finishing a link: a transaction the victim's own browser started (the phone, which has
  // no session at that provider yet), completed by someone holding its transaction cookie
  // and the access token, but not the session cookie.
  const callback = await oidcSignIn(v.phone.browser, gh.url, { provider: 'other', login: 'mallory', link: true, stopAtCallback: true });
  const txn = v.phone.browser.cookie(gh.url, 'gh_txn');
  assert.ok(txn, 'the link transaction cookie');
  const finish = await fetch(callback, { headers: { ...bearer, cookie: `gh_txn=${txn}`, accept: 'text/html' }, redirect: 'manual' });
  assert.equal(finish.status, 403);
  assert.deepEqual((await identities(v.id)).map((i) => i.sub).sort(), ['vera', 'vera-other'], "the thief's identity is not linked");
  assert.equal((await gh.d1(`SELECT COUNT(*) AS n FROM identities WHERE sub = 'mallory'`))[0].n, 0);

  // Nor can it sign the victim out (even an expired one could, before).
  const logout = await fetch(`${gh.url}/auth/logout`, { method: 'POST', headers: bearer });
  assert.equal(logout.status, 204);
  assert.ok(await gh.kv.get(`s:${v.laptop.me.session_id}`), 'the laptop session is untouched');
  assert.equal((await v.laptop.browser.fetch(`${gh.url}/auth/me`)).status, 200);

  // Reading is what an access token is for.
  assert.equal((await fetch(`${gh.url}/auth/me`, { headers: bearer })).status, 200);
  assert.equal((await fetch(`${gh.url}/auth/identities`, { headers: bearer })).status, 200);
});

test("the session cookie changes the account only from Gatehouse's own pages", async () => {
  const v = await victim('sam');
  const url = `${gh.url}/auth/identities?issuer=${encodeURIComponent(idp.issuer)}&sub=sam`;
  for (const headers of [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, {}]) {
    assert.equal((await v.laptop.browser.fetch(url, { method: 'DELETE', headers })).status, 403, JSON.stringify(headers));
    const revoke = await v.laptop.browser.fetch(`${gh.url}/auth/sessions/${v.phone.me.session_id}`, { method: 'DELETE', headers });
    assert.equal(revoke.status, 403, JSON.stringify(headers));
    const start = await v.laptop.browser.fetch(`${gh.url}/auth/login?provider=other&link=1`, { headers });
    assert.equal(start.status, 403, JSON.stringify(headers));
  }
  assert.equal((await identities(v.id)).length, 2);
  assert.equal((await v.phone.browser.fetch(`${gh.url}/auth/me`)).status, 200);
  // From our own page: it works.
  assert.equal((await v.laptop.browser.fetch(`${gh.url}/auth/sessions/${v.phone.me.session_id}`, { method: 'DELETE', headers: { origin: gh.url } })).status, 204);
  assert.equal((await v.laptop.browser.fetch(url, { method: 'DELETE', headers: { origin: gh.url } })).status, 204);
  assert.deepEqual((await identities(v.id)).map((i) => i.sub), ['sam-other']);
});

test('"revoke all" stops at renewal a session that KV\'s index does not list', async () => {
  const { browser, me } = await signIn('iris');
  const session = browser.cookie(gh.url, 'gh_session');
  // KV listings lag by up to a minute: here the index simply lacks this session.
  await gh.kv.delete(`u:${me.id}:${me.session_id}`);
  assert.equal((await admin('DELETE', `/admin/users/${me.id}/sessions`)).status, 204);
  assert.ok(await gh.kv.get(`s:${me.session_id}`), 'the listing missed it: its KV record is still there');
  // An expired access token and the session cookie: a renewal, which D1's time refuses.
  const now = Math.floor(Date.now() / 1000);
  const expired = signEd25519(signingKey, accessClaims(gh.url, { sub: me.id, sid: me.session_id, iat: now - 400, ttl: 300 }));
  const r = await fetch(`${gh.url}/auth/me`, { headers: { cookie: `gh_access=${expired}; gh_session=${session}` } });
  assert.equal(r.status, 401);
  assert.equal(r.headers.getSetCookie().some((c) => c.startsWith('gh_access=') && !c.includes('Max-Age=0')), false, 'no new token');
  const token = await fetch(`${gh.url}/auth/token`, { method: 'POST', headers: { cookie: `gh_session=${session}`, origin: gh.url } });
  assert.equal(token.status, 401, 'POST /auth/token refuses it too');
  assert.equal(await gh.kv.get(`s:${me.session_id}`), null, 'and the session is ended');
  const [row] = await gh.d1(`SELECT sessions_valid_after AS t FROM users WHERE id = ${q(me.id)}`);
  assert.ok(row.t >= now - 60 && row.t <= now + 1, `sessions_valid_after set to the revocation time (${row.t})`);

  // A session begun after the revocation renews as usual.
  while (Math.floor(Date.now() / 1000) <= row.t) await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
  const again = await signIn('iris');
  const later = signEd25519(signingKey, accessClaims(gh.url, { sub: me.id, sid: again.me.session_id, iat: now - 400, ttl: 300 }));
  const renewed = await fetch(`${gh.url}/auth/me`, { headers: { cookie: `gh_access=${later}; gh_session=${again.browser.cookie(gh.url, 'gh_session')}` } });
  assert.equal(renewed.status, 200);
});

test('deactivation sets the same time: a session missing from the index is not renewed', async () => {
  const { browser, me } = await signIn('dora');
  const session = browser.cookie(gh.url, 'gh_session');
  await gh.kv.delete(`u:${me.id}:${me.session_id}`);
  assert.equal((await admin('POST', `/admin/users/${me.id}/deactivate`)).status, 200);
  assert.equal((await admin('POST', `/admin/users/${me.id}/activate`)).status, 200);
  const now = Math.floor(Date.now() / 1000);
  const expired = signEd25519(signingKey, accessClaims(gh.url, { sub: me.id, sid: me.session_id, iat: now - 400, ttl: 300 }));
  const r = await fetch(`${gh.url}/auth/me`, { headers: { cookie: `gh_access=${expired}; gh_session=${session}` } });
  assert.equal(r.status, 401, 'reactivating the user does not revive a session from before');
});

test('two cookies of one name on any auth cookie are refused, and nothing changes', async () => {
  const v = await victim('tom');
  const jar = v.laptop.browser.cookieHeader(gh.url);
  const session = v.laptop.browser.cookie(gh.url, 'gh_session');
  const keys = async () => (await gh.kv.list('')).sort();
  const before = await keys();
  const eventsBefore = (await gh.d1('SELECT COUNT(*) AS n FROM events'))[0].n;
  const cases = [
    ['gh_session', `gh_session=tossed; ${jar}`],
    ['gh_session', `${jar}; gh_session=${session}`],
    ['gh_access', `${jar}; gh_access=tossed`],
    ['gh_txn', `${jar}; gh_txn=a; gh_txn=b`],
  ];
  // The Passage cookie has no __Host- prefix (a sibling subdomain can set two): refused where
  // it is read, and nowhere else, so a sibling cannot lock the browser out of Gatehouse.
  const tossedPassage = `${jar}; psg_auth_token=a; psg_auth_token=b`;
  const passage = await fetch(`${gh.url}/auth/callback/psg`, { headers: { cookie: tossedPassage }, redirect: 'manual' });
  assert.equal(passage.status, 400, 'psg_auth_token twice → the Passage callback');
  assert.match((await passage.json()).message, /Cookie psg_auth_token was sent twice/);
  assert.equal((await fetch(`${gh.url}/auth/me`, { headers: { cookie: tossedPassage } })).status, 200, 'the session still works');
  for (const [name, cookie] of cases) {
    for (const [method, path, headers] of [
      ['GET', '/auth/me', {}],
      ['DELETE', `/auth/sessions/${v.phone.me.session_id}`, { origin: gh.url }],
      ['POST', '/auth/token', { origin: gh.url }],
      ['POST', '/auth/logout', { origin: gh.url }],
      ['GET', '/auth/callback/dev?code=x&state=y', {}],
      ['GET', '/auth/callback/psg', {}],
      ['GET', '/app/page', {}], // proxy mode
    ]) {
      const r = await fetch(`${gh.url}${path}`, { method, headers: { ...headers, cookie }, redirect: 'manual' });
      assert.equal(r.status, 400, `${name} twice → ${method} ${path}`);
      const body = await r.json();
      assert.equal(body.error, 'bad_request');
      assert.match(body.message, new RegExp(`Cookie ${name} was sent twice`));
    }
  }
  assert.deepEqual(await keys(), before, 'KV unchanged');
  assert.equal((await gh.d1('SELECT COUNT(*) AS n FROM events'))[0].n, eventsBefore, 'no event rows');
  assert.equal(seen.filter((s) => s.url === '/app/page').length, 0, 'nothing reached the origin');
  assert.equal((await v.phone.browser.fetch(`${gh.url}/auth/me`)).status, 200);
  // One of each is fine.
  assert.equal((await v.laptop.browser.fetch(`${gh.url}/auth/me`)).status, 200);
});

/** A raw HTTP request (node's http.request sends header names exactly as given). */
function raw(url, headers) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('proxy mode strips X-Gatehouse-* whatever the case and whether `_` or `-`', async () => {
  const { browser, me } = await signIn('pia');
  const cookie = browser.cookieHeader(gh.url);
  const { status, body } = await raw(`${gh.url}/app/raw`, [
    'Host', new URL(gh.url).host, // (with headers as a list, node adds no Host of its own)
    'Cookie', cookie,
    'X_Gatehouse_Roles', 'admin',
    'x-GATEHOUSE_user', 'usr_admin',
    'X_GATEHOUSE_EMAIL', 'ceo@corp.example',
    'x_gatehouse-jwt', 'forged',
    'X-Gatehouse-Roles', 'admin',
    'X-App', 'kept',
  ]);
  assert.equal(status, 200, body);
  const got = seen.find((s) => s.url === '/app/raw');
  assert.ok(got, 'the origin was reached');
  const names = [];
  for (let i = 0; i < got.rawHeaders.length; i += 2) names.push([got.rawHeaders[i], got.rawHeaders[i + 1]]);
  const gatehouse = names.filter(([n]) => n.toLowerCase().replaceAll('_', '-').startsWith('x-gatehouse-'));
  // Only Gatehouse's own, each once, with Gatehouse's values.
  assert.deepEqual(gatehouse.map(([n]) => n.toLowerCase()).sort(), ['x-gatehouse-email', 'x-gatehouse-email-verified', 'x-gatehouse-jwt', 'x-gatehouse-roles', 'x-gatehouse-user']);
  assert.equal(got.headers['x-gatehouse-user'], me.id);
  assert.equal(got.headers['x-gatehouse-roles'], '', 'no roles: empty, never what the client sent');
  assert.equal(got.headers['x-gatehouse-email'], 'pia@example.test');
  assert.equal(decode(got.headers['x-gatehouse-jwt']).claims.sub, me.id);
  assert.equal(got.headers['x-app'], 'kept');
});

test('the revocation bound is exactly ACCESS_TOKEN_TTL_SECONDS: no leeway past exp', async () => {
  // Long enough that a busy machine still signs in and revokes before exp.
  const ttl = 10;
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  const provider = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`] }] });
  const secrets = { ...baseSecrets(), PROVIDER_DEV_SECRET: secret };
  const short = await startGatehouse({
    port,
    vars: { PROVIDERS: { dev: { kind: 'oidc', issuer: provider.issuer, client_id: 'gatehouse' } }, ACCESS_TOKEN_TTL_SECONDS: String(ttl) },
    secrets,
  });
  try {
    const browser = new Client();
    assert.equal((await oidcSignIn(browser, short.url, { login: 'rita' })).status, 302);
    const token = browser.cookie(short.url, 'gh_access');
    const { iat, exp, sub } = decode(token).claims;
    assert.equal(exp - iat, ttl);
    const me = (t) => fetch(`${short.url}/auth/me`, { headers: { authorization: `Bearer ${t}` } });
    const revoked = await fetch(`${short.url}/admin/users/${sub}/sessions`, { method: 'DELETE', headers: { authorization: `Bearer ${secrets.ADMIN_API_KEY}` } });
    assert.equal(revoked.status, 204);
    // Revoked, yet the token stands until its exp: that is the documented bound.
    assert.ok(Date.now() < exp * 1000, 'still before exp');
    assert.equal((await me(token)).status, 200);
    // Wait for the clock to reach exp (a computed time, not a guess), then: refused at once.
    while (Date.now() < exp * 1000) await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 5));
    const after = await me(token);
    assert.equal(after.status, 401, 'refused at exp, with no leeway');
    assert.ok(Date.now() < (exp + 5) * 1000, 'and the check was made right at exp (well inside any 60 s leeway)');
    // Nor can the browser renew it.
    assert.equal((await browser.fetch(`${short.url}/auth/me`)).status, 401);
  } finally {
    await short.stop();
    await provider.close();
  }
});

/** Starts Gatehouse with `providers`; every request but /healthz is a 500 naming PROVIDERS. */
async function expectProvidersRefused(providers, secrets, why) {
  const bad = await startGatehouse({ vars: { PROVIDERS: providers }, secrets: { ...baseSecrets(), ...secrets } });
  try {
    const r = await fetch(`${bad.url}/auth/login`);
    assert.equal(r.status, 500);
    const body = await r.json();
    assert.equal(body.error, 'configuration_error');
    assert.match(body.message, /PROVIDERS/);
    // The detail is for the operator: one log line, not the client.
    assert.ok(await bad.waitForLog(/configuration error: PROVIDERS/), bad.logs());
    const lines = bad.logs().split('\n').filter((l) => l.includes('configuration error: PROVIDERS'));
    assert.ok(lines.every((l) => why.test(l)), `one clear line: ${lines[0]}`);
    assert.doesNotMatch(bad.logs(), /panicked/);
  } finally {
    await bad.stop();
  }
}

test('configuration refuses two providers with one identity issuer', async () => {
  const gh2 = (base) => ({ kind: 'oauth2', client_id: 'c', issuer: 'github', authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token`, userinfo_endpoint: `${base}/user` });
  await expectProvidersRefused(
    { github: { kind: 'oauth2', preset: 'github', client_id: 'c' }, ghe: gh2('https://ghe.corp.example') },
    { PROVIDER_GITHUB_SECRET: 's', PROVIDER_GHE_SECRET: 's' },
    /provider "github": has the same identity issuer "github" as provider "ghe"/,
  );
});

test('configuration refuses plain-http provider URLs off loopback', async () => {
  await expectProvidersRefused(
    { corp: { kind: 'oidc', issuer: 'http://idp.corp.example', client_id: 'c' } },
    { PROVIDER_CORP_SECRET: 's' },
    /provider "corp": issuer must be https \(http only on localhost, 127\.0\.0\.0\/8, ::1\)/,
  );
});
