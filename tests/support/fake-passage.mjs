// A local fake of a Passage app's token side (docs/vendors.md; passage.id itself shut down
// on 2026-01-16): the app's JWKS at `/v1/apps/{app_id}/.well-known/jwks.json` with RS256 keys
// made by node:crypto, and `mint()`, which makes the JWTs the Passage element would put in the
// `psg_auth_token` cookie. `rotate()` adds a key (optionally retiring the old ones), so a token
// with a kid Gatehouse has not seen forces a JWKS refetch; `fault()` makes the JWKS slow or
// failing. Errors use Passage's `{code, error}` shape.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function newKey() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(8).toString('hex');
  const { n, e } = publicKey.export({ format: 'jwk' });
  return { kid, privateKey, jwk: { kty: 'RSA', kid, use: 'sig', alg: 'RS256', n, e } };
}

/** Starts the fake for one app id. */
export async function startFakePassage({ appId = `app${randomBytes(8).toString('hex')}` } = {}) {
  const fake = {
    appId,
    /** Passage's issuer for the app (Gatehouse's default `issuer`). */
    issuer: `https://auth.passage.id/v1/apps/${appId}`,
    keys: [newKey()],
    /** How many times the JWKS was fetched. */
    jwksFetches: 0,
  };
  let fault = null;
  const timers = new Set();

  /** Adds a fresh key that signs from now on; with `retire`, the old keys leave the JWKS. */
  fake.rotate = ({ retire = false } = {}) => {
    const k = newKey();
    fake.keys = retire ? [k] : [...fake.keys, k];
    return k;
  };
  /** The key that signs new tokens. */
  fake.current = () => fake.keys[fake.keys.length - 1];
  /** A key that is not in the JWKS (for forged signatures). */
  fake.foreignKey = newKey;
  /** Makes the JWKS fail or stall: { status, raw, delayMs }; null clears it. */
  fake.fault = (f) => { fault = f; };

  /**
   * A Passage JWT. `claims` override the defaults (iss, aud [app id], sub, iat, exp in an
   * hour); `header` overrides the header; `key` signs (default: the current key); `alg:
   * 'none'` makes an unsigned token.
   */
  fake.mint = (claims = {}, { header = {}, key = fake.current(), alg = 'RS256' } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const body = { iss: fake.issuer, aud: [appId], sub: `psg-user-${randomBytes(6).toString('hex')}`, iat: now, nbf: now, exp: now + 3600, ...claims };
    for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
    if (alg === 'none') return `${b64({ alg: 'none', typ: 'JWT', ...header })}.${b64(body)}.`;
    const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: key.kid, ...header })}.${b64(body)}`;
    return `${input}.${sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`;
  };

  const server = createServer(async (req, res) => {
    const json = (status, body) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
    const path = new URL(req.url, 'http://x').pathname;
    if (req.method !== 'GET' || path !== `/v1/apps/${appId}/.well-known/jwks.json`) {
      return json(404, { code: 'not_found', error: 'not found' });
    }
    fake.jwksFetches++;
    if (fault) {
      if (fault.delayMs) {
        await new Promise((r) => { const t = setTimeout(() => { timers.delete(t); r(); }, fault.delayMs); timers.add(t); });
        if (res.destroyed) return;
      }
      if (fault?.status) {
        if (fault.raw !== undefined) { res.writeHead(fault.status, { 'content-type': 'application/json' }); return res.end(fault.raw); }
        return json(fault.status, { code: 'internal_error', error: 'injected failure' });
      }
    }
    json(200, { keys: fake.keys.map((k) => k.jwk) });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  fake.port = server.address().port;
  /** What to configure as `jwks_url`. */
  fake.jwksUrl = `http://127.0.0.1:${fake.port}/v1/apps/${appId}/.well-known/jwks.json`;
  fake.close = async () => {
    for (const t of timers) clearTimeout(t);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return fake;
}
