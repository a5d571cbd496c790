// A runtime-neutral check of the build (Web APIs only, no node: imports): run it with
//   node test/runtime-smoke.mjs   |   deno run test/runtime-smoke.mjs   |   bun test/runtime-smoke.mjs
// (`npm test` runs it under Node among the other tests; it throws on any failure).
import { SignJWT, generateKeyPair, exportJWK, calculateJwkThumbprint } from 'jose';
import { createVerifier, tokenFromRequest, withGatehouse } from '../dist/index.js';

const ISS = 'https://login.example.test';
const { publicKey, privateKey } = await generateKeyPair('EdDSA', { extractable: true });
const jwk = { ...(await exportJWK(publicKey)), alg: 'EdDSA', use: 'sig' };
jwk.kid = await calculateJwkThumbprint(jwk);
let fetches = 0;
let t = Date.now();
const verifier = createVerifier({
  issuer: ISS, audience: ISS, now: () => t,
  fetch: async () => { fetches++; return Response.json({ keys: [jwk] }); },
});
const mint = (header = {}) => new SignJWT({ sid: 's' }).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: jwk.kid, ...header })
  .setIssuer(ISS).setAudience(ISS).setSubject('usr_1').setIssuedAt().setExpirationTime('5m').sign(privateKey);
const codeOf = (p) => p.then(() => 'ok', (e) => e.code);
const expect = (what, got, want) => { if (got !== want) throw new Error(`${what}: got ${got}, want ${want}`); };

const token = await mint();
expect('valid', await codeOf(verifier.verify(token)), 'ok');
expect('typ', await codeOf(verifier.verify(await mint({ typ: 'JWT' }))), 'wrong_type');
expect('unknown kid', await codeOf(verifier.verify(await mint({ kid: 'other' }))), 'unknown_kid');
expect('fetches within the cooldown', fetches, 1);
t += 400_000;
expect('expired', await codeOf(verifier.verify(token)), 'expired');
const handler = withGatehouse(verifier, (_r, _e, _c, user) => new Response(user.sub));
t -= 400_000;
const res = await handler(new Request('https://app.example/', { headers: { cookie: `__Host-gh_access=${token}` } }), {}, {});
expect('wrapper', await res.text(), 'usr_1');
expect('cookie', tokenFromRequest(new Request('http://127.0.0.1/', { headers: { cookie: `gh_access=${token}` } })), token);
console.log(`runtime smoke test passed (${typeof Deno !== 'undefined' ? 'Deno' : typeof Bun !== 'undefined' ? 'Bun' : 'Node'})`);
