// The foundation through the real Worker: liveness, routing and the error model, local D1
// and KV written by the Worker and read back, and bad configuration reported, not panicked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGatehouse, baseSecrets, Client } from './support/harness.mjs';

const DEV_PROVIDERS = { dev: { kind: 'oidc', issuer: 'http://127.0.0.1:9', client_id: 'c', display_name: 'Dev' } };
let gh;
before(async () => {
  gh = await startGatehouse({ vars: { PROVIDERS: DEV_PROVIDERS }, secrets: { ...baseSecrets(), PROVIDER_DEV_SECRET: 's' } });
});
after(async () => { await gh?.stop(); });

test('GET /healthz answers ok', async () => {
  const r = await fetch(`${gh.url}/healthz`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ok' });
});

test('unknown routes are 404: JSON for APIs, HTML for browsers', async () => {
  const api = await fetch(`${gh.url}/nope`);
  assert.equal(api.status, 404);
  const body = await api.json();
  assert.equal(body.error, 'not_found');
  assert.equal(typeof body.message, 'string');
  const page = await fetch(`${gh.url}/nope`, { headers: { accept: 'text/html' } });
  assert.equal(page.status, 404);
  assert.match(page.headers.get('content-type'), /text\/html/);
  assert.match(await page.text(), /<h1>/);
});

test('the login page lists the configured providers', async () => {
  const r = await fetch(`${gh.url}/auth/login`, { headers: { accept: 'text/html' } });
  assert.equal(r.status, 200);
  assert.match(await r.text(), /Continue with Dev/);
});

test('the Worker writes to KV and D1, and both read back', async () => {
  const client = new Client();
  // A callback without a login transaction is refused and writes nothing: a flood of them
  // must cost no storage (it is counted by the per-network limit instead).
  const failed = "SELECT COUNT(*) AS n FROM events WHERE type = 'sign_in_failed'";
  const before = await gh.d1(failed);
  const r = await client.fetch(`${gh.url}/auth/callback/dev?code=x&state=y`);
  assert.equal(r.status, 400);
  assert.deepEqual(await gh.d1(failed), before, 'no row for a callback without a transaction');

  // D1: a refused admin key is an audit event the Worker writes. (The sign-in tests show the
  // Worker's KV writes: sessions.)
  const refusedKey = "SELECT COUNT(*) AS n FROM events WHERE type = 'admin_auth_failed'";
  const keyBefore = await gh.d1(refusedKey);
  const admin = await fetch(`${gh.url}/admin/users`, { headers: { authorization: 'Bearer wrong', 'cf-connecting-ip': '192.0.2.201' } });
  assert.equal(admin.status, 401);
  const keyAfter = await gh.d1(refusedKey);
  assert.equal(keyAfter[0].n, keyBefore[0].n + 1, 'the refused key was recorded in D1');

  // KV: the local namespace the Worker is bound to, through wrangler's CLI.
  await gh.kv.put('probe:key', 'probe-value');
  assert.equal((await gh.kv.get('probe:key'))?.trim(), 'probe-value');
  assert.deepEqual(await gh.kv.list('probe:'), ['probe:key']);
});

test('the JWKS publishes the signing key with cache headers', async () => {
  const r = await fetch(`${gh.url}/.well-known/jwks.json`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('cache-control'), /max-age=\d+/);
  const { keys } = await r.json();
  assert.equal(keys.length, 1);
  assert.equal(keys[0].kty, 'OKP');
  assert.equal(keys[0].d, undefined, 'never the private half');
});
