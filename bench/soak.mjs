// The soak: mixed traffic from many simulated browsers against the real Worker (`wrangler dev`,
// local D1 and KV) for a while, every answer checked. Each browser signs in through the local
// OpenID Connect provider (oidc-provider) and then, at random: reads /auth/me with its access
// cookie, renews (drops the access cookie so the session renews it), refreshes a token for an
// SPA (POST /auth/token), makes a proxied request to a local origin (Gatehouse runs in proxy
// mode), reads the admin API, or logs out (and checks that the old session is refused) and
// signs in again. Reports throughput, p50/p99 latency per kind, errors, sessions lost (a live
// session that stopped renewing) and the resident memory of the workerd processes over time.
//
// workerd under `wrangler dev` grows its memory with every request it serves, whatever the
// Worker does (a minimal JavaScript Worker's bare route grows it too). So the soak runs a
// control beside Gatehouse: the minimal JavaScript Worker of bench/minimal-js under its own
// `wrangler dev`, sent one request for each request Gatehouse answers. What Gatehouse itself
// adds is the difference between the two growths.
//
// The isolate's own heap is measured directly: every minute the soak runs Gatehouse's cron
// handler (wrangler dev's `/__scheduled` route, on with `--test-scheduled`), which logs the
// size of the wasm linear memory. That memory never shrinks, so a size flat after warm-up
// means the Rust heap did not grow.
//
// Usage: node bench/soak.mjs [--minutes N] [--browsers N] [--sample SECONDS]
//   (needs build/: scripts/build). Not part of scripts/test: it is a benchmark.
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn, leaksIn, ROOT } from '../tests/support/harness.mjs';
import { startOidcProvider } from '../tests/support/oidc-provider.mjs';

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!(v > 0)) throw new Error(`--${name} needs a positive number`);
  return v;
}

const MINUTES = option('minutes', 10);
const BROWSERS = option('browsers', 12);
const SAMPLE_SECONDS = option('sample', 10);
/** How many people the browsers sign in as (so some users have several sessions). */
const PEOPLE = Math.max(1, Math.ceil(BROWSERS / 2));

/** Resident memory (MB) of the workerd processes in process group `pgid`, from /proc. */
async function workerdRssMb(pgid) {
  let kb = 0;
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat, status;
    try {
      stat = await readFile(`/proc/${d}/stat`, 'utf8');
      status = await readFile(`/proc/${d}/status`, 'utf8');
    } catch { continue; }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const pgrp = Number(stat.slice(close + 2).split(' ')[2]);
    if (comm.startsWith('workerd') && pgrp === pgid) kb += Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
  }
  return kb / 1024;
}

/** The control: bench/minimal-js under its own `wrangler dev`; resolves once it answers. */
async function startControl() {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dir = await mkdtemp(join(tmpdir(), 'soak-control-'));
  const config = { name: 'soak-control', main: join(ROOT, 'bench', 'minimal-js', 'index.js'), compatibility_date: '2026-04-01' };
  await writeFile(join(dir, 'wrangler.json'), JSON.stringify(config));
  const child = spawn(join(ROOT, 'node_modules', '.bin', 'wrangler'), ['dev', '--config', join(dir, 'wrangler.json'), '--persist-to', join(dir, 'state'), '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false'], {
    cwd: dir, detached: true, stdio: 'ignore', env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
  });
  const stop = async () => {
    if (child.exitCode === null) {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      await new Promise((r) => { const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} r(); }, 5000); child.once('exit', () => { clearTimeout(t); r(); }); });
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null || Date.now() > deadline) { await stop(); throw new Error('the control Worker did not start'); }
    try { if ((await fetch(`${url}/healthz`)).ok) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, pid: child.pid, stop };
}

/** Runs Gatehouse's cron handler once; the wasm linear memory size it logs, in bytes. */
async function wasmMemoryBytes(gh) {
  const since = gh.logs().length;
  const res = await fetch(`${gh.url}/__scheduled?cron=${encodeURIComponent('17 3 * * *')}`);
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`/__scheduled answered ${res.status}`);
  const line = /gatehouse: wasm memory (\d+) bytes/;
  if (!(await gh.waitForLog(line, { since, timeoutMs: 30_000 }))) throw new Error('the cron handler logged no wasm memory size');
  return Number(gh.logs().slice(since).match(line)[1]);
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---------------------------------------------------------------------------------------
// What was measured.

const latencies = new Map(); // kind → ms[]
const errors = [];
let sessionsLost = 0;
let gatehouseRequests = 0;

function record(kind, ms) {
  if (!latencies.has(kind)) latencies.set(kind, []);
  latencies.get(kind).push(ms);
}

function fail(kind, detail) {
  errors.push(`${kind}: ${detail}`);
  if (errors.length <= 20) console.error(`  error: ${kind}: ${detail}`);
}

/** Runs one Gatehouse request as `kind`, timed; returns the response (body read as text). */
async function timed(kind, f) {
  const started = performance.now();
  let res;
  try {
    res = await f();
    res.text_ = await res.text();
  } catch (e) {
    fail(kind, `no answer: ${e.message}`);
    return null;
  } finally {
    gatehouseRequests++;
  }
  record(kind, performance.now() - started);
  return res;
}

function json(res) {
  try { return JSON.parse(res.text_); } catch { return null; }
}

// ---------------------------------------------------------------------------------------
// One simulated browser.

class Browser {
  constructor(gh, n, adminKey) {
    this.gh = gh;
    this.login = `soak-${n % PEOPLE}`;
    this.adminKey = adminKey;
    this.client = new Client();
    this.userId = null;
  }

  drop(name) { this.client.jar.get(new URL(this.gh).hostname)?.delete(name); }

  session() { return this.client.cookie(this.gh, 'gh_session'); }

  async signIn() {
    let callback;
    try {
      callback = await oidcSignIn(this.client, this.gh, { login: this.login, stopAtCallback: true });
      gatehouseRequests++; // the login redirect
    } catch (e) {
      fail('sign-in', `the provider round trip failed: ${e.message}`);
      return;
    }
    const res = await timed('sign-in callback', () => this.client.fetch(callback, { headers: { accept: 'text/html' } }));
    if (!res) return;
    if (res.status !== 302 || !this.session() || !this.client.cookie(this.gh, 'gh_access')) {
      fail('sign-in callback', `HTTP ${res.status}, cookies ${[...(this.client.jar.get('127.0.0.1')?.keys() ?? [])]}`);
      return;
    }
    const me = await timed('/auth/me (access token)', () => this.client.fetch(`${this.gh}/auth/me`));
    if (me?.status !== 200) return fail('/auth/me after sign-in', `HTTP ${me?.status}`);
    this.userId = json(me)?.id;
  }

  async me() {
    const res = await timed('/auth/me (access token)', () => this.client.fetch(`${this.gh}/auth/me`));
    if (res && (res.status !== 200 || json(res)?.id !== this.userId)) fail('/auth/me', `HTTP ${res.status} ${res.text_.slice(0, 120)}`);
  }

  /** The access token "expired": the session renews it. */
  async renew() {
    this.drop('gh_access');
    const res = await timed('/auth/me (renewal)', () => this.client.fetch(`${this.gh}/auth/me`));
    if (!res) return;
    if (res.status === 401) {
      sessionsLost++;
      fail('renewal', 'a live session was refused (session lost)');
      this.userId = null;
      return;
    }
    if (res.status !== 200 || json(res)?.id !== this.userId || !this.client.cookie(this.gh, 'gh_access')) {
      fail('renewal', `HTTP ${res.status} ${res.text_.slice(0, 120)}`);
    }
  }

  async spaToken() {
    const headers = { origin: this.gh, 'sec-fetch-site': 'same-origin' };
    const res = await timed('POST /auth/token', () => this.client.fetch(`${this.gh}/auth/token`, { method: 'POST', headers }));
    if (!res) return;
    if (res.status === 401) {
      sessionsLost++;
      fail('POST /auth/token', 'a live session was refused (session lost)');
      this.userId = null;
      return;
    }
    if (res.status !== 200 || typeof json(res)?.access_token !== 'string') fail('POST /auth/token', `HTTP ${res.status}`);
  }

  async proxied() {
    const path = `/app/${randomBytes(4).toString('hex')}`;
    const res = await timed('proxied request', () => this.client.fetch(`${this.gh}${path}`));
    if (!res) return;
    const body = json(res);
    if (res.status !== 200 || body?.user !== this.userId || body?.path !== path) {
      fail('proxied request', `HTTP ${res.status} ${res.text_.slice(0, 120)}`);
    }
  }

  async admin() {
    const headers = { authorization: `Bearer ${this.adminKey}` };
    const res = await timed('admin read', () => fetch(`${this.gh}/admin/users/${this.userId}`, { headers }));
    if (res && (res.status !== 200 || json(res)?.id !== this.userId)) fail('admin read', `HTTP ${res.status}`);
  }

  async logout() {
    const old = this.session();
    const headers = { origin: this.gh, 'sec-fetch-site': 'same-origin' };
    const res = await timed('POST /auth/logout', () => this.client.fetch(`${this.gh}/auth/logout`, { method: 'POST', headers }));
    if (!res) return;
    if (res.status !== 204 || this.session()) return fail('POST /auth/logout', `HTTP ${res.status}`);
    // The ended session renews nothing.
    const again = await timed('renewal of an ended session', () => fetch(`${this.gh}/auth/me`, { headers: { cookie: `gh_session=${old}` } }));
    if (again && again.status !== 401) fail('renewal of an ended session', `HTTP ${again.status}`);
    this.userId = null;
  }

  async step() {
    if (!this.userId) return this.signIn();
    const r = Math.random();
    if (r < 0.35) return this.me();
    if (r < 0.60) return this.proxied();
    if (r < 0.75) return this.renew();
    if (r < 0.85) return this.spaToken();
    if (r < 0.92) return this.admin();
    return this.logout();
  }
}

// ---------------------------------------------------------------------------------------

const stops = [];
try {
  // The origin behind proxy mode: echoes who Gatehouse said the caller is.
  const origin = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ user: req.headers['x-gatehouse-user'] ?? null, path: req.url }));
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise((r) => { origin.closeAllConnections?.(); origin.close(r); }));

  const port = await freePort();
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: clientSecret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`] }] });
  stops.push(() => idp.close());
  const secrets = { ...baseSecrets(), PROVIDER_DEV_SECRET: clientSecret };
  const gh = await startGatehouse({
    testRoutes: false, // the entry as deployed
    port,
    secrets,
    rateLimit: { limit: 1_000_000, period: 60 },
    testScheduled: true,
    vars: {
      PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } },
      ORIGIN_URL: `http://127.0.0.1:${origin.address().port}`,
    },
  });
  stops.push(() => gh.stop());
  const control = await startControl();
  stops.push(() => control.stop());

  console.log(`soak: ${MINUTES} min, ${BROWSERS} browsers as ${PEOPLE} people, workerd memory every ${SAMPLE_SECONDS} s`);
  const started = performance.now();
  const deadline = started + MINUTES * 60_000;
  const sample = async () => ({
    s: Math.round((performance.now() - started) / 1000),
    mb: await workerdRssMb(gh.pid),
    control: await workerdRssMb(control.pid),
  });
  const memory = [await sample()];
  // The wasm linear memory: at the start, then every minute.
  const heap = [{ s: 0, bytes: await wasmMemoryBytes(gh) }];
  const heapLane = setInterval(() => {
    const s = Math.round((performance.now() - started) / 1000);
    wasmMemoryBytes(gh).then((bytes) => heap.push({ s, bytes }), (e) => fail('wasm memory', e.message));
  }, 60_000);
  const load0 = loadavg()[0];
  const sampler = setInterval(async () => {
    const last = await sample();
    memory.push(last);
    if (last.s % 60 < SAMPLE_SECONDS) console.log(`  ${last.s}s: ${gatehouseRequests} requests, ${errors.length} errors, workerd ${last.mb.toFixed(1)} MB (control ${last.control.toFixed(1)} MB)`);
  }, SAMPLE_SECONDS * 1000);

  // The control lane: one bare request to the control Worker per Gatehouse request.
  let controlRequests = 0;
  let done = false;
  const controlLane = (async () => {
    while (!done) {
      if (controlRequests >= gatehouseRequests) { await new Promise((r) => setTimeout(r, 5)); continue; }
      controlRequests++;
      try { await (await fetch(`${control.url}/healthz`)).arrayBuffer(); } catch (e) { fail('control', e.message); }
    }
  })();
  const browsers = Array.from({ length: BROWSERS }, (_, n) => new Browser(gh.url, n, secrets.ADMIN_API_KEY));
  await Promise.all(browsers.map(async (b) => {
    while (performance.now() < deadline) await b.step();
  }));
  done = true;
  await controlLane;
  clearInterval(sampler);
  clearInterval(heapLane);
  memory.push(await sample());
  heap.push({ s: Math.round((performance.now() - started) / 1000), bytes: await wasmMemoryBytes(gh) });
  const seconds = (performance.now() - started) / 1000;

  // ---- the summary
  const all = [...latencies.values()].flat().sort((a, b) => a - b);
  console.log(`\nsoak summary (${seconds.toFixed(0)} s, ${BROWSERS} browsers; load average ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)})`);
  console.log(`  Gatehouse requests: ${gatehouseRequests} (${(gatehouseRequests / seconds).toFixed(1)}/s); checked answers: ${all.length}`);
  console.log(`  latency, all checked requests: p50 ${percentile(all, 50).toFixed(1)} ms, p99 ${percentile(all, 99).toFixed(1)} ms`);
  console.log(`  ${'kind'.padEnd(30)} ${'count'.padStart(7)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`);
  for (const [kind, ms] of [...latencies].sort((a, b) => b[1].length - a[1].length)) {
    const s = [...ms].sort((a, b) => a - b);
    console.log(`  ${kind.padEnd(30)} ${String(s.length).padStart(7)} ${percentile(s, 50).toFixed(1).padStart(8)} ${percentile(s, 99).toFixed(1).padStart(8)}`);
  }
  console.log(`  errors: ${errors.length}; sessions lost: ${sessionsLost}`);
  // Memory: the first minute is warm-up (compile, caches filling); growth is measured after it.
  const warm = memory.find((m) => m.s >= Math.min(60, seconds / 3)) ?? memory[0];
  const last = memory[memory.length - 1];
  const peak = Math.max(...memory.map((m) => m.mb));
  console.log(`  workerd RSS, Gatehouse: start ${memory[0].mb.toFixed(1)} MB, after warm-up (${warm.s}s) ${warm.mb.toFixed(1)} MB, end ${last.mb.toFixed(1)} MB, peak ${peak.toFixed(1)} MB; growth after warm-up ${(last.mb - warm.mb).toFixed(1)} MB`);
  console.log(`  workerd RSS, control (minimal JS Worker, ${controlRequests} bare requests): start ${memory[0].control.toFixed(1)} MB, after warm-up ${warm.control.toFixed(1)} MB, end ${last.control.toFixed(1)} MB; growth after warm-up ${(last.control - warm.control).toFixed(1)} MB`);
  const byMinute = memory.filter((m, i) => i === 0 || m.s % 60 < SAMPLE_SECONDS || i === memory.length - 1);
  console.log(`  RSS by minute (Gatehouse / control, MB): ${byMinute.map((m) => `${m.s}s ${m.mb.toFixed(0)}/${m.control.toFixed(0)}`).join(', ')}`);
  const kb = (b) => (b / 1024).toFixed(0);
  const heapWarm = heap.find((h) => h.s >= warm.s) ?? heap[0];
  const heapLast = heap[heap.length - 1];
  console.log(`  wasm linear memory (the isolate's heap): start ${kb(heap[0].bytes)} KiB, after warm-up (${heapWarm.s}s) ${kb(heapWarm.bytes)} KiB, end ${kb(heapLast.bytes)} KiB; growth after warm-up ${kb(heapLast.bytes - heapWarm.bytes)} KiB`);
  console.log(`  wasm linear memory by minute (KiB): ${heap.map((h) => `${h.s}s ${kb(h.bytes)}`).join(', ')}`);
  const leaks = leaksIn(gh.logs());
  console.log(`  secrets or tokens in the Worker's log: ${leaks.length}`);
  if (errors.length || sessionsLost || leaks.length) process.exitCode = 1;
} finally {
  for (const stop of stops.reverse()) await stop().catch((e) => console.error(`clean-up: ${e.message}`));
}
