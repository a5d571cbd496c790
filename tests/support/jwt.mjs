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
