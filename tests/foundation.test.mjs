// The foundation through the real Worker: liveness, routing and the error model, local D1
// and KV written by the Worker and read back, and bad configuration reported, not panicked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startGatehouse, baseSecrets, Client } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';

let gh;
let idp;
before(async () => {
  // A real provider, so that starting a sign-in works and the Worker writes its transaction.
  idp = await startOidcProvider({ clients: [{ client_id: 'c', client_secret: 'foundation-client-secret', redirect_uris: ['http://127.0.0.1:9/cb'] }] });
  const providers = { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'c', display_name: 'Dev' } };
  gh = await startGatehouse({ vars: { PROVIDERS: providers }, secrets: { ...baseSecrets(), PROVIDER_DEV_SECRET: 'foundation-client-secret' } });
});
after(async () => { await gh?.stop(); await idp?.close(); });

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

  // KV: starting a sign-in makes the Worker store its login transaction under the hash of
  // the state (never the state itself); the test reads back what the Worker wrote.
  const browser = new Client();
  const txnsBefore = await gh.kv.list('t:');
  const start = await browser.fetch(`${gh.url}/auth/login?provider=dev&return_to=${encodeURIComponent('/probe')}`);
  assert.equal(start.status, 302);
  const state = new URL(start.headers.get('location')).searchParams.get('state');
  const key = `t:${createHash('sha256').update(state).digest('base64url')}`;
  assert.deepEqual((await gh.kv.list('t:')).filter((k) => !txnsBefore.includes(k)), [key], 'one transaction, under the hash of the state');
  const stored = JSON.parse(await gh.kv.get(key));
  assert.equal(stored.provider, 'dev');
  assert.equal(stored.return_to, '/probe');
  // A key nobody wrote reads as absent — an answer from the store, not a failed read.
  assert.equal(await gh.kv.get(`t:${createHash('sha256').update('never-issued').digest('base64url')}`), null);
});

test('a failed store read is an error, never "absent"', async () => {
  // KV refuses keys over 512 bytes; the harness must surface that, not answer null.
  await assert.rejects(gh.kv.get('x'.repeat(600)), /test route kv\/get failed: HTTP 500/);
  await assert.rejects(gh.d1('SELECT * FROM no_such_table'), /test route d1 failed: HTTP 500.*no such table/s);
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

test('a chunked body is refused (413) as soon as it passes 64 KB, before the sender has finished', async () => {
  // No Content-Length: the body's size is known only as it arrives. The sender writes 96 KB
  // and then holds the request open; reading the whole body before measuring it would wait
  // for an end that never comes (the deadline below fails the test then).
  const { request } = await import('node:http');
  const url = new URL(`${gh.url}/auth/logout`);
  const [status, text] = await new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST',
      headers: { 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { clearTimeout(deadline); req.destroy(); resolve([res.statusCode, body]); });
    });
    const deadline = setTimeout(() => { req.destroy(); reject(new Error('no answer while the body was still open')); }, 30_000);
    req.on('error', (e) => { clearTimeout(deadline); reject(e); });
    for (let i = 0; i < 6; i++) req.write(Buffer.alloc(16 * 1024, 0x20));
  });
  assert.equal(status, 413, text);
  assert.equal(JSON.parse(text).error, 'payload_too_large');
});
