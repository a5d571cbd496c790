// The service-binding example (examples/service-binding): an app Worker and Gatehouse in one
// `wrangler dev` (two configs). Gatehouse has no port of its own here — the app is the only
// thing listening — so every answer from Gatehouse below came through the binding, with no
// public hop. The app signs people in on its own host (it hands /auth/* to Gatehouse), asks
// Gatehouse's /auth/me through the binding, and verifies the access token locally with the
// npm package running inside workerd (JWKS also through the binding, fetched once).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, writeFile, copyFile, rm, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, baseSecrets, Client, oidcSignIn, ROOT } from './support/harness.mjs';
import { startOidcProvider } from './support/oidc-provider.mjs';
import { decode } from './support/jwt.mjs';

const run = promisify(execFile);
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const QUIET_ENV = { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' };
const APP_CONFIG = join(ROOT, 'examples', 'service-binding', 'wrangler.toml');

let idp;
let app;
let dir;
let child;
let output = '';

before(async () => {
  for (const f of ['build/index.js', 'packages/verify/dist/index.js']) {
    await access(join(ROOT, f)).catch(() => { throw new Error(`${f} is missing: run scripts/test (it builds both)`); });
  }
  const port = await freePort();
  app = `http://127.0.0.1:${port}`;
  const secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`${app}/auth/callback/dev`] }] });
  dir = await mkdtemp(join(tmpdir(), 'gh-binding-'));
  // Gatehouse under its deployed name (the example binds to "gatehouse"), PUBLIC_URL = the app's host.
  const gh = join(dir, 'gatehouse');
  await mkdir(gh);
  for (const f of ['index.js', 'index_bg.wasm']) await copyFile(join(ROOT, 'build', f), join(gh, f));
  const config = {
    name: 'gatehouse',
    main: join(gh, 'index.js'),
    compatibility_date: '2026-04-01',
    d1_databases: [{ binding: 'DB', database_name: 'gatehouse', database_id: '00000000-0000-0000-0000-000000000000', migrations_dir: join(ROOT, 'migrations') }],
    kv_namespaces: [{ binding: 'SESSIONS', id: '00000000000000000000000000000000' }],
    vars: { PUBLIC_URL: app, PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } } },
  };
  const ghConfig = join(gh, 'wrangler.json');
  await writeFile(ghConfig, JSON.stringify(config, null, 2));
  const secrets = { ...baseSecrets(), PROVIDER_DEV_SECRET: secret };
  await writeFile(join(gh, '.dev.vars'), Object.entries(secrets).map(([k, v]) => `${k}='${v}'`).join('\n') + '\n');
  const state = join(dir, 'state');
  await run(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--config', ghConfig, '--persist-to', state], { env: QUIET_ENV, cwd: dir });

  const inspector = await freePort();
  child = spawn(WRANGLER, ['dev', '-c', APP_CONFIG, '-c', ghConfig, '--persist-to', state, '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(inspector), '--var', `GATEHOUSE_ISSUER:${app}`, '--show-interactive-dev-session=false'], {
    env: QUIET_ENV, cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  // Ready when Gatehouse answers through the app (the binding is connected).
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${output}`);
    const ok = await fetch(`${app}/healthz`).then(() => fetch(`${app}/.well-known/jwks.json`)).then((r) => r.ok).catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`not ready after 90 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (child && child.exitCode === null) {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    await new Promise((r) => { const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} r(); }, 5000); child.once('exit', () => { clearTimeout(t); r(); }); });
  }
  await idp?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('sign in on the app\'s host, then /auth/me through the binding and a local verify', async () => {
  const browser = new Client();
  await oidcSignIn(browser, app, { login: 'sam' });
  const access = browser.cookie(app, 'gh_access');
  assert.ok(access, 'Gatehouse set its access cookie on the app\'s host');

  const remote = await browser.fetch(`${app}/api/me-remote`);
  assert.equal(remote.status, 200);
  assert.equal(remote.headers.get('x-answered-by'), 'gatehouse via service binding');
  const me = await remote.json();
  assert.equal(me.email, 'sam@example.test');
  assert.equal(me.id, decode(access).claims.sub);

  const local = await browser.fetch(`${app}/api/me-local`);
  assert.equal(local.status, 200);
  assert.deepEqual(await local.json(), { id: me.id, email: me.email, session_id: me.session_id, verified: 'locally', jwks_fetches: 1 });
  const again = await (await fetch(`${app}/api/me-local`, { headers: { authorization: `Bearer ${access}` } })).json();
  assert.equal(again.id, me.id);
  assert.equal(again.jwks_fetches, 1, 'the JWKS came once, then from the cache');
});

test('no token or a bad one: 401 from both paths, with the reason', async () => {
  assert.equal((await fetch(`${app}/api/me-remote`)).status, 401);
  const none = await fetch(`${app}/api/me-local`);
  assert.equal(none.status, 401);
  assert.equal((await none.json()).error, 'missing_token');
  const browser = new Client();
  await oidcSignIn(browser, app, { login: 'tom' });
  const [h, c, s] = browser.cookie(app, 'gh_access').split('.');
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...decode(`${h}.${c}.${s}`).claims, sub: 'usr_admin' })).toString('base64url')}.${s}`;
  const bad = await fetch(`${app}/api/me-local`, { headers: { authorization: `Bearer ${forged}` } });
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).error, 'bad_signature');
  assert.equal((await fetch(`${app}/api/me-remote`, { headers: { authorization: `Bearer ${forged}` } })).status, 401);
});
