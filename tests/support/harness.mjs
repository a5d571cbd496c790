// The integration-test harness: starts the built Worker in the real runtime (workerd, via
// `wrangler dev`) on a free loopback port, with local D1 and KV in a temporary folder and the
// migrations applied; waits until *this* instance answers (never a fixed sleep); reads and
// writes D1 and KV through the Worker's own bindings; and stops everything — the whole process
// group, workerd included — when the test ends, pass or fail, or when the test process dies.
//
// Reads go through a test-only wrapper around the built Worker, generated into the test's
// temporary folder (see `testEntry`): production code and build/ never contain it. It answers
// `/__gatehouse_test__/…` only with this instance's random token and hands every other request
// to the Worker unchanged. Compared with spawning wrangler's CLI per read (about a second of
// Node start-up each, against SQLite files the dev server is writing, so `SQLITE_BUSY` could
// happen), a read is now one loopback request served by the same runtime and bindings the
// Worker uses, and a failed read is an error, never "absent".
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
const REAPER = join(ROOT, 'tests', 'support', 'reaper.mjs');
const run = promisify(execFile);
const QUIET_ENV = { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' };
/** The path prefix of the test-only wrapper's routes. */
const TEST_PREFIX = '/__gatehouse_test__/';

// ---------------------------------------------------------------------------------------
// Process hygiene: every process group this test process started is ended when it exits,
// whatever the reason. (A kill -9 of this process is covered by tests/support/reaper.mjs.)
const liveGroups = new Set();
function killLiveGroups() {
  for (const pgid of liveGroups) { try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ } }
  liveGroups.clear();
}
process.on('exit', killLiveGroups);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { killLiveGroups(); process.kill(process.pid, sig); });
}

/** Whether any process of group `pgid` is still alive. */
function groupAlive(pgid) {
  try { process.kill(-pgid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

/** Resolves once every process of `pgid` has exited (SIGKILL after `graceMs`). */
async function endGroup(pgid, graceMs = 5000) {
  try { process.kill(-pgid, 'SIGTERM'); } catch { /* already gone */ }
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid)) {
    if (Date.now() > deadline) { try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ } }
    if (Date.now() > deadline + 5000) throw new Error(`process group ${pgid} survived SIGKILL`);
    await new Promise((r) => setTimeout(r, 25));
  }
  liveGroups.delete(pgid);
}

// ---------------------------------------------------------------------------------------
// Ports.
const handedOut = new Set();

/**
 * A free TCP port on loopback, for a server started later by another process. Drawn from
 * 20000–31999, below Linux's ephemeral range (32768+), so that the ports the OS hands out
 * meanwhile (to wrangler's and workerd's own sockets, to clients) cannot take it first; never
 * the same port twice in one test process. Another process can still take it before it is
 * used: `startGatehouse` then fails with a clear "port in use" error, and retries by itself
 * with a new port when it chose the port.
 */
export async function freePort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port)) continue;
    const srv = createServer();
    const ok = await new Promise((r) => { srv.once('error', () => r(false)); srv.listen(port, '127.0.0.1', () => r(true)); });
    if (ok) {
      await new Promise((r) => srv.close(r));
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port in 20000-31999');
}

/**
 * Rate limits count in fixed windows aligned to the clock (`floor(now / window)`), so a test
 * that counts up to a limit fails at random if a window ends half-way through it. Call this
 * first: it returns at once unless fewer than `neededSeconds` are left in the current window,
 * and then waits for the next window to begin (a bounded wait for a known instant).
 */
export async function freshRateWindow(windowSeconds, neededSeconds = 30) {
  const left = windowSeconds * 1000 - (Date.now() % (windowSeconds * 1000));
  if (left < neededSeconds * 1000) await new Promise((r) => setTimeout(r, left + 250));
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

// ---------------------------------------------------------------------------------------
// Secrets and tokens that must never reach the Worker's log. `Client` adds every Gatehouse
// cookie it receives; `startGatehouse` adds the deployment's secrets; tests may add more.
const neverLogged = new Map(); // value → what it is

/** Registers `value` (≥ 8 characters) as something no Gatehouse log may ever contain. */
export function neverLog(value, what = 'a secret') {
  if (typeof value === 'string' && value.length >= 8) neverLogged.set(value, what);
}

function secretsOf(secrets) {
  for (const [name, value] of Object.entries(secrets)) {
    if (name === 'SIGNING_KEYS') {
      try { for (const k of JSON.parse(value)) neverLog(k.d, 'a signing key'); } catch { /* a test's bad value */ }
    } else {
      neverLog(value, name);
    }
  }
}

/** A JWT (three base64url parts, a JSON header and claims): no log line may carry one. */
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/;

/**
 * What in `log` must not be there: the Worker's own lines (not wrangler's request lines,
 * which show URLs as a dev server would) checked for every registered secret and any JWT.
 */
export function leaksIn(log) {
  const lines = log.split('\n').filter((l) => !/^\s*\[wrangler:/.test(l));
  const found = [];
  for (const line of lines) {
    for (const [value, what] of neverLogged) if (line.includes(value)) found.push(`${what}: ${line.slice(0, 200)}`);
    if (JWT_SHAPE.test(line)) found.push(`a JWT: ${line.slice(0, 200)}`);
  }
  return found;
}

// ---------------------------------------------------------------------------------------
// The test-only entry point.

/**
 * The source of the wrapper `wrangler dev` runs: the built Worker, unchanged, plus routes
 * under TEST_PREFIX that need `token` and reach D1 and KV through the same bindings.
 */
function testEntry({ token, instance }) {
  return `// Generated by tests/support/harness.mjs for one test run. Never deployed.
import { WorkerEntrypoint } from 'cloudflare:workers';
import Gatehouse from './index.js';

const TOKEN = ${JSON.stringify(token)};
const INSTANCE = ${JSON.stringify(instance)};
const PREFIX = ${JSON.stringify(TEST_PREFIX)};

async function testRoute(request, env) {
  if (request.headers.get('x-gatehouse-test-token') !== TOKEN) return new Response('no', { status: 403 });
  const op = new URL(request.url).pathname.slice(PREFIX.length);
  const args = request.method === 'POST' ? await request.json() : {};
  const ok = (value) => Response.json({ value });
  switch (op) {
    case 'instance': return ok(INSTANCE);
    case 'd1': return ok((await env.DB.prepare(args.sql).bind(...(args.params ?? [])).all()).results);
    case 'kv/get': return ok(await env.SESSIONS.get(args.key));
    case 'kv/put': await env.SESSIONS.put(args.key, args.value, args.options ?? {}); return ok(null);
    case 'kv/delete': await env.SESSIONS.delete(args.key); return ok(null);
    case 'kv/list': {
      const names = [];
      let cursor;
      do {
        const page = await env.SESSIONS.list({ prefix: args.prefix ?? '', cursor });
        names.push(...page.keys.map((k) => k.name));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return ok(names);
    }
    default: return new Response('unknown test operation', { status: 404 });
  }
}

export default class TestEntry extends WorkerEntrypoint {
  async fetch(request) {
    if (new URL(request.url).pathname.startsWith(PREFIX)) {
      try { return await testRoute(request, this.env); } catch (e) { return Response.json({ error: String(e?.stack ?? e) }, { status: 500 }); }
    }
    return Gatehouse.fetch(request, this.env, this.ctx);
  }
  async scheduled(controller) {
    return Gatehouse.scheduled(controller, this.env, this.ctx);
  }
}
`;
}

/** Calls a test route; any failure (network, status, runtime error) throws. */
async function testCall(url, token, op, args) {
  const res = await fetch(`${url}${TEST_PREFIX}${op}`, {
    method: args === undefined ? 'GET' : 'POST',
    headers: { 'x-gatehouse-test-token': token, 'content-type': 'application/json' },
    body: args === undefined ? undefined : JSON.stringify(args),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`test route ${op} failed: HTTP ${res.status}: ${text.slice(0, 1000)}`);
  return JSON.parse(text).value;
}

async function waitUntilReady({ url, token, instance, child, log, timeoutMs = 90_000 }) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new StartError(`wrangler dev exited (${child.exitCode ?? child.signalCode})`, log());
    if (/EADDRINUSE|address already in use/i.test(log())) throw new StartError('port in use', log());
    try {
      // Any Gatehouse answers /healthz; only ours knows this instance id (without the test
      // entry there is no id to ask: this wrangler must have said it listens on the port).
      const ours = instance === null
        ? log().includes(`Ready on ${url}`)
        : await testCall(url, token, 'instance') === instance;
      if (ours) {
        const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
        if (health.ok) return;
      }
    } catch { /* not listening yet, or not ours */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new StartError(`Gatehouse not ready after ${timeoutMs} ms`, log());
}

class StartError extends Error {
  constructor(message, log) { super(`${message}:\n${log}`); this.portInUse = /EADDRINUSE|address already in use/i.test(log); }
}

/**
 * Starts Gatehouse. `vars` go to the config's [vars] (objects allowed), `secrets` to
 * .dev.vars. `PUBLIC_URL` defaults to the chosen URL; pass `PUBLIC_URL: null` to omit it.
 * `testScheduled` turns on wrangler's `/__scheduled` route, which runs the cron handler.
 * `buildDir` runs another build than build/ (the benchmarks compare two). `sendEmail` names
 * `send_email` bindings to add (read what they sent with `readEmails`). `testRoutes: false`
 * runs the build's own entry, as deployed, without the test routes (no `d1`, `kv`): for
 * benchmarks, which must not pay the test entry's extra layer on every request.
 * Without `port`, a port is chosen, and chosen again if another process takes it first.
 */
export async function startGatehouse(options = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce({ ...options, port: options.port ?? await freePort() });
    } catch (e) {
      if (!(e instanceof StartError && e.portInUse && options.port === undefined && attempt < 4)) throw e;
    }
  }
}

async function startOnce({ vars = {}, secrets = baseSecrets(), port, stateDir, testScheduled = false, rateLimit = { limit: 10000, period: 60 }, buildDir = join(ROOT, 'build'), sendEmail = [], testRoutes = true }) {
  await access(join(buildDir, 'index.js')).catch(() => {
    throw new Error('build/index.js is missing: run scripts/build (the test command does)');
  });
  secretsOf(secrets);
  const url = `http://127.0.0.1:${port}`;
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-test-'));
  // Run a private copy of the build, so that a rebuild during the test cannot swap the
  // Worker under it (wrangler dev reloads when `main` changes).
  const workerDir = join(dir, 'worker');
  await mkdir(workerDir);
  for (const f of ['index.js', 'index_bg.wasm']) await copyFile(join(buildDir, f), join(workerDir, f));
  const token = randomBytes(24).toString('base64url');
  const instance = testRoutes ? randomBytes(12).toString('base64url') : null;
  if (testRoutes) await writeFile(join(workerDir, 'test-entry.js'), testEntry({ token, instance }));
  const allVars = { PUBLIC_URL: url, ...vars };
  for (const [k, v] of Object.entries(allVars)) if (v === null) delete allVars[k];
  const config = {
    name: 'gatehouse-test',
    main: join(workerDir, testRoutes ? 'test-entry.js' : 'index.js'),
    compatibility_date: '2026-04-01',
    d1_databases: [{ binding: 'DB', database_name: 'gatehouse', database_id: '00000000-0000-0000-0000-000000000000', migrations_dir: join(ROOT, 'migrations') }],
    kv_namespaces: [{ binding: 'SESSIONS', id: '00000000000000000000000000000000' }],
    ratelimits: [{ name: 'RATE_LIMITER', namespace_id: '4771', simple: rateLimit }],
    // `send_email` bindings by name: under wrangler dev each message is written to files.
    ...(sendEmail.length ? { send_email: sendEmail.map((name) => ({ name })) } : {}),
    vars: allVars,
  };
  const configPath = join(dir, 'wrangler.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  await writeFile(join(dir, '.dev.vars'), Object.entries(secrets).map(([k, v]) => `${k}='${v}'`).join('\n') + '\n');
  // `stateDir` lets a test stop and restart Gatehouse over the same D1 and KV (key rotation).
  const state = stateDir ?? join(dir, 'state');
  const common = ['--config', configPath, '--persist-to', state];
  await run(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', ...common], { env: { ...QUIET_ENV }, cwd: dir, timeout: 120_000 });

  const inspector = await freePort();
  const child = spawn(process.execPath, [REAPER, WRANGLER, 'dev', ...common, '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector), '--show-interactive-dev-session=false', ...(testScheduled ? ['--test-scheduled'] : [])], {
    env: QUIET_ENV, cwd: dir, detached: true, stdio: ['pipe', 'pipe', 'pipe'],
  });
  liveGroups.add(child.pid);
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  child.stdin.on('error', () => {}); // the reaper gone first: nothing to tell it
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // The whole group (wrangler, workerd) has exited when this resolves: the port is free.
    await endGroup(child.pid);
    child.stdin.destroy();
    await rm(dir, { recursive: true, force: true });
    // The whole log of this instance, every case of the run included, is checked for secrets
    // and tokens. A finding fails the test run (an uncaught error, which node:test reports
    // against the test or hook that stopped the instance) without cutting that hook short: a
    // throw here would skip the caller's remaining clean-up and leave its servers running.
    const leaks = leaksIn(output);
    if (leaks.length) setTimeout(() => { throw new Error(`secrets or tokens in the Worker's log:\n${leaks.join('\n')}`); });
  };
  try {
    await waitUntilReady({ url, token, instance, child, log: () => output });
  } catch (e) {
    stopped = true;
    await endGroup(child.pid).catch(() => {});
    child.stdin.destroy();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const call = (op, args) => testCall(url, token, op, args);
  let lastMark = 0;
  return {
    url,
    port,
    dir,
    /** The process group of `wrangler dev` (workerd runs inside it): for CPU accounting. */
    pid: child.pid,
    /** The DevTools inspector's port (CPU profiles: bench/profile.mjs). */
    inspector,
    logs: () => output,
    /** The log's current end: pass it to `waitForLog` to look only at what comes after. */
    mark() { lastMark = output.length; return lastMark; },
    /**
     * Waits (bounded) until the log written since `since` matches `re`; returns whether it
     * did. `since` defaults to the last `mark()` (0 if none): take a mark before the action.
     * The old call shape `waitForLog(re, timeoutMs)` still works.
     */
    async waitForLog(re, opts = {}) {
      const { since = lastMark, timeoutMs = 10_000 } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
      const deadline = Date.now() + timeoutMs;
      while (!re.test(output.slice(since))) {
        if (Date.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, 25));
      }
      return true;
    },
    /** Secrets, session ids and JWTs found in the Worker's log so far (see `leaksIn`). */
    leaks: () => leaksIn(output),
    stop,
    /** Runs one SQL statement on the local D1 (through the Worker's binding); its rows. */
    async d1(sql, params = []) { return call('d1', { sql, params }); },
    /** KV through the Worker's binding: get (null only when the key is absent), put, list. */
    kv: {
      async get(key) { return call('kv/get', { key }); },
      async put(key, value, options) { await call('kv/put', { key, value, options }); },
      async delete(key) { await call('kv/delete', { key }); },
      async list(prefix = '') { return call('kv/list', { prefix }); },
    },
  };
}

/**
 * The messages a `send_email` binding sent since log offset `since` (take `gh.mark()` before
 * the action), as wrangler dev logs them — "send_email binding called with MessageBuilder:",
 * the From/To/Subject lines, then "Text: <file>" and "HTML: <file>" — with both parts read
 * back from the files it wrote. Waits (bounded) until `count` messages are there.
 */
export async function readEmails(gh, since, count = 1, timeoutMs = 15_000) {
  const re = /send_email binding called with MessageBuilder:\s*\nFrom: (.*)\nTo: (.*)\nSubject: (.*)\n(?:\s*\n)?Text: (\S+)\nHTML: (\S+)/g;
  const found = () => [...gh.logs().slice(since).matchAll(re)];
  const deadline = Date.now() + timeoutMs;
  while (found().length < count) {
    if (Date.now() > deadline) throw new Error(`${count} message(s) expected, ${found().length} logged:\n${gh.logs().slice(since).slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const { readFile } = await import('node:fs/promises');
  return Promise.all(found().map(async (m) => ({
    from: m[1].trim(), to: m[2].trim(), subject: m[3].trim(),
    text: await readFile(m[4], 'utf8'), html: await readFile(m[5], 'utf8'),
  })));
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
      if (name.startsWith('gh_')) neverLog(value, `the ${name} cookie`);
    }
    this.jar.set(host, c);
  }

  cookie(url, name) { return this.jar.get(new URL(url).hostname)?.get(name); }

  async fetch(url, init = {}) {
    const headers = new Headers(init.headers ?? {});
    const cookies = this.cookieHeader(url);
    if (cookies && !headers.has('cookie')) headers.set('cookie', cookies);
    // A Worker that never answers fails the test here instead of stalling the run.
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000), ...init, headers, redirect: 'manual' });
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
 * identity to the user already signed in (`/auth/login?link=1`); with `startUrl`, starts from
 * that Gatehouse URL instead (a link taken from a page, e.g. an invitation's).
 */
export async function oidcSignIn(client, gatehouseUrl, { provider = 'dev', login = 'alice', returnTo, stopAtCallback = false, link = false, startUrl } = {}) {
  const start = new URL(startUrl ?? `${gatehouseUrl}/auth/login`);
  if (!startUrl) {
  start.searchParams.set('provider', provider);
  if (link) start.searchParams.set('link', '1');
  if (returnTo) start.searchParams.set('return_to', returnTo);
  }
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
