// Proxy mode as an OAuth protected resource (what MCP servers need), walked the way an MCP
// client walks it, with `openid-client` (npm) doing discovery, RFC 7591 registration, PKCE
// and the token request against the real Worker: 401 with `resource_metadata` → RFC 9728
// document → the authorization server's discovery → dynamic registration → sign-in and
// consent → a token for this resource → the origin gets the request with the user. A token
// for another audience is refused at the resource; registration is rate limited per client
// network; RP-initiated logout goes only to registered URIs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import * as oidc from 'openid-client';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';

const LIMIT = 4;
let gh;
let idp;
let origin;
let KEY;
const seen = []; // requests that reached the origin

before(async () => {
  origin = createServer((req, res) => {
    seen.push({ url: req.url, headers: req.headers });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ok: true }));
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({
    clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`], token_endpoint_auth_method: 'client_secret_basic' }],
  });
  const secrets = baseSecrets();
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  secrets.SIGNING_KEYS = JSON.stringify([...JSON.parse(secrets.SIGNING_KEYS), privateKey.export({ format: 'jwk' })]);
  secrets.PROVIDER_DEV_SECRET = secret;
  KEY = secrets.ADMIN_API_KEY;
  gh = await startGatehouse({
    port,
    vars: {
      PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } },
      ORIGIN_URL: `http://127.0.0.1:${origin.address().port}`,
      RESOURCE_SERVER: 'true',
      OAUTH_DYNAMIC_REGISTRATION: 'true',
    },
    secrets,
    rateLimit: { limit: LIMIT, period: 60 },
  });
});
after(async () => { await gh?.stop(); await idp?.close(); await new Promise((r) => origin?.close(r)); });

const insecure = { execute: [oidc.allowInsecureRequests] };

/** Sign-in and consent in `browser` for the authorization URL; the URL it is sent back to. */
async function authorize(browser, url) {
  let res = await browser.fetch(url, { headers: { accept: 'text/html' } });
  if (res.status === 302 && res.headers.get('location').startsWith('/auth/login?')) {
    const returnTo = new URL(res.headers.get('location'), gh.url).searchParams.get('return_to');
    await oidcSignIn(browser, gh.url, { login: 'mcp-user', returnTo });
    res = await browser.fetch(new URL(returnTo, gh.url).toString(), { headers: { accept: 'text/html' } });
  }
  assert.equal(res.status, 200, 'the consent page of a dynamically registered (third-party) client');
  const html = await res.text();
  const fields = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2].replaceAll('&amp;', '&')]));
  res = await browser.fetch(`${gh.url}/oauth/authorize`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: gh.url },
    body: new URLSearchParams({ ...fields, decision: 'allow' }),
  });
  assert.equal(res.status, 303);
  return new URL(res.headers.get('location'));
}

test('an MCP-style client discovers, registers, signs in and calls the resource', async () => {
  const first = await fetch(`${gh.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(first.status, 401);
  const challenge = first.headers.get('www-authenticate');
  assert.equal(challenge, `Bearer resource_metadata="${gh.url}/.well-known/oauth-protected-resource"`);
  assert.equal(seen.length, 0, 'nothing reached the origin');
  const prm = await (await fetch(challenge.match(/resource_metadata="([^"]+)"/)[1])).json();
  assert.equal(prm.resource, gh.url);
  assert.deepEqual(prm.authorization_servers, [gh.url]);

  const redirect = 'http://127.0.0.1:9/mcp-callback';
  const config = await oidc.dynamicClientRegistration(new URL(prm.authorization_servers[0]),
    { redirect_uris: [redirect], token_endpoint_auth_method: 'none', client_name: 'Test MCP client' }, oidc.None(), insecure);
  const clientId = config.clientMetadata().client_id;
  assert.match(clientId, /^cl_/);
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirect, scope: 'openid offline_access', resource: prm.resource, state: 'mcp',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const back = await authorize(new Client(), url.toString());
  const tokens = await oidc.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: 'mcp' }, undefined, insecure);
  const at = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
  assert.equal(at.aud, gh.url, 'RFC 8707: the access token is for this resource');

  const call = await fetch(`${gh.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json', 'x-gatehouse-user': 'forged' },
    body: '{"jsonrpc":"2.0"}',
  });
  assert.equal(call.status, 200);
  const got = seen.at(-1);
  assert.equal(got.url, '/mcp');
  assert.equal(got.headers['x-gatehouse-user'], tokens.claims().sub, 'the user, not the forged header');
  assert.equal(got.headers['x-gatehouse-client'], clientId);
  assert.equal(got.headers.authorization, undefined, 'the bearer token is not passed on as such');

  // A token whose audience is another app is refused at the resource.
  const made = await fetch(`${gh.url}/admin/clients`, {
    method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Other app', type: 'public', first_party: true, redirect_uris: [redirect] }),
  });
  const other = await made.json();
  const otherConfig = await oidc.discovery(new URL(gh.url), other.client_id, undefined, oidc.None(), insecure);
  const v2 = oidc.randomPKCECodeVerifier();
  const browser = new Client();
  let res = await browser.fetch(oidc.buildAuthorizationUrl(otherConfig, { redirect_uri: redirect, scope: 'openid', state: 'o', code_challenge: await oidc.calculatePKCECodeChallenge(v2), code_challenge_method: 'S256' }).toString());
  const returnTo = new URL(res.headers.get('location'), gh.url).searchParams.get('return_to');
  await oidcSignIn(browser, gh.url, { login: 'mcp-user', returnTo });
  res = await browser.fetch(new URL(returnTo, gh.url).toString());
  const otherTokens = await oidc.authorizationCodeGrant(otherConfig, new URL(res.headers.get('location')), { pkceCodeVerifier: v2, expectedState: 'o' }, undefined, insecure);
  const before = seen.length;
  const refused = await fetch(`${gh.url}/mcp`, { headers: { authorization: `Bearer ${otherTokens.access_token}` } });
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get('www-authenticate'), /resource_metadata=.*error="invalid_token"/);
  assert.equal(seen.length, before, 'nothing reached the origin');
});

test('registration: public clients only, exact redirect URIs, rate limited per client network', async () => {
  const reg = (body, ip) => fetch(`${gh.url}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json', 'cf-connecting-ip': ip }, body: JSON.stringify(body) });
  const bad = await reg({ redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'client_secret_basic' }, '198.51.100.1');
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error, 'invalid_client_metadata');
  const badUri = await reg({ redirect_uris: ['http://evil.example/cb'] }, '198.51.100.1');
  assert.equal((await badUri.json()).error, 'invalid_redirect_uri');
  const statuses = [];
  for (let i = 0; i < LIMIT + 2; i++) statuses.push((await reg({ redirect_uris: ['https://a.example/cb'] }, '198.51.100.2')).status);
  assert.deepEqual(statuses, [...Array(LIMIT).fill(201), 429, 429]);
  assert.equal((await reg({ redirect_uris: ['https://a.example/cb'] }, '198.51.100.3')).status, 201, 'another network is not limited');
});

test('RP-initiated logout: a confirmation page, registered post-logout URIs only, then signed out', async () => {
  const made = await fetch(`${gh.url}/admin/clients`, {
    method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Logout app', type: 'public', first_party: true, redirect_uris: ['https://app.example/cb'], post_logout_redirect_uris: ['https://app.example/bye'] }),
  });
  const c = await made.json();
  const browser = new Client();
  await oidcSignIn(browser, gh.url, { login: 'leaver' });
  assert.equal((await browser.fetch(`${gh.url}/auth/me`)).status, 200);
  const q = (uri) => new URLSearchParams({ client_id: c.client_id, post_logout_redirect_uri: uri, state: 'z' });
  for (const uri of ['https://app.example/bye/', 'https://evil.example/bye']) {
    const r = await browser.fetch(`${gh.url}/oauth/end_session?${q(uri)}`, { headers: { accept: 'text/html' } });
    assert.equal(r.status, 400, uri);
    assert.equal(r.headers.get('location'), null);
  }
  const page = await browser.fetch(`${gh.url}/oauth/end_session?${q('https://app.example/bye')}`, { headers: { accept: 'text/html' } });
  assert.equal(page.status, 200);
  assert.equal((await browser.fetch(`${gh.url}/auth/me`)).status, 200, 'the GET ended nothing');
  const cross = await browser.fetch(`${gh.url}/oauth/end_session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://app.example' }, body: q('https://app.example/bye') });
  assert.equal(cross.status, 403);
  const done = await browser.fetch(`${gh.url}/oauth/end_session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: gh.url }, body: q('https://app.example/bye') });
  assert.equal(done.status, 303);
  assert.equal(done.headers.get('location'), 'https://app.example/bye?state=z');
  assert.equal((await browser.fetch(`${gh.url}/auth/me`)).status, 401);
});
