// Unit tests of @gatehouse/verify with its own keys, an injected clock and an injected fetch
// (the JWKS cache rules need a clock to move). Tokens from the real Worker: tests/verify-npm.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, generateKeyPair, exportJWK, calculateJwkThumbprint } from 'jose';
import { createHmac } from 'node:crypto';
import { createVerifier, tokenFromRequest, withGatehouse, errorResponse, GatehouseVerifyError } from '../dist/index.js';
import { gatehouse } from '../dist/hono.js';
import { Hono } from 'hono';

const ISS = 'https://login.example.test';

async function newKey() {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, jwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' }, kid };
}

/** A JWKS endpoint whose document the test changes, counting requests. */
function jwksServer(keys) {
  const server = { keys, fetches: 0, fail: false };
  server.fetch = async (url) => {
    server.fetches++;
    assert.equal(url, `${ISS}/.well-known/jwks.json`);
    if (server.fail) return new Response('down', { status: 503 });
    return Response.json({ keys: server.keys.map((k) => k.jwk) });
  };
  return server;
}

function clock(start = Date.now()) {
  const c = { t: start, now: () => c.t, advance: (s) => { c.t += s * 1000; } };
  return c;
}

async function mint(key, claims = {}, header = {}, at = Date.now()) {
  const iat = Math.floor(at / 1000);
  return new SignJWT({ sid: 'sid_1', ...claims })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid, ...header })
    .setIssuer(claims.iss ?? ISS).setAudience(claims.aud ?? ISS).setSubject('usr_1')
    .setIssuedAt(iat).setExpirationTime(claims.exp ?? iat + 300)
    .sign(key.privateKey);
}

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');

async function codeOf(promise) {
  try { await promise; } catch (e) { assert.ok(e instanceof GatehouseVerifyError, `not a GatehouseVerifyError: ${e}`); return e.code; }
  return 'ok';
}

test('a valid token gives its claims; every other case its own code', async () => {
  const key = await newKey();
  const other = await newKey();
  const jwks = jwksServer([key]);
  const c = clock();
  const v = createVerifier({ issuer: ISS, audience: ISS, fetch: jwks.fetch, now: c.now });
  const good = await mint(key, {}, {}, c.t);
  const claims = await v.verify(good);
  assert.equal(claims.sub, 'usr_1');
  assert.equal(claims.sid, 'sid_1');
  const [h, p] = good.split('.');
  const hs256Header = b64({ alg: 'HS256', typ: 'at+jwt', kid: key.kid });
  const hs256 = `${hs256Header}.${p}.${createHmac('sha256', Buffer.from(key.jwk.x, 'base64url')).update(`${hs256Header}.${p}`).digest('base64url')}`;
  const cases = {
    'alg none': [`${b64({ alg: 'none', typ: 'at+jwt', kid: key.kid })}.${p}.`, 'alg_not_allowed'],
    'HS256 keyed with the public key': [hs256, 'alg_not_allowed'],
    'typ JWT': [await mint(key, {}, { typ: 'JWT' }, c.t), 'wrong_type'],
    'wrong iss': [await mint(key, { iss: 'https://evil.example' }, {}, c.t), 'wrong_issuer'],
    'wrong aud': [await mint(key, { aud: 'https://other.example' }, {}, c.t), 'wrong_audience'],
    'expired': [await mint(key, { exp: Math.floor(c.t / 1000) - 6 }, {}, c.t - 400_000), 'expired'],
    'iat in the future': [await mint(key, {}, {}, c.t + 60_000), 'not_yet_valid'],
    'nbf in the future': [await mint(key, { nbf: Math.floor(c.t / 1000) + 60 }, {}, c.t), 'not_yet_valid'],
    'another key under our kid': [await mint({ ...other, kid: key.kid }, {}, {}, c.t), 'bad_signature'],
    'tampered claims': [`${h}.${b64({ ...JSON.parse(Buffer.from(p, 'base64url')), sub: 'usr_admin' })}.${good.split('.')[2]}`, 'bad_signature'],
    'embedded jwk': [await mint(key, {}, { jwk: other.jwk }, c.t), 'malformed'],
    'jku': [await mint(key, {}, { jku: 'https://evil.example/jwks' }, c.t), 'malformed'],
    'unknown crit': [await mint(key, {}, { crit: ['urn:evil'], 'urn:evil': true }, c.t).catch(() => `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid, crit: ['urn:evil'], 'urn:evil': 1 })}.${p}.${good.split('.')[2]}`), 'malformed'],
    'no kid': [await mint(key, {}, { kid: undefined }, c.t), 'malformed'],
    'over 16 KB': [await mint(key, { pad: 'x'.repeat(17 * 1024) }, {}, c.t), 'malformed'],
    'garbage': ['not.a.jwt', 'malformed'],
    'empty': ['', 'missing_token'],
  };
  for (const [name, [token, code]] of Object.entries(cases)) assert.equal(await codeOf(v.verify(token)), code, name);
  assert.equal(jwks.fetches, 1, 'one JWKS fetch for all of it');
});

test('leeway: valid until 5 s past exp by default (exp itself is the first invalid second); configurable', async () => {
  const key = await newKey();
  const c = clock();
  const token = await mint(key, {}, {}, c.t);
  const exp = Math.floor(c.t / 1000) + 300;
  const at = (s) => { c.t = s * 1000; };
  const v = createVerifier({ issuer: ISS, audience: ISS, fetch: jwksServer([key]).fetch, now: c.now });
  at(exp + 4); assert.equal(await codeOf(v.verify(token)), 'ok');
  at(exp + 5); assert.equal(await codeOf(v.verify(token)), 'expired');
  const strict = createVerifier({ issuer: ISS, audience: ISS, fetch: jwksServer([key]).fetch, now: c.now, leewaySeconds: 0 });
  at(exp - 1); assert.equal(await codeOf(strict.verify(token)), 'ok');
  at(exp); assert.equal(await codeOf(strict.verify(token)), 'expired');
});

test('audience: a string or a list; the token must name one of them', async () => {
  const key = await newKey();
  const jwks = jwksServer([key]);
  const appToken = await mint(key, { aud: ['https://app.example', 'https://other.example'] });
  const mk = (audience) => createVerifier({ issuer: ISS, audience, fetch: jwks.fetch });
  assert.equal(await codeOf(mk('https://app.example').verify(appToken)), 'ok');
  assert.equal(await codeOf(mk(['https://x.example', 'https://other.example']).verify(appToken)), 'ok');
  assert.equal(await codeOf(mk(ISS).verify(appToken)), 'wrong_audience');
  assert.throws(() => mk([]), TypeError);
});

test('unknown kid: exactly one refetch, then nothing until the cooldown has passed', async () => {
  const [a, b] = [await newKey(), await newKey()];
  const jwks = jwksServer([a]);
  const c = clock();
  const v = createVerifier({ issuer: ISS, audience: ISS, fetch: jwks.fetch, now: c.now });
  await v.verify(await mint(a, {}, {}, c.t));
  assert.equal(jwks.fetches, 1);
  const stranger = await mint(b, {}, {}, c.t);
  assert.equal(await codeOf(v.verify(stranger)), 'unknown_kid');
  assert.equal(jwks.fetches, 1, 'within the cooldown of the first fetch: no refetch');
  c.advance(60);
  assert.equal(await codeOf(v.verify(stranger)), 'unknown_kid');
  assert.equal(jwks.fetches, 2, 'one refetch');
  for (let i = 0; i < 5; i++) assert.equal(await codeOf(v.verify(stranger)), 'unknown_kid');
  c.advance(59);
  assert.equal(await codeOf(v.verify(stranger)), 'unknown_kid');
  assert.equal(jwks.fetches, 2, 'then none during the cooldown');
  // The key gets published (rotation): after the cooldown one refetch finds it.
  jwks.keys = [a, b];
  c.advance(1);
  assert.equal(await codeOf(v.verify(await mint(b, {}, {}, c.t))), 'ok');
  assert.equal(jwks.fetches, 3);
  assert.equal(v.jwksFetches, 3, 'the verifier counts the same');
});

test('concurrent verifies share one JWKS request', async () => {
  const key = await newKey();
  const jwks = jwksServer([key]);
  const v = createVerifier({ issuer: ISS, audience: ISS, fetch: jwks.fetch });
  const token = await mint(key);
  await Promise.all(Array.from({ length: 10 }, () => v.verify(token)));
  assert.equal(jwks.fetches, 1);
});

test('the cache ages out; a failing JWKS keeps the known keys, with none it is jwks_unavailable', async () => {
  const [a, b] = [await newKey(), await newKey()];
  const jwks = jwksServer([a]);
  const c = clock();
  const errors = [];
  const v = createVerifier({ issuer: ISS, audience: ISS, fetch: jwks.fetch, now: c.now, onJwksError: (e) => errors.push(e) });
  await v.verify(await mint(a, {}, {}, c.t));
  c.advance(300);
  jwks.keys = [b];
  assert.equal(await codeOf(v.verify(await mint(a, {}, {}, c.t))), 'unknown_kid', 'the retired key is gone after max-age');
  assert.equal(jwks.fetches, 2);
  c.advance(300);
  jwks.fail = true;
  assert.equal(await codeOf(v.verify(await mint(b, {}, {}, c.t))), 'ok', 'stale keys stay in use while the JWKS is down');
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'jwks_unavailable');

  const fresh = createVerifier({ issuer: ISS, audience: ISS, fetch: jwks.fetch, now: c.now, onJwksError: () => {} });
  assert.equal(await codeOf(fresh.verify(await mint(b, {}, {}, c.t))), 'jwks_unavailable');
  const before = jwks.fetches;
  assert.equal(await codeOf(fresh.verify(await mint(b, {}, {}, c.t))), 'jwks_unavailable');
  assert.equal(jwks.fetches, before, 'a failed fetch also starts the cooldown');
});

test('one key of an unknown type or a broken one does not reject the set', async () => {
  const key = await newKey();
  const fetch = async () => Response.json({ keys: [{ kty: 'RSA', kid: 'r', n: 'AQAB', e: 'AQAB' }, { kty: 'OKP', crv: 'X25519', kid: 'x', x: 'AA' }, { kty: 'OKP', crv: 'Ed25519', kid: 'enc', use: 'enc', x: key.jwk.x }, 42, key.jwk] });
  const v = createVerifier({ issuer: ISS, audience: ISS, fetch });
  assert.equal(await codeOf(v.verify(await mint(key))), 'ok');
  const [, p, s] = (await mint(key)).split('.');
  assert.equal(await codeOf(v.verify(`${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: 'enc' })}.${p}.${s}`)), 'unknown_kid', 'an encryption key never verifies');
});

test('algorithms: none and HMAC cannot even be configured; the key decides its algorithm', async () => {
  for (const alg of ['none', 'HS256']) assert.throws(() => createVerifier({ issuer: ISS, audience: ISS, algorithms: [alg] }), TypeError);
  const key = await newKey();
  const v = createVerifier({ issuer: ISS, audience: ISS, algorithms: ['EdDSA', 'ES256'], fetch: jwksServer([key]).fetch });
  const [, p, s] = (await mint(key)).split('.');
  assert.equal(await codeOf(v.verify(`${b64({ alg: 'ES256', typ: 'at+jwt', kid: key.kid })}.${p}.${s}`)), 'alg_not_allowed');
});

test('tokenFromRequest: bearer, X-Gatehouse-Jwt, the cookie by scheme; two cookies are refused', () => {
  const req = (url, headers) => new Request(url, { headers });
  assert.equal(tokenFromRequest(req('https://a.example/', { authorization: 'Bearer abc' })), 'abc');
  assert.equal(tokenFromRequest(req('https://a.example/', { authorization: 'bearer  abc ' })), 'abc');
  assert.equal(tokenFromRequest(req('https://a.example/', { authorization: 'Basic abc' })), undefined);
  assert.equal(tokenFromRequest(req('https://a.example/', { 'x-gatehouse-jwt': 'xyz' })), 'xyz');
  assert.equal(tokenFromRequest(req('https://a.example/', { cookie: 'a=1; __Host-gh_access=c1' })), 'c1');
  assert.equal(tokenFromRequest(req('https://a.example/', { cookie: 'gh_access=c1' })), undefined, 'no prefix on https: not ours');
  assert.equal(tokenFromRequest(req('http://127.0.0.1:8787/', { cookie: 'gh_access=c2' })), 'c2');
  assert.throws(() => tokenFromRequest(req('https://a.example/', { cookie: '__Host-gh_access=c1; __Host-gh_access=c2' })), (e) => e.code === 'malformed');
  assert.equal(tokenFromRequest(req('https://a.example/', { authorization: 'Bearer b', cookie: '__Host-gh_access=c' }), { sources: ['cookie'] }), 'c');
});

test('withGatehouse and the Hono middleware: claims for the handler, 401 / 503 otherwise', async () => {
  const key = await newKey();
  const jwks = jwksServer([key]);
  const v = createVerifier({ issuer: ISS, audience: ISS, fetch: jwks.fetch });
  const token = await mint(key);
  const handler = withGatehouse(v, (_req, env, _ctx, claims) => Response.json({ sub: claims.sub, env }));
  const ok = await handler(new Request('https://app.example/', { headers: { authorization: `Bearer ${token}` } }), 'E', {});
  assert.deepEqual(await ok.json(), { sub: 'usr_1', env: 'E' });
  const none = await handler(new Request('https://app.example/'), 'E', {});
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('www-authenticate'), 'Bearer');
  assert.equal((await none.json()).error, 'missing_token');
  const bad = await handler(new Request('https://app.example/', { headers: { authorization: `Bearer ${token}x` } }), 'E', {});
  assert.equal(bad.status, 401);
  assert.match(bad.headers.get('www-authenticate'), /invalid_token/);
  assert.equal(errorResponse(new GatehouseVerifyError('jwks_unavailable', 'x')).status, 503);

  const app = new Hono();
  app.use('/api/*', gatehouse(v));
  app.get('/api/me', (c) => c.json({ id: c.get('gatehouse').sub }));
  app.use('/open/*', gatehouse(v, { optional: true }));
  app.get('/open/me', (c) => c.json({ id: c.get('gatehouse')?.sub ?? null }));
  assert.deepEqual(await (await app.request('/api/me', { headers: { authorization: `Bearer ${token}` } })).json(), { id: 'usr_1' });
  assert.equal((await app.request('/api/me')).status, 401);
  assert.deepEqual(await (await app.request('/open/me')).json(), { id: null });
  assert.equal((await app.request('/open/me', { headers: { 'x-gatehouse-jwt': 'bad' } })).status, 401);
});
