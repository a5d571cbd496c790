// OpenID Connect providers that fail, or lie, through the real Worker: discovery, JWKS and
// userinfo answering 5xx, never answering (Gatehouse's outbound timeout), or with malformed
// JSON — each leaves nothing written (no transaction, user, identity or session); and an ID
// token signed with HMAC using the provider's RSA public key (algorithm confusion) is refused.
// Each provider is its own real oidc-provider instance, so that each has its own cached
// discovery document and JWKS in the Worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHmac, createPublicKey } from 'node:crypto';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';

const NAMES = ['disc', 'jwks', 'userinfo', 'conf', 'confjwks'];
const PATHS = { disc: '/.well-known/openid-configuration', jwks: '/jwks', userinfo: '/me' };
let gh;
const idps = {};
/** Per provider: { fault: { path, mode } | null, forge: fn | null, jwksAlg: string | null }. */
const control = Object.fromEntries(NAMES.map((n) => [n, { fault: null, forge: null, jwksAlg: null }]));
const held = []; // responses a "hang" fault never answers; ended in `after`

/** Replaces the JSON body the provider is about to send with `change(body)`. */
function rewriteJson(res, change) {
  const chunks = [];
  const end = res.end.bind(res);
  res.write = (chunk) => { chunks.push(Buffer.from(chunk)); return true; };
  res.end = (chunk, ...rest) => {
    if (chunk && typeof chunk !== 'function') chunks.push(Buffer.from(chunk));
    const body = JSON.stringify(change(JSON.parse(Buffer.concat(chunks).toString())));
    res.setHeader('content-length', Buffer.byteLength(body));
    return end(body, ...rest.filter((r) => typeof r === 'function'));
  };
}

function interceptFor(name) {
  return (req, res) => {
    const c = control[name];
    const path = new URL(req.url, 'http://x').pathname;
    if (c.fault && path === c.fault.path) {
      if (c.fault.mode === 'http500') { res.writeHead(500, { 'content-type': 'application/json' }); res.end('{"error":"server_error"}'); }
      if (c.fault.mode === 'malformed') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"keys": [ {"kty": '); }
      if (c.fault.mode === 'hang') held.push(res);
      return true;
    }
    if (c.forge && path === '/token') rewriteJson(res, (body) => ({ ...body, id_token: c.forge(body.id_token) }));
    if (c.jwksAlg && path === '/jwks') rewriteJson(res, (body) => ({ keys: body.keys.map((k) => ({ ...k, alg: c.jwksAlg })) }));
    return false;
  };
}

before(async () => {
  const port = await freePort();
  const providers = {};
  const secrets = baseSecrets();
  for (const name of NAMES) {
    const secret = randomBytes(24).toString('base64url');
    idps[name] = await startOidcProvider({
      clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/${name}`], token_endpoint_auth_method: 'client_secret_basic' }],
      intercept: interceptFor(name),
    });
    providers[name] = { kind: 'oidc', issuer: idps[name].issuer, client_id: 'gatehouse' };
    secrets[`PROVIDER_${name.toUpperCase()}_SECRET`] = secret;
  }
  gh = await startGatehouse({ port, vars: { PROVIDERS: providers }, secrets });
});
after(async () => {
  for (const res of held) res.destroy();
  await gh?.stop();
  await Promise.all(Object.values(idps).map((i) => i.close()));
});

/** Everything a refused sign-in must leave as it was. */
async function written(issuer) {
  const [db] = await gh.d1('SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM identities WHERE issuer = ?) AS identities', [issuer]);
  return { ...db, sessions: (await gh.kv.list('s:')).length, index: (await gh.kv.list('u:')).length };
}

const FAULTS = [
  // [mode, status, error, what the log says]
  ['http500', 502, 'provider_unavailable', /HTTP 500/],
  ['hang', 502, 'provider_unavailable', /timed out/],
  ['malformed', 400, 'provider_error', /not JSON/],
];

test('a failing discovery document ends the sign-in before anything is stored', async () => {
  const before = await written(idps.disc.issuer);
  const txns = await gh.kv.list('t:');
  for (const [mode, status, error, logged] of FAULTS) {
    control.disc.fault = { path: PATHS.disc, mode };
    const browser = new Client();
    const mark = gh.mark();
    const r = await browser.fetch(`${gh.url}/auth/login?provider=disc`);
    assert.equal(r.status, status, mode);
    assert.equal((await r.json()).error, error, mode);
    assert.equal(browser.cookie(gh.url, 'gh_txn'), undefined, `${mode}: no transaction cookie`);
    assert.deepEqual(await gh.kv.list('t:'), txns, `${mode}: no transaction stored`);
    assert.ok(await gh.waitForLog(new RegExp(`provider disc .*openid-configuration: .*${logged.source}`), { since: mark }), `${mode} is logged`);
  }
  assert.deepEqual(await written(idps.disc.issuer), before);
  // The same provider, healthy again: the sign-in completes (the faults were the only reason).
  control.disc.fault = null;
  assert.equal((await oidcSignIn(new Client(), gh.url, { provider: 'disc', login: 'dee' })).status, 302);
});

for (const name of ['jwks', 'userinfo']) {
  test(`a failing ${name} endpoint at the callback leaves no user, identity or session`, async () => {
    const before = await written(idps[name].issuer);
    for (const [mode, status, error, logged] of FAULTS) {
      const browser = new Client();
      const callback = await oidcSignIn(browser, gh.url, { provider: name, login: `${name}-${mode}`, stopAtCallback: true });
      control[name].fault = { path: PATHS[name], mode };
      const mark = gh.mark();
      const r = await browser.fetch(callback);
      control[name].fault = null;
      assert.equal(r.status, status, mode);
      assert.equal((await r.json()).error, error, mode);
      assert.equal(r.headers.getSetCookie().some((c) => /^gh_(session|access)=[^;]/.test(c)), false, `${mode}: no session cookie`);
      assert.deepEqual(await written(idps[name].issuer), before, `${mode}: nothing written`);
      assert.ok(await gh.waitForLog(new RegExp(`provider ${name} .*${PATHS[name]}: .*${logged.source}`), { since: mark }), `${mode} is logged`);
    }
    const ok = await oidcSignIn(new Client(), gh.url, { provider: name, login: `${name}-healthy` });
    assert.equal(ok.status, 302, 'healthy again, the sign-in completes');
  });
}

/** The provider's RSA signing key as its JWKS publishes it. */
async function rsaKeyOf(idp) {
  const { keys } = await (await fetch(`${idp.issuer}/jwks`)).json();
  const jwk = keys.find((k) => k.kty === 'RSA');
  assert.ok(jwk, 'the provider signs with RSA');
  return jwk;
}

/** The ID token's header and claims, re-signed with HMAC-SHA-256 keyed with `secret`. */
function hmacForgery(idToken, secret, kid) {
  const [, claims] = idToken.split('.');
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid })).toString('base64url');
  const signature = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${signature}`;
}

for (const [name, jwksAlg] of [['conf', null], ['confjwks', 'HS256']]) {
  const how = jwksAlg ? 'and the JWKS relabels the RSA key as HS256' : 'under the RSA key\'s kid';
  test(`algorithm confusion: an ID token signed with HS256 keyed with the provider's RSA public key, ${how}, is refused`, async () => {
    const jwk = await rsaKeyOf(idps[name]);
    const publicKey = createPublicKey({ key: jwk, format: 'jwk' });
    // The forms a confused verifier might use as the HMAC secret.
    const secrets = {
      'the PEM': publicKey.export({ type: 'spki', format: 'pem' }),
      'the PKCS#1 PEM': publicKey.export({ type: 'pkcs1', format: 'pem' }),
      'the DER': publicKey.export({ type: 'spki', format: 'der' }),
      'the JWK JSON': JSON.stringify(jwk),
      'the modulus': Buffer.from(jwk.n, 'base64url'),
    };
    control[name].jwksAlg = jwksAlg;
    const before = await written(idps[name].issuer);
    try {
      for (const [label, secret] of Object.entries(secrets)) {
        control[name].forge = (idToken) => hmacForgery(idToken, secret, jwk.kid);
        const browser = new Client();
        const callback = await oidcSignIn(browser, gh.url, { provider: name, login: `mallory-${name}`, stopAtCallback: true });
        const mark = gh.mark();
        const r = await browser.fetch(callback);
        assert.equal(r.status, 400, label);
        assert.equal((await r.json()).error, 'provider_error', label);
        assert.equal(r.headers.getSetCookie().some((c) => /^gh_(session|access)=[^;]/.test(c)), false, label);
        assert.ok(await gh.waitForLog(new RegExp(`provider ${name} rejected: .*HS256`), { since: mark }), `${label}: the refusal names the algorithm`);
      }
      assert.deepEqual(await written(idps[name].issuer), before, 'nothing written');
    } finally {
      control[name].forge = null;
    }
    if (!jwksAlg) {
      // The same flow, not forged, signs in: the refusals were the forgery's.
      assert.equal((await oidcSignIn(new Client(), gh.url, { provider: name, login: 'honest' })).status, 302);
    }
  });
}
