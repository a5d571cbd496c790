// Gatehouse's own access JWTs through the real Worker: a valid token needs no storage, an
// expired one is renewed from the KV session (only for an active user), every attack of
// docs/security.md (rule 'JWTs') is refused, and /auth/token serves SPAs with CORS for allowed
// origins only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHmac } from 'node:crypto';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn, newSigningKey } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';
import { signEd25519, unsigned, decode, accessClaims, thumbprint, expiredAccess, accessTokenOfLength } from './support/jwt.mjs';

const APP_ORIGIN = 'https://app.example.test';
let gh;
let idp;
let key;
before(async () => {
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({
    clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`] }],
  });
  key = newSigningKey();
  gh = await startGatehouse({
    port,
    vars: { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } }, ALLOWED_RETURN_ORIGINS: APP_ORIGIN },
    secrets: { ...baseSecrets(), SIGNING_KEYS: JSON.stringify([key]), PROVIDER_DEV_SECRET: secret },
  });
});
after(async () => { await gh?.stop(); await idp?.close(); });

async function signedIn(login) {
  const browser = new Client();
  await oidcSignIn(browser, gh.url, { login });
  const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  return { browser, me, access: browser.cookie(gh.url, 'gh_access'), session: browser.cookie(gh.url, 'gh_session') };
}
const bearer = (token) => fetch(`${gh.url}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
/** /auth/me for a browser whose access token has expired: renewed from `session`, or not. */
const renewal = (me, session) => fetch(`${gh.url}/auth/me`, { headers: { cookie: `gh_access=${expiredAccess(key, gh.url, { sub: me.id, sid: me.session_id })}; gh_session=${session}` } });

test('a valid access token is accepted with no storage read: it outlives its KV session until expiry', async () => {
  const { me, access, session } = await signedIn('tina');
  assert.equal(decode(access).header.typ, 'at+jwt');
  assert.equal(decode(access).header.kid, thumbprint(key));
  assert.equal((await renewal(me, session)).status, 200, 'the session renews while it is in KV');
  await gh.kv.delete(`s:${me.session_id}`);
  assert.equal(await gh.kv.get(`s:${me.session_id}`), null);
  const r = await bearer(access);
  assert.equal(r.status, 200, 'verified from the token alone');
  assert.equal((await r.json()).id, me.id);
  // The session cookie itself can no longer renew anything.
  assert.equal((await renewal(me, session)).status, 401);
  const renew = await fetch(`${gh.url}/auth/token`, { method: 'POST', headers: { cookie: `gh_session=${session}`, origin: gh.url } });
  assert.equal(renew.status, 401);
});

test('an expired access token is renewed from the session', async () => {
  const { me, session } = await signedIn('uma');
  const now = Math.floor(Date.now() / 1000);
  const expired = signEd25519(key, accessClaims(gh.url, { sub: me.id, sid: me.session_id, iat: now - 1000, ttl: 300 }));
  assert.equal((await bearer(expired)).status, 401, 'expired');
  const r = await fetch(`${gh.url}/auth/me`, { headers: { cookie: `gh_access=${expired}; gh_session=${session}` } });
  assert.equal(r.status, 200);
  const renewed = r.headers.getSetCookie().find((c) => c.startsWith('gh_access='));
  assert.ok(renewed, 'a fresh access cookie is set');
  const token = renewed.split(';')[0].slice('gh_access='.length);
  assert.ok(decode(token).claims.exp > now, 'the new token is current');
  assert.equal((await bearer(token)).status, 200);
});

test('the token of a deactivated user is not renewed, and its session ends', async () => {
  const { me, access, session } = await signedIn('vic');
  await gh.d1(`UPDATE users SET active = 0 WHERE id = ?`, [me.id]);
  try {
    // Within the access TTL the token still works: that is the documented revocation bound.
    assert.equal((await bearer(access)).status, 200);
    const r = await renewal(me, session);
    assert.equal(r.status, 401, 'no renewal for a deactivated user');
    assert.equal(r.headers.getSetCookie().some((c) => /^gh_access=[^;]/.test(c)), false);
    assert.equal(await gh.kv.get(`s:${me.session_id}`), null, 'and the session is gone');
  } finally {
    await gh.d1(`UPDATE users SET active = 1 WHERE id = ?`, [me.id]);
  }
  // Reactivated, the ended session stays ended.
  assert.equal((await renewal(me, session)).status, 401);
});

test('a token of exactly 16 384 bytes is verified; one byte more is refused unread', async () => {
  const { me } = await signedIn('max');
  const claims = accessClaims(gh.url, { sub: me.id, sid: me.session_id });
  const atLimit = accessTokenOfLength(key, claims, 16 * 1024);
  const overLimit = accessTokenOfLength(key, claims, 16 * 1024 + 1);
  assert.equal(atLimit.length, 16384);
  const ok = await bearer(atLimit);
  assert.equal(ok.status, 200, 'the limit itself is allowed');
  assert.equal((await ok.json()).id, me.id);
  const refused = await bearer(overLimit);
  assert.equal(refused.status, 401);
  assert.equal((await refused.json()).error, 'unauthorized');
});

test('every access-token attack of docs/security.md (rule JWTs) is refused', async () => {
  const { me } = await signedIn('walt');
  const now = Math.floor(Date.now() / 1000);
  const good = accessClaims(gh.url, { sub: me.id, sid: me.session_id, iat: now });
  const other = newSigningKey();
  const pub = { kty: key.kty, crv: key.crv, x: key.x };
  const hs256 = (() => {
    const h = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: thumbprint(key) })).toString('base64url');
    const c = Buffer.from(JSON.stringify(good)).toString('base64url');
    return `${h}.${c}.${createHmac('sha256', Buffer.from(key.x, 'base64url')).update(`${h}.${c}`).digest('base64url')}`;
  })();
  const attacks = {
    'alg none': unsigned({ alg: 'none', typ: 'at+jwt' }, good),
    'alg none with a signature': unsigned({ alg: 'none', typ: 'at+jwt', kid: thumbprint(key) }, good, 'AAAA'),
    'HS256 keyed with the public key': hs256,
    'another key under our kid': signEd25519(other, good, { kid: thumbprint(key) }),
    'unknown kid': signEd25519(other, good),
    'embedded jwk header': signEd25519(key, good, { jwk: pub }),
    'jku header': signEd25519(key, good, { jku: 'https://evil.example/jwks' }),
    'x5u header': signEd25519(key, good, { x5u: 'https://evil.example/cert' }),
    'unknown crit': signEd25519(key, good, { crit: ['urn:evil'], 'urn:evil': true }),
    'typ JWT (an ID token, not an access token)': signEd25519(key, good, { typ: 'JWT' }),
    'no typ': signEd25519(key, good, { typ: undefined }),
    'wrong iss': signEd25519(key, { ...good, iss: 'https://other.example' }),
    'wrong aud': signEd25519(key, { ...good, aud: 'https://other.example' }),
    'expired': signEd25519(key, { ...good, iat: now - 1000, exp: now - 61 }),
    'nbf in the future': signEd25519(key, { ...good, nbf: now + 120 }),
    'iat in the future': signEd25519(key, { ...good, iat: now + 120, exp: now + 400 }),
    'over 16 KB': signEd25519(key, { ...good, pad: 'x'.repeat(17 * 1024) }),
    'tampered claims': (() => { const [h, , s] = signEd25519(key, good).split('.'); return `${h}.${Buffer.from(JSON.stringify({ ...good, sub: 'usr_admin' })).toString('base64url')}.${s}`; })(),
    'garbage': 'not.a.jwt',
    // Signatures of the wrong length are refused as such, never a signature-backend failure
    // (which would be a 500).
    'a short signature': (() => { const [h, c, sig] = signEd25519(key, good).split('.'); return `${h}.${c}.${sig.slice(0, 16)}`; })(),
    'a long signature': (() => { const [h, c, sig] = signEd25519(key, good).split('.'); return `${h}.${c}.${sig}AAAA`; })(),
  };
  for (const [name, token] of Object.entries(attacks)) {
    const r = await bearer(token);
    assert.equal(r.status, 401, name);
    assert.equal((await r.json()).error, 'unauthorized', name);
  }
  // Positive control: the same claims, properly signed, pass. Gatehouse's own tokens get no
  // leeway past exp (that would stretch the revocation bound): 30 s past exp is refused.
  assert.equal((await bearer(signEd25519(key, good))).status, 200);
  assert.equal((await bearer(signEd25519(key, { ...good, iat: now - 330, exp: now - 30 }))).status, 401);
  assert.equal((await bearer(signEd25519(key, { ...good, iat: now - 300, exp: now }))).status, 401, 'refused at exp');
});

test('POST /auth/token: a fresh token for the session, CORS only for allowed origins', async () => {
  const { session } = await signedIn('xena');
  const ok = await fetch(`${gh.url}/auth/token`, { method: 'POST', headers: { cookie: `gh_session=${session}`, origin: APP_ORIGIN } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('access-control-allow-origin'), APP_ORIGIN);
  assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
  const body = await ok.json();
  assert.equal(body.token_type, 'Bearer');
  assert.equal((await bearer(body.access_token)).status, 200);

  const evil = await fetch(`${gh.url}/auth/token`, { method: 'POST', headers: { cookie: `gh_session=${session}`, origin: 'https://evil.example' } });
  assert.equal(evil.status, 403);
  assert.equal(evil.headers.get('access-control-allow-origin'), null);
  const pre = await fetch(`${gh.url}/auth/token`, { method: 'OPTIONS', headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), APP_ORIGIN);
  const preEvil = await fetch(`${gh.url}/auth/token`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
  assert.equal(preEvil.status, 403);
});
