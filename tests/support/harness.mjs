// The integration-test harness: starts the built Worker in the real runtime (workerd, via
// `wrangler dev`) on a free loopback port, with local D1 and KV in a temporary folder and the
// migrations applied; waits for readiness (never a fixed sleep); exposes D1 and KV through
// wrangler's own CLI; and stops everything when the test ends, pass or fail.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm, access, copyFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const run = promisify(execFile);
const QUIET_ENV = { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' };

/**
 * A free TCP port on loopback, for a server started later by another process. Drawn from
 * 20000–31999, below Linux's ephemeral range (32768+), so that the ports the OS hands out
 * meanwhile (to wrangler's and workerd's own sockets, to clients) cannot take it first.
 */
export async function freePort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const srv = createServer();
    const ok = await new Promise((r) => { srv.once('error', () => r(false)); srv.listen(port, '127.0.0.1', () => r(true)); });
    if (ok) {
      await new Promise((r) => srv.close(r));
      return port;
    }
  }
  throw new Error('no free port in 20000-31999');
}

/** A fresh Ed25519 private JWK (what scripts/bootstrap / gatehouse-keys make). */
export function newSigningKey() {
  const { privateKey } = generateKeyPairSync('ed25519');
  const { kty, crv, x, d } = privateKey.export({ format: 'jwk' });
  return { kty, crv, x, d };
}

/** Secrets every test deployment needs, fresh per call. */
export function baseSecrets() {
  return {
    SIGNING_KEYS: JSON.stringify([newSigningKey()]),
    STATE_SECRET: randomBytes(32).toString('base64url'),
    ADMIN_API_KEY: randomBytes(32).toString('base64url'),
  };
}

async function waitUntilReady(url, child, log, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${log()}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Gatehouse not ready after ${timeoutMs} ms:\n${log()}`);
}

/**
 * Starts Gatehouse. `vars` go to the config's [vars] (objects allowed), `secrets` to
 * .dev.vars. `PUBLIC_URL` defaults to the chosen URL; pass `PUBLIC_URL: null` to omit it.
 * `testScheduled` turns on wrangler's `/__scheduled` route, which runs the cron handler.
 * `buildDir` runs another build than build/ (the benchmarks compare two).
 */
export async function startGatehouse({ vars = {}, secrets = baseSecrets(), port, stateDir, testScheduled = false, buildDir = join(ROOT, 'build') } = {}) {
  await access(join(buildDir, 'index.js')).catch(() => {
    throw new Error('build/index.js is missing: run scripts/build (the test command does)');
  });
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-test-'));
  // Run a private copy of the build, so that a rebuild during the test cannot swap the
  // Worker under it (wrangler dev reloads when `main` changes).
  // The Worker lives in its own folder, and wrangler's CLI (D1/KV reads) runs from another,
  // so that nothing the CLI writes lands where `wrangler dev` watches for changes.
  const workerDir = join(dir, 'worker');
  const cliDir = join(dir, 'cli');
  await mkdir(workerDir);
  await mkdir(cliDir);
  for (const f of ['index.js', 'index_bg.wasm']) await copyFile(join(buildDir, f), join(workerDir, f));
  const allVars = { PUBLIC_URL: url, ...vars };
  for (const [k, v] of Object.entries(allVars)) if (v === null) delete allVars[k];
  const config = {
    name: 'gatehouse-test',
    main: join(workerDir, 'index.js'),
    compatibility_date: '2026-04-01',
    d1_databases: [{ binding: 'DB', database_name: 'gatehouse', database_id: '00000000-0000-0000-0000-000000000000', migrations_dir: join(ROOT, 'migrations') }],
    kv_namespaces: [{ binding: 'SESSIONS', id: '00000000000000000000000000000000' }],
    vars: allVars,
  };
  const configPath = join(dir, 'wrangler.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  // wrangler's CLI gets its own copy of the config (same bindings, same state folder), so
  // that what it writes next to its config never lands where `wrangler dev` watches.
  const cliConfigPath = join(cliDir, 'wrangler.json');
  await writeFile(cliConfigPath, JSON.stringify(config, null, 2));
  await writeFile(join(dir, '.dev.vars'), Object.entries(secrets).map(([k, v]) => `${k}='${v}'`).join('\n') + '\n');
  // `stateDir` lets a test stop and restart Gatehouse over the same D1 and KV (key rotation).
  const state = stateDir ?? join(dir, 'state');
  const common = ['--config', configPath, '--persist-to', state];
  await run(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', ...common], { env: { ...QUIET_ENV }, cwd: dir });

  const inspector = await freePort();
  const child = spawn(WRANGLER, ['dev', ...common, '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector), '--show-interactive-dev-session=false', ...(testScheduled ? ['--test-scheduled'] : [])], {
    env: QUIET_ENV, cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const stop = async () => {
    if (child.exitCode === null) {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
      await new Promise((r) => { const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} r(); }, 5000); child.once('exit', () => { clearTimeout(t); r(); }); });
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(url, child, () => output);
  } catch (e) {
    await stop();
    throw e;
  }
  const cliArgs = ['--config', cliConfigPath, '--persist-to', state];
  const cli = async (args) => (await run(WRANGLER, [...args, '--local', ...cliArgs], { env: QUIET_ENV, cwd: cliDir, maxBuffer: 16 << 20 })).stdout;
  return {
    url,
    port,
    dir,
    /** The process group of `wrangler dev` (workerd runs inside it): for CPU accounting. */
    pid: child.pid,
    logs: () => output,
    /** Waits (bounded) until the Worker's log output matches `re`; returns whether it did. */
    async waitForLog(re, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(output)) {
        if (Date.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, 50));
      }
      return true;
    },
    stop,
    /** Runs SQL on the local D1 and returns the rows of the last statement. */
    async d1(sql) {
      const out = JSON.parse(await cli(['d1', 'execute', 'DB', '--command', sql, '--json']));
      return out[out.length - 1].results;
    },
    /** KV: get (null when missing), put, list keys by prefix. */
    kv: {
      async get(key) {
        // wrangler prints "Value not found" (exit 0) for a missing key.
        const out = await cli(['kv', 'key', 'get', key, '--binding', 'SESSIONS', '--text']).catch(() => null);
        return out === null || out.trim() === 'Value not found' ? null : out;
      },
      async put(key, value) { await cli(['kv', 'key', 'put', key, value, '--binding', 'SESSIONS']); },
      async delete(key) { await cli(['kv', 'key', 'delete', key, '--binding', 'SESSIONS']); },
      async list(prefix = '') { return JSON.parse(await cli(['kv', 'key', 'list', '--binding', 'SESSIONS', '--prefix', prefix])).map((k) => k.name); },
    },
  };
}

/**
 * A tiny browser stand-in: a cookie jar per host (as browsers scope cookies, ignoring the
 * port) and manual redirects, so tests see every hop.
 */
export class Client {
  constructor() { this.jar = new Map(); }

  cookieHeader(url) {
    const host = new URL(url).hostname;
    const c = this.jar.get(host) ?? new Map();
    return [...c].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  store(url, res) {
    const host = new URL(url).hostname;
    const c = this.jar.get(host) ?? new Map();
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const maxAge = attrs.map((a) => a.trim().toLowerCase()).find((a) => a.startsWith('max-age='));
      if (value === '' || maxAge === 'max-age=0') c.delete(name); else c.set(name, value);
    }
    this.jar.set(host, c);
  }

  cookie(url, name) { return this.jar.get(new URL(url).hostname)?.get(name); }

  async fetch(url, init = {}) {
    const headers = new Headers(init.headers ?? {});
    const cookies = this.cookieHeader(url);
    if (cookies && !headers.has('cookie')) headers.set('cookie', cookies);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(url, res);
    return res;
  }

  /** Follows redirects until `stop(url)` is true or a non-redirect answer; returns { res, url }. */
  async follow(url, { stop = () => false, init } = {}) {
    let res = await this.fetch(url, init);
    for (let hops = 0; hops < 20 && res.status >= 300 && res.status < 400; hops++) {
      const next = new URL(res.headers.get('location'), url).toString();
      if (stop(next)) return { res, url, next };
      await res.arrayBuffer();
      url = next;
      res = await this.fetch(url);
    }
    return { res, url };
  }
}

/**
 * Signs in through oidc-provider's dev interaction pages as `login`, starting from
 * Gatehouse's login route; returns the final Gatehouse response (the redirect to return_to).
 * With `stopAtCallback`, returns the callback URL without visiting it; with `link`, links the
 * identity to the user already signed in (`/auth/login?link=1`).
 */
export async function oidcSignIn(client, gatehouseUrl, { provider = 'dev', login = 'alice', returnTo, stopAtCallback = false, link = false } = {}) {
  const start = new URL(`${gatehouseUrl}/auth/login`);
  start.searchParams.set('provider', provider);
  if (link) start.searchParams.set('link', '1');
  if (returnTo) start.searchParams.set('return_to', returnTo);
  const isCallback = (u) => u.startsWith(`${gatehouseUrl}/auth/callback/`);
  // Linking is started from Gatehouse's own pages: a browser says so with Fetch Metadata.
  const init = link ? { headers: { 'sec-fetch-site': 'same-origin' } } : undefined;
  let { res, url, next } = await client.follow(start.toString(), { stop: isCallback, init });
  for (let step = 0; !next && step < 6; step++) {
    const html = await res.text();
    const action = html.match(/action="([^"]+)"/)?.[1];
    if (!action) throw new Error(`no form on ${url} (HTTP ${res.status}): ${html.slice(0, 300)}`);
    const fields = Object.fromEntries([...html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (html.includes('name="login"')) Object.assign(fields, { login, password: 'any' });
    const body = new URLSearchParams(fields);
    ({ res, url, next } = await client.follow(new URL(action, url).toString(), {
      stop: isCallback,
      init: { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    }));
  }
  if (!next) throw new Error('the provider never redirected back to Gatehouse');
  if (stopAtCallback) return next;
  return client.fetch(next, { headers: { accept: 'text/html' } });
}
