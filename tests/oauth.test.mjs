// Gatehouse as an OpenID Provider, driven by a client library nobody here wrote
// (`openid-client`, npm) against the real Worker: discovery, the whole code flow with PKCE,
// nonce, state and RFC 9207 `iss` through Gatehouse's own login page (a real upstream OIDC
// provider, `oidc-provider`) and its consent page, RS256 ID tokens checked against the JWKS,
// userinfo, refresh-token rotation; and the MUSTs refused on the wire: code replay (also
// concurrent), refresh reuse revokes the family, unregistered and near-miss redirect URIs,
// PKCE missing or plain for a public client, a wrong client secret, an expired code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import * as oidc from 'openid-client';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';

let gh;
let idp;
const ADMIN = {};

/** A 2048-bit RSA private JWK (what `gatehouse-keys` adds for RS256 ID tokens). */
function rsaKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ format: 'jwk' });
}

before(async () => {
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({
    clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`], token_endpoint_auth_method: 'client_secret_basic' }],
  });
  const secrets = baseSecrets();
  secrets.SIGNING_KEYS = JSON.stringify([...JSON.parse(secrets.SIGNING_KEYS), rsaKey()]);
  secrets.PROVIDER_DEV_SECRET = secret;
  ADMIN.key = secrets.ADMIN_API_KEY;
  gh = await startGatehouse({
    port,
    vars: { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse', display_name: 'Local dev' } } },
    secrets,
  });
});
after(async () => { await gh?.stop(); await idp?.close(); });

async function admin(method, path, body) {
  const r = await fetch(`${gh.url}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN.key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function register(extra = {}) {
  const r = await admin('POST', '/clients', {
    name: 'Example App', type: 'confidential', redirect_uris: ['http://127.0.0.1:9/cb'],
    ...extra,
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

const insecure = { execute: [oidc.allowInsecureRequests] };

/** openid-client's configuration for a registered client. */
async function configFor(c, auth) {
  const config = await oidc.discovery(new URL(gh.url), c.client_id, undefined, auth ?? oidc.ClientSecretBasic(c.client_secret), insecure);
  oidc.enableNonRepudiationChecks(config); // ID token signatures checked against the JWKS
  return config;
}

/**
 * Runs a browser through the authorization request: Gatehouse's login page (signing in at
 * the upstream provider as `login`, unless already signed in), the consent page (allowing),
 * and returns the URL the browser is sent back to at the client.
 */
async function authorize(browser, url, { login = 'alice', decision = 'allow' } = {}) {
  let res = await browser.fetch(url, { headers: { accept: 'text/html' } });
  if (res.status === 302 && res.headers.get('location').startsWith('/auth/login?')) {
    const returnTo = new URL(res.headers.get('location'), gh.url).searchParams.get('return_to');
    const done = await oidcSignIn(browser, gh.url, { login, returnTo });
    assert.equal(done.headers.get('location'), returnTo, 'the request survives the login round trip');
    res = await browser.fetch(new URL(returnTo, gh.url).toString(), { headers: { accept: 'text/html' } });
  }
  if (res.status === 200) {
    const html = await res.text();
    assert.match(html, /<h1>Allow Example App\?<\/h1>/);
    const fields = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)]
      .map((m) => [m[1], m[2].replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>')]));
    res = await browser.fetch(`${gh.url}/oauth/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: gh.url, accept: 'text/html' },
      body: new URLSearchParams({ ...fields, decision }),
    });
  }
  assert.ok([302, 303].includes(res.status), `a redirect back to the client (HTTP ${res.status})`);
  return new URL(res.headers.get('location'));
}

test('discovery names the issuer, endpoints, S256 and RS256', async () => {
  const r = await fetch(`${gh.url}/.well-known/openid-configuration`);
  assert.equal(r.status, 200);
  const d = await r.json();
  assert.equal(d.issuer, gh.url);
  assert.equal(d.token_endpoint, `${gh.url}/oauth/token`);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  assert.deepEqual(d.id_token_signing_alg_values_supported, ['RS256', 'EdDSA']);
  assert.equal(d.authorization_response_iss_parameter_supported, true);
  const same = await (await fetch(`${gh.url}/.well-known/oauth-authorization-server`)).json();
  assert.deepEqual(same, d);
  const jwks = await (await fetch(`${gh.url}/.well-known/jwks.json`)).json();
  assert.deepEqual(jwks.keys.map((k) => k.kty).sort(), ['OKP', 'RSA']);
  assert.ok(jwks.keys.every((k) => k.d === undefined && k.p === undefined), 'no private members');
});

test('openid-client: code flow with consent, userinfo, refresh rotation; reuse revokes the family', async () => {
  const c = await register({ scopes: ['openid', 'profile', 'email', 'offline_access'] });
  assert.match(c.client_secret, /^[A-Za-z0-9_-]{43}$/);
  const stored = await gh.d1('SELECT secret_hash FROM clients WHERE id = ?', [c.client_id]);
  assert.notEqual(stored[0].secret_hash, c.client_secret, 'stored hashed');
  const config = await configFor(c);
  const browser = new Client();
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: 'http://127.0.0.1:9/cb', scope: 'openid email profile offline_access',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce,
  });
  const back = await authorize(browser, url.toString());
  assert.equal(back.searchParams.get('iss'), gh.url, 'RFC 9207 iss');
  assert.equal(back.searchParams.get('state'), state);

  const tokens = await oidc.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true }, undefined, insecure);
  const claims = tokens.claims();
  assert.match(claims.sub, /^usr_/);
  assert.equal(claims.aud, c.client_id);
  assert.equal(claims.email, 'alice@example.test');
  assert.equal(claims.nonce, nonce);
  assert.ok(claims.auth_time > 0 && claims.sid && claims.at_hash);
  assert.equal(JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg, 'RS256');
  const at = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
  assert.equal(JSON.parse(Buffer.from(tokens.access_token.split('.')[0], 'base64url')).typ, 'at+jwt');
  assert.equal(at.aud, c.client_id);
  assert.equal(at.client_id, c.client_id);
  assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');

  const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub, insecure);
  assert.equal(info.sub, claims.sub);
  assert.equal(info.email, 'alice@example.test');

  // The app's access token is not a Gatehouse session token.
  const me = await fetch(`${gh.url}/auth/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(me.status, 401);

  const second = await oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, insecure);
  assert.notEqual(second.refresh_token, tokens.refresh_token, 'rotated');
  assert.equal(second.claims().sub, claims.sub);
  // Reusing the rotated token fails and ends the family: the newest token dies too.
  await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, insecure), (e) => e.error === 'invalid_grant');
  await assert.rejects(oidc.refreshTokenGrant(config, second.refresh_token, undefined, insecure), (e) => e.error === 'invalid_grant');

  // Consent is remembered: a second authorization goes straight back to the client.
  const again = await browser.fetch(oidc.buildAuthorizationUrl(config, {
    redirect_uri: 'http://127.0.0.1:9/cb', scope: 'openid email', state: 's2',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  }).toString());
  assert.equal(again.status, 302);
  assert.ok(new URL(again.headers.get('location')).searchParams.get('code'));

  // The person's list of apps, and withdrawing one (account-changing: own origin).
  const apps = await (await browser.fetch(`${gh.url}/auth/apps`)).json();
  assert.deepEqual(apps.apps.map((a) => a.client_id), [c.client_id]);
  const cross = await browser.fetch(`${gh.url}/auth/apps/${c.client_id}`, { method: 'DELETE', headers: { origin: 'http://127.0.0.1:9' } });
  assert.equal(cross.status, 403);
  const revoked = await browser.fetch(`${gh.url}/auth/apps/${c.client_id}`, { method: 'DELETE', headers: { origin: gh.url } });
  assert.equal(revoked.status, 204);
  assert.deepEqual((await (await browser.fetch(`${gh.url}/auth/apps`)).json()).apps, []);
});

/** A code for `c` (the browser is signed in and has consented already, or `c` is first party). */
async function codeFor(browser, c, { verifier, redirect = 'http://127.0.0.1:9/cb', scope = 'openid' } = {}) {
  const q = new URLSearchParams({ response_type: 'code', client_id: c.client_id, redirect_uri: redirect, scope, state: 'st' });
  if (verifier) {
    q.set('code_challenge', await oidc.calculatePKCECodeChallenge(verifier));
    q.set('code_challenge_method', 'S256');
  }
  const back = await authorize(browser, `${gh.url}/oauth/authorize?${q}`);
  return back.searchParams.get('code');
}

async function tokenRequest(params, { basic } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) headers.authorization = `Basic ${Buffer.from(`${basic[0]}:${basic[1]}`).toString('base64')}`;
  const r = await fetch(`${gh.url}/oauth/token`, { method: 'POST', headers, body: new URLSearchParams(params) });
  return { status: r.status, headers: r.headers, body: await r.json() };
}

test('codes: single use (also concurrently), bound to client, redirect URI and verifier; a replay revokes the refresh tokens', async () => {
  const c = await register({ first_party: true, scopes: ['openid', 'offline_access'] });
  const other = await register({ first_party: true });
  const browser = new Client();
  const verifier = oidc.randomPKCECodeVerifier();
  const code = await codeFor(browser, c, { verifier, scope: 'openid offline_access' });
  const good = { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9/cb', code_verifier: verifier };
  const basic = [c.client_id, c.client_secret];

  const wrongSecret = await tokenRequest(good, { basic: [c.client_id, 'not-the-secret'] });
  assert.equal(wrongSecret.status, 401);
  assert.equal(wrongSecret.body.error, 'invalid_client');
  assert.match(wrongSecret.headers.get('www-authenticate'), /^Basic/);
  assert.equal(wrongSecret.headers.get('cache-control'), 'no-store');
  const otherClient = await tokenRequest(good, { basic: [other.client_id, other.client_secret] });
  assert.equal(otherClient.body.error, 'invalid_grant');
  const nearMiss = await tokenRequest({ ...good, redirect_uri: 'http://127.0.0.1:9/cb/' }, { basic });
  assert.equal(nearMiss.body.error, 'invalid_grant');
  const badVerifier = await tokenRequest({ ...good, code_verifier: oidc.randomPKCECodeVerifier() }, { basic });
  assert.equal(badVerifier.body.error, 'invalid_grant');
  const noVerifier = await tokenRequest({ ...good, code_verifier: '' }, { basic });
  assert.equal(noVerifier.body.error, 'invalid_grant');

  // Refused requests spent nothing: the code still works once, through client_secret_post.
  const ok = await tokenRequest({ ...good, client_id: c.client_id, client_secret: c.client_secret });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.ok(ok.body.refresh_token);
  const replay = await tokenRequest(good, { basic });
  assert.equal(replay.status, 400);
  assert.equal(replay.body.error, 'invalid_grant');
  const afterReplay = await tokenRequest({ grant_type: 'refresh_token', refresh_token: ok.body.refresh_token }, { basic });
  assert.equal(afterReplay.body.error, 'invalid_grant', 'the replay revoked the refresh token');

  // Concurrent redemptions of one code: exactly one success.
  const v2 = oidc.randomPKCECodeVerifier();
  const code2 = await codeFor(browser, c, { verifier: v2 });
  const race = await Promise.all(Array.from({ length: 6 }, () => tokenRequest({ ...good, code: code2, code_verifier: v2 }, { basic })));
  assert.equal(race.filter((r) => r.status === 200).length, 1, race.map((r) => r.status).join(','));
  assert.ok(race.filter((r) => r.status !== 200).every((r) => r.body.error === 'invalid_grant'));
});

test('redirect URIs: unregistered and near misses get an error page, never a redirect', async () => {
  const c = await register({ first_party: true });
  const browser = new Client();
  await codeFor(browser, c); // signs in
  for (const redirect of ['http://127.0.0.1:9/cb/', 'http://127.0.0.1:9/CB', 'http://127.0.0.1:9/cb?x=1', 'http://127.0.0.1:90/cb', 'https://evil.example/cb', 'http://localhost:9/cb']) {
    const q = new URLSearchParams({ response_type: 'code', client_id: c.client_id, redirect_uri: redirect, scope: 'openid', state: 's' });
    const r = await browser.fetch(`${gh.url}/oauth/authorize?${q}`, { headers: { accept: 'text/html' } });
    assert.equal(r.status, 400, redirect);
    assert.equal(r.headers.get('location'), null, redirect);
    assert.match(await r.text(), /not registered/);
  }
  const unknown = await browser.fetch(`${gh.url}/oauth/authorize?client_id=cl_nobody&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code`);
  assert.equal(unknown.status, 400);
  assert.equal(unknown.headers.get('location'), null);
});

test('public clients: PKCE S256 is required, plain refused, and no secret is accepted', async () => {
  const c = await register({ type: 'public', first_party: true });
  assert.equal(c.client_secret, undefined);
  const browser = new Client();
  const base = { response_type: 'code', client_id: c.client_id, redirect_uri: 'http://127.0.0.1:9/cb', scope: 'openid', state: 'st' };
  await codeFor(browser, c, { verifier: oidc.randomPKCECodeVerifier() }); // signs in
  for (const extra of [{}, { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }, { code_challenge: 'a'.repeat(43) }]) {
    const r = await browser.fetch(`${gh.url}/oauth/authorize?${new URLSearchParams({ ...base, ...extra })}`);
    assert.equal(r.status, 302);
    const back = new URL(r.headers.get('location'));
    assert.equal(back.origin + back.pathname, 'http://127.0.0.1:9/cb');
    assert.equal(back.searchParams.get('error'), 'invalid_request', JSON.stringify(extra));
    assert.equal(back.searchParams.get('state'), 'st');
    assert.equal(back.searchParams.get('iss'), gh.url);
    assert.equal(back.searchParams.get('code'), null);
  }
  // The whole flow with openid-client as a public client.
  const config = await configFor(c, oidc.None());
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: 'http://127.0.0.1:9/cb', scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'x' });
  const back = await authorize(browser, url.toString());
  const tokens = await oidc.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: 'x' }, undefined, insecure);
  assert.match(tokens.claims().sub, /^usr_/);
});
