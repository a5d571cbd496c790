// Minting JWTs in tests with node:crypto — Gatehouse-shaped access tokens signed with a test
// deployment's own key (to craft expired or hostile tokens), and tokens with any header.
import { createPrivateKey, createHash, sign } from 'node:crypto';

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** RFC 7638 thumbprint of an Ed25519 JWK (Gatehouse's `kid`). */
export function thumbprint(jwk) {
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })).digest('base64url');
}

/** Signs `claims` with the Ed25519 private JWK; `header` overrides the default header. */
export function signEd25519(privateJwk, claims, header = {}) {
  const h = { alg: 'EdDSA', typ: 'at+jwt', kid: thumbprint(privateJwk), ...header };
  const input = `${b64(h)}.${b64(claims)}`;
  const sig = sign(null, Buffer.from(input), createPrivateKey({ key: privateJwk, format: 'jwk' }));
  return `${input}.${sig.toString('base64url')}`;
}

/** A token with an arbitrary header and signature bytes (for `alg: none` and the like). */
export function unsigned(header, claims, signature = '') {
  return `${b64(header)}.${b64(claims)}.${signature}`;
}

/** Decodes a JWT's header and claims without checking anything. */
export function decode(token) {
  const [h, c] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), claims: JSON.parse(Buffer.from(c, 'base64url')) };
}

/** The claims of a Gatehouse access token for `url`. */
export function accessClaims(url, { sub, sid, email = null, name = null, iat = Math.floor(Date.now() / 1000), ttl = 300, ...rest }) {
  return { iss: url, aud: url, sub, sid, email, name, iat, exp: iat + ttl, ...rest };
}

/** The first (signing) key of a deployment's SIGNING_KEYS secret. */
export function signingKeyOf(secrets) {
  return JSON.parse(secrets.SIGNING_KEYS)[0];
}

/**
 * An access token for session `sid` of user `sub` that expired long ago (beyond any leeway),
 * properly signed: what a browser holds next to its session cookie once the access TTL is
 * over, so that the request must be renewed from the session.
 */
export function expiredAccess(privateJwk, url, { sub, sid }) {
  const iat = Math.floor(Date.now() / 1000) - 3600;
  return signEd25519(privateJwk, accessClaims(url, { sub, sid, iat, ttl: 300 }));
}

/**
 * A signed access token of exactly `length` characters: the claims carry padding, and the
 * header JSON gets spaces where base64url cannot hit a length (4n+1 characters) otherwise.
 */
export function accessTokenOfLength(privateJwk, claims, length) {
  const header = { alg: 'EdDSA', typ: 'at+jwt', kid: thumbprint(privateJwk) };
  for (let spaces = 0; spaces < 4; spaces++) {
    const h = b64(JSON.stringify(header).replace('{', `{${' '.repeat(spaces)}`));
    const base = JSON.stringify({ ...claims, pad: '' }).length;
    const sigLength = 86; // an Ed25519 signature: 64 bytes
    // Claims of n bytes give ceil(4n/3) characters; find the padding that makes the total.
    for (let pad = 0; pad < length; pad++) {
      const c = Math.ceil((4 * (base + pad)) / 3);
      const total = h.length + 1 + c + 1 + sigLength;
      if (total > length) break;
      if (total === length) {
        const input = `${h}.${b64({ ...claims, pad: 'x'.repeat(pad) })}`;
        const sig = sign(null, Buffer.from(input), createPrivateKey({ key: privateJwk, format: 'jwk' }));
        const token = `${input}.${sig.toString('base64url')}`;
        if (token.length !== length) throw new Error(`made ${token.length}, wanted ${length}`);
        return token;
      }
    }
  }
  throw new Error(`no token of length ${length}`);
}
