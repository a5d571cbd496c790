// Both verifiers of "Verify tokens in your app" — the npm package (packages/verify) and the
// Rust crate (crates/gatehouse-verify) — against tokens and keys of the REAL Worker: valid,
// wrong audience, wrong typ, alg swapped (none, HS256 keyed with the public key), unknown
// kid (one refetch, then the cooldown), a key rotation (publish, sign, retire), expiry.
//
// The npm verifier runs live against Gatehouse's own /.well-known/jwks.json, with a clock
// the test moves. Every check is also recorded, with the JWKS documents Gatehouse served,
// and the Rust crate replays the same script (tests/real_worker.rs) with the same
// expectations — including how many JWKS requests each verifier made.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn, newSigningKey, ROOT } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';
import { signEd25519, unsigned, decode, thumbprint } from './support/jwt.mjs';
import { createVerifier, GatehouseVerifyError } from '../packages/verify/dist/index.js';

const run = promisify(execFile);
const OTHER_APP = 'https://app.example.test';
const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

/** The script both verifiers follow: named verifiers, a clock, the JWKS Gatehouse serves. */
class Scenario {
  constructor(issuer) {
    this.issuer = issuer;
    this.audiences = { main: [issuer], other: [OTHER_APP], list: [OTHER_APP, issuer], expiry: [issuer] };
    this.t = Math.floor(Date.now() / 1000);
    this.docs = {};
    this.steps = [];
    this.fetches = {};
    this.verifiers = Object.fromEntries(Object.entries(this.audiences).map(([name, audience]) => {
      this.fetches[name] = 0;
      const fetchCounted = (url, init) => { this.fetches[name]++; return fetch(url, init); };
      return [name, createVerifier({ issuer, audience, fetch: fetchCounted, now: () => this.t * 1000, onJwksError: () => {} })];
    }));
  }

  /** Gatehouse now serves this JWKS (read from the live Worker). */
  async serving(name, gh) {
    const res = await fetch(`${gh.url}/.well-known/jwks.json`);
    assert.equal(res.status, 200);
    this.docs[name] = await res.json();
    this.steps.push({ serve: name });
  }

  /** Moves the clock forward by at least `seconds`, and never behind the real time. */
  advance(seconds) { this.t = Math.max(this.t + seconds, Math.floor(Date.now() / 1000)); }
  at(t) { this.t = t; }

  async check(label, token, expect, { verifier = 'main', fetches }) {
    let got = 'ok';
    try {
      await this.verifiers[verifier].verify(token);
    } catch (e) {
      assert.ok(e instanceof GatehouseVerifyError, `${label}: ${e}`);
      got = e.code;
    }
    assert.equal(got, expect, `npm: ${label}`);
    assert.equal(this.fetches[verifier], fetches, `npm: JWKS requests after "${label}"`);
    assert.equal(this.verifiers[verifier].jwksFetches, fetches);
    this.steps.push({ label, verifier, token, at: this.t, expect, fetches });
  }
}

test('the npm and Rust verifiers against the real Worker: every case, a rotation, the cooldown', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'gh-verify-'));
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
  const port = await freePort();
  const secret = randomBytes(24).toString('base64url');
  const idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`] }] });
  cleanups.push(() => idp.close());
  const [A, B, C] = [newSigningKey(), newSigningKey(), newSigningKey()];
  const fixed = { ...baseSecrets(), PROVIDER_DEV_SECRET: secret };
  // A long access TTL, so that the rotation's clock moves stay within every token's life.
  const vars = { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } }, ACCESS_TOKEN_TTL_SECONDS: '3600' };
  const step = async (keys, fn) => {
    const gh = await startGatehouse({ port, stateDir, vars, secrets: { ...fixed, SIGNING_KEYS: JSON.stringify(keys) } });
    try { return await fn(gh); } finally { await gh.stop(); }
  };
  const browser = new Client();
  let s;
  let tokenA;

  // 1. Gatehouse signs with A. A real sign-in gives a real token; the hostile ones reuse its claims.
  await step([A], async (gh) => {
    await oidcSignIn(browser, gh.url, { login: 'vera' });
    tokenA = browser.cookie(gh.url, 'gh_access');
    assert.equal(decode(tokenA).header.kid, thumbprint(A));
    s = new Scenario(gh.url);
    await s.serving('A', gh);
    const claims = decode(tokenA).claims;
    const [h, , sig] = tokenA.split('.');
    const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const hs256Header = b64({ alg: 'HS256', typ: 'at+jwt', kid: thumbprint(A) });
    const hs256 = `${hs256Header}.${b64(claims)}.${createHmac('sha256', Buffer.from(A.x, 'base64url')).update(`${hs256Header}.${b64(claims)}`).digest('base64url')}`;

    await s.check('the real token', tokenA, 'ok', { fetches: 1 });
    await s.check('typ JWT', signEd25519(A, claims, { typ: 'JWT' }), 'wrong_type', { fetches: 1 });
    await s.check('alg none', unsigned({ alg: 'none', typ: 'at+jwt', kid: thumbprint(A) }, claims), 'alg_not_allowed', { fetches: 1 });
    await s.check('HS256 keyed with the public key', hs256, 'alg_not_allowed', { fetches: 1 });
    await s.check('another issuer', signEd25519(A, { ...claims, iss: 'https://evil.example' }), 'wrong_issuer', { fetches: 1 });
    await s.check('tampered claims', `${h}.${b64({ ...claims, sub: 'usr_admin' })}.${sig}`, 'bad_signature', { fetches: 1 });
    await s.check('another key under A\'s kid', signEd25519(C, claims, { kid: thumbprint(A) }), 'bad_signature', { fetches: 1 });
    await s.check('the real token, for another app', tokenA, 'wrong_audience', { verifier: 'other', fetches: 1 });
    await s.check('the real token, for a list that names Gatehouse', tokenA, 'ok', { verifier: 'list', fetches: 1 });
    const stranger = signEd25519(C, claims);
    await s.check('unknown kid, within the cooldown of the first fetch', stranger, 'unknown_kid', { fetches: 1 });
    s.advance(60);
    await s.check('unknown kid after the cooldown: one refetch', stranger, 'unknown_kid', { fetches: 2 });
    await s.check('unknown kid again: no refetch', stranger, 'unknown_kid', { fetches: 2 });
    await s.check('unknown kid again: still none', stranger, 'unknown_kid', { fetches: 2 });

    // The Rust crate's example program, on the real token and the real JWKS.
    const jwksFile = join(stateDir, 'jwks.json');
    await writeFile(jwksFile, JSON.stringify(s.docs.A));
    const example = await run('cargo', ['run', '--quiet', '--locked', '-p', 'gatehouse-verify', '--example', 'verify_jwt', '--', gh.url, jwksFile, tokenA], { cwd: ROOT });
    assert.equal(example.stdout.trim(), `valid: user ${claims.sub} (session ${claims.sid})`);
    const refused = await run('cargo', ['run', '--quiet', '--locked', '-p', 'gatehouse-verify', '--example', 'verify_jwt', '--', gh.url, jwksFile, tokenA, OTHER_APP], { cwd: ROOT }).catch((e) => e);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /^invalid: wrong_audience/);
  });

  // 2. Rotation: B published and signing, A still published. A renewal gives a B token;
  //    the verifier has never seen B, refetches once (the cooldown has passed), accepts it.
  let tokenB;
  await step([B, A], async (gh) => {
    const r = await fetch(`${gh.url}/auth/me`, { headers: { cookie: `gh_session=${browser.cookie(gh.url, 'gh_session')}` } });
    assert.equal(r.status, 200);
    tokenB = r.headers.getSetCookie().find((c) => c.startsWith('gh_access=')).split(';')[0].slice('gh_access='.length);
    assert.equal(decode(tokenB).header.kid, thumbprint(B));
    await s.serving('BA', gh);
    s.advance(60);
    await s.check('a token of the new key B: one refetch finds it', tokenB, 'ok', { fetches: 3 });
    await s.check('a token of A, still published', tokenA, 'ok', { fetches: 3 });
    await s.check('unknown kid right after: no refetch', signEd25519(C, decode(tokenA).claims), 'unknown_kid', { fetches: 3 });
  });

  // 3. A retired. Once the cached JWKS is older than its max age (300 s), A's tokens are refused.
  await step([B], async (gh) => {
    await s.serving('B', gh);
    s.advance(300);
    await s.check('a token of the retired key A', tokenA, 'unknown_kid', { fetches: 4 });
    await s.check('a token of B', tokenB, 'ok', { fetches: 4 });

    // 4. Expiry of a real token: valid until 5 s (the default leeway) past its exp.
    const exp = decode(tokenB).claims.exp;
    s.at(exp + 4);
    await s.check('B\'s token 4 s past exp', tokenB, 'ok', { verifier: 'expiry', fetches: 1 });
    s.at(exp + 5);
    await s.check('B\'s token 5 s past exp', tokenB, 'expired', { verifier: 'expiry', fetches: 1 });
  });

  // The Rust crate replays the same script natively.
  const fixture = join(stateDir, 'fixture.json');
  await writeFile(fixture, JSON.stringify({ issuer: s.issuer, audiences: s.audiences, docs: s.docs, steps: s.steps }, null, 1));
  const rust = await run('cargo', ['test', '--quiet', '--locked', '-p', 'gatehouse-verify', '--test', 'real_worker', '--', '--ignored', '--nocapture'], {
    cwd: ROOT, env: { ...process.env, GATEHOUSE_VERIFY_FIXTURE: fixture },
  }).catch((e) => e);
  assert.ok(!rust.code, `cargo test --test real_worker failed:\n${rust.stdout}\n${rust.stderr}`);
  assert.match(rust.stdout, new RegExp(`replayed ${s.steps.filter((x) => x.label).length} checks`));
});
