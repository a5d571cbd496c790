// The service-binding example (examples/service-binding): an app Worker and Gatehouse, each in
// its own `wrangler dev`, joined by wrangler's local dev registry (a per-test folder). Gatehouse
// has a loopback port of its own, but this test never calls it: every answer from Gatehouse
// below came through the app's service binding. (One `wrangler dev -c app -c gatehouse` cannot
// be used: wrangler drops the rate limiting binding of every worker but the first, and
// Gatehouse refuses to serve without its RATE_LIMITER.) The app signs people in on its own host
// (it hands /auth/* to Gatehouse), asks Gatehouse's /auth/me through the binding, and verifies
// the access token locally with the npm package running inside workerd (JWKS also through the
// binding, fetched once).
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
const children = [];

// One `wrangler dev` in its own process group (so the stop below reaches workerd too).
function startWrangler(name, args, env) {
  const child = spawn(WRANGLER, ['dev', ...args, '--ip', '127.0.0.1', '--show-interactive-dev-session=false'], {
    env, cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.output = '';
  child.label = name;
  child.stdout.on('data', (d) => { child.output += d; });
  child.stderr.on('data', (d) => { child.output += d; });
  children.push(child);
  return child;
}

function logs() {
  return children.map((c) => `--- ${c.label} (exit ${c.exitCode}):\n${c.output}`).join('\n');
}

const READY_WITHIN_MS = 90_000;

async function waitFor(what, check) {
  const deadline = Date.now() + READY_WITHIN_MS;
  for (;;) {
    const gone = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (gone) throw new Error(`wrangler dev (${gone.label}) exited:\n${logs()}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${READY_WITHIN_MS / 1000} s:\n${logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try { process.kill(-child.pid, 'SIGTERM'); } catch { return; }
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
  await exited;
  clearTimeout(timer);
}

before(async () => {
  for (const f of ['build/index.js', 'packages/verify/dist/index.js']) {
    await access(join(ROOT, f)).catch(() => { throw new Error(`${f} is missing: run scripts/test (it builds both)`); });
  }
  const port = await freePort();
  app = `http://127.0.0.1:${port}`;
  const secret = randomBytes(24).toString('base64url');
  idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`${app}/auth/callback/dev`] }] });
  dir = await mkdtemp(join(tmpdir(), 'gh-binding-'));
  // This test's own dev registry, so parallel runs (and a developer's own `wrangler dev`) never
  // see each other's Workers.
  const registry = join(dir, 'registry');
  await mkdir(registry);
  const env = { ...QUIET_ENV, WRANGLER_REGISTRY_PATH: registry };
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
    // Gatehouse refuses to run without it; generous here, the limits have their own tests.
    ratelimits: [{ name: 'RATE_LIMITER', namespace_id: '4771', simple: { limit: 10000, period: 60 } }],
    vars: { PUBLIC_URL: app, PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } } },
  };
  const ghConfig = join(gh, 'wrangler.json');
  await writeFile(ghConfig, JSON.stringify(config, null, 2));
  const secrets = { ...baseSecrets(), PROVIDER_DEV_SECRET: secret };
  await writeFile(join(gh, '.dev.vars'), Object.entries(secrets).map(([k, v]) => `${k}='${v}'`).join('\n') + '\n');
  const state = join(dir, 'state');
  await run(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--config', ghConfig, '--persist-to', state], { env, cwd: dir });

  // Gatehouse first, on a loopback port of its own that only the readiness check below uses.
  const ghUrl = `http://127.0.0.1:${await freePort()}`;
  startWrangler('gatehouse', ['-c', ghConfig, '--persist-to', state, '--port', new URL(ghUrl).port,
    '--inspector-port', String(await freePort())], env);
  await waitFor('gatehouse', () => fetch(`${ghUrl}/healthz`).then((r) => r.ok));
  startWrangler('app', ['-c', APP_CONFIG, '--persist-to', join(dir, 'app-state'), '--port', String(port),
    '--inspector-port', String(await freePort()), '--var', `GATEHOUSE_ISSUER:${app}`], env);
  // Ready when Gatehouse answers through the app (the binding found it in the registry).
  await waitFor('app', () => fetch(`${app}/.well-known/jwks.json`).then((r) => r.ok));
});

after(async () => {
  await Promise.all(children.map(stop));
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
