// The per-request overhead benchmark (issue 17): in ONE run, interleaved rounds, on the same
// machine, it compares
//   Gatehouse /healthz            vs a minimal workers-rs Worker (bench/minimal-rust) and a
//                                    minimal JavaScript Worker (bench/minimal-js), same route
//   Gatehouse /auth/me, valid JWT  (the hot authenticated path, no storage)
//   Gatehouse proxy mode, a request with a valid access cookie, to a local origin
//                                 vs the minimal JavaScript Worker as a bare proxy to the same origin
// reporting throughput (wrk) and the workerd CPU per request (read from /proc around each
// round, per Worker process group). It also measures start-up: the time from `wrangler dev`
// starting to the first answered request, Gatehouse vs the minimal Rust and JS Workers (both
// Rust Workers with the same D1 and KV bindings, so that only the wasm differs), the latency
// of that first request and of the second, and — separately, in headless Chromium's V8,
// because a Worker can neither compile wasm nor read a running clock — the wasm compile and
// instantiate.
// Results are medians and ratios within this run: the machine is shared and noisy.
// Usage: node bench/overhead.mjs [seconds]   (needs build/ and bench/minimal-rust/build.sh first)
//   STARTS=N start-ups of each Worker (default 3; 0: none, nor the wasm compile); STARTUP_ONLY=1
//   stops after the start-up part.
//   ROUNDS=N rounds (default 5); CASES=regex only the matching cases (e.g. Proxy);
//   BEFORE_BUILD=dir (or label=dir,label=dir) adds earlier builds for a before/after;
//   WITH_TEST_ENTRY=1 adds the build behind the tests' entry (the layer earlier runs measured).
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, mkdir, writeFile, rm, copyFile, access, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir, loadavg } from 'node:os';
import { chromium } from 'playwright-core';
import { workerdCpu } from './cpu.mjs';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn, newSigningKey, ROOT } from '../tests/support/harness.mjs';
import { startOidcProvider } from '../tests/support/oidc-provider.mjs';

const run = promisify(execFile);
const SECONDS = Number(process.argv[2] ?? 5);
const CONNECTIONS = 8;
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const STARTS = Number(process.env.STARTS ?? 3);
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const QUIET_ENV = { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' };
const MINIMAL_RUST = join(ROOT, 'bench', 'minimal-rust', 'build');
const MINIMAL_JS = join(ROOT, 'bench', 'minimal-js');

async function wrk(target, path, headers = {}) {
  const args = ['-t2', `-c${CONNECTIONS}`, `-d${SECONDS}s`];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(`${target.url}${path}`);
  const cpu0 = await workerdCpu(target.pid);
  const { stdout } = await run('wrk', args);
  const cpu = (await workerdCpu(target.pid)) - cpu0;
  const rps = Number(stdout.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const requests = Number(stdout.match(/(\d+) requests in/)[1]);
  const bad = Number(stdout.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
  if (bad > 0) throw new Error(`${target.url}${path}: ${bad} non-2xx responses\n${stdout}`);
  return { rps, cpuUs: (cpu * 1e6) / requests };
}

/** Starts `wrangler dev` on a Worker folder (`main` inside it); resolves when /healthz answers. */
async function startWorker(name, srcDir, files, vars = {}, bindings = {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dir = await mkdtemp(join(tmpdir(), `overhead-${name}-`));
  const workerDir = join(dir, 'worker');
  await mkdir(workerDir);
  for (const f of files) await copyFile(join(srcDir, f), join(workerDir, f));
  const config = { name, main: join(workerDir, files[0]), compatibility_date: '2026-04-01', vars, ...bindings };
  await writeFile(join(dir, 'wrangler.json'), JSON.stringify(config));
  const started = performance.now();
  const child = spawn(WRANGLER, ['dev', '--config', join(dir, 'wrangler.json'), '--persist-to', join(dir, 'state'), '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false'], {
    env: QUIET_ENV, cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const stop = async () => {
    if (child.exitCode === null) {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      await new Promise((r) => { const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} r(); }, 5000); child.once('exit', () => { clearTimeout(t); r(); }); });
    }
    await rm(dir, { recursive: true, force: true });
  };
  const readyMs = await untilAnswered(url, child, () => output).catch(async (e) => { await stop(); throw e; });
  return { url, pid: child.pid, stop, readyMs: readyMs - started, firstMs: untilAnswered.lastMs };
}

/** Polls /healthz until it answers 200; returns the time of that answer. */
async function untilAnswered(url, child, log, timeoutMs = 120_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler exited:\n${log()}`);
    try {
      const asked = performance.now();
      const r = await fetch(`${url}/healthz`);
      await r.arrayBuffer();
      untilAnswered.lastMs = performance.now() - asked; // the first answered request's latency
      if (r.status === 200) return performance.now();
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${url} not ready:\n${log()}`);
}

await access(join(MINIMAL_RUST, 'index.js')).catch(() => { throw new Error('run bench/minimal-rust/build.sh first'); });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load0 = loadavg()[0];

// Start-up: fresh `wrangler dev` to the first answer of /healthz, interleaved. Gatehouse gets
// its D1 and KV bindings (empty; /healthz reads neither) and no settings (it needs none).
const STORAGE = {
  d1_databases: [{ binding: 'DB', database_name: 'gatehouse', database_id: '00000000-0000-0000-0000-000000000000' }],
  kv_namespaces: [{ binding: 'SESSIONS', id: '00000000000000000000000000000000' }],
};
const WASM = ['index.js', 'index_bg.wasm'];
const startups = [['gatehouse', join(ROOT, 'build'), WASM, STORAGE], ['rust', MINIMAL_RUST, WASM, STORAGE], ['js', MINIMAL_JS, ['index.js'], {}]];
// BEFORE_BUILD=dir, or several as label=dir,label=dir: earlier builds to compare with.
const EARLIER = (process.env.BEFORE_BUILD ?? '').split(',').filter(Boolean).map((x) => (x.includes('=') ? x.split('=') : ['before', x]));
for (const [label, dir] of EARLIER) startups.push([label, dir, WASM, STORAGE]);
const startLoad = loadavg()[0];
const startup = Object.fromEntries(startups.map(([k]) => [k, []]));
const firstRequest = Object.fromEntries(startups.map(([k]) => [k, []]));
const secondRequest = Object.fromEntries(startups.map(([k]) => [k, []]));
for (let i = 0; i < STARTS; i++) {
  for (const [k, dir, files, bindings] of startups) {
    const w = await startWorker(`startup-${k}`, dir, files, {}, bindings);
    startup[k].push(w.readyMs);
    firstRequest[k].push(w.firstMs);
    const asked = performance.now();
    await (await fetch(`${w.url}/healthz`)).arrayBuffer();
    secondRequest[k].push(performance.now() - asked);
    await w.stop();
  }
}

const startLoadEnd = loadavg()[0];

// The wasm compile (`new WebAssembly.Module`, what the runtime does when it loads the Worker)
// and instantiate (imports stubbed: the memory and its data laid out), in headless Chromium's
// V8 (Node's is too old for the exception-handling instructions in the wasm). V8 compiles
// function bodies lazily, on first call, so this is measured twice: as V8 loads a module
// (validation only) and with every function compiled up front (`--no-wasm-lazy-compilation`,
// Liftoff: all the compiling a Worker could do). A fresh browser for every round: V8 reuses a
// module compiled before from the same bytes. Interleaved, order alternating.
const wasmBuilds = startups.filter(([, , files]) => files.includes('index_bg.wasm'));
const wasmBytes = Object.fromEntries(await Promise.all(wasmBuilds.map(async ([k, dir]) => [k, (await readFile(join(dir, 'index_bg.wasm'))).toString('base64')])));
const WASM_MODES = { lazy: [], eager: ['--js-flags=--no-wasm-lazy-compilation'] };
const wasmTimes = {};
let v8Version;
for (let i = 0; i < (STARTS && Math.max(STARTS, 5)); i++) {
  for (const [mode, flags] of Object.entries(WASM_MODES)) {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', ...flags] });
    v8Version = browser.version();
    const order = Object.entries(wasmBytes);
    if (i % 2) order.reverse();
    const round = await (await browser.newPage()).evaluate((builds) => builds.map(([k, b64]) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const t0 = performance.now();
      const module = new WebAssembly.Module(bytes);
      const t1 = performance.now();
      const imports = {};
      for (const { module: m, name, kind } of WebAssembly.Module.imports(module)) {
        if (kind !== 'function' && kind !== 'tag') throw new Error(`${k}: a ${kind} import`);
        (imports[m] ??= {})[name] = kind === 'tag' ? WebAssembly.JSTag : () => {}; // the JS exception tag
      }
      const t2 = performance.now();
      new WebAssembly.Instance(module, imports);
      return [k, t1 - t0, performance.now() - t2];
    }), order);
    await browser.close();
    for (const [k, compile, instantiate] of round) {
      const t = (wasmTimes[`${k} ${mode}`] ??= { k, compile: [], instantiate: [] });
      t.compile.push(compile);
      t.instantiate.push(instantiate);
    }
  }
}

/** The start-up figures (measured first, printed last with the rest). */
function printStartup() {
  if (!STARTS) return;
  const s = (k) => median(startup[k]);
  console.log(`  start-up (wrangler dev spawn → first answer), median of ${STARTS}: ${Object.keys(startup).map((k) => `${k} ${s(k).toFixed(0)} ms`).join(', ')}; Gatehouse/minimal Rust ${(s('gatehouse') / s('rust')).toFixed(3)}, extra ${(s('gatehouse') - s('rust')).toFixed(0)} ms`);
  console.log(`  start-up rounds (ms): ${JSON.stringify(Object.fromEntries(Object.entries(startup).map(([k, v]) => [k, v.map(Math.round)])))}`);
  const ms = (xs) => `${median(xs).toFixed(1)} ms`;
  console.log(`  first request after start-up / second, medians: ${Object.keys(startup).map((k) => `${k} ${ms(firstRequest[k])} / ${ms(secondRequest[k])}`).join(', ')}`);
  console.log(`  wasm in Chromium ${v8Version}'s V8, fresh browser each, median of ${Math.max(STARTS, 5)}: ${Object.entries(wasmTimes).map(([name, t]) => `${name} (${Buffer.from(wasmBytes[t.k], 'base64').length} B) compile ${ms(t.compile)}, instantiate ${ms(t.instantiate)}`).join('; ')}`);
  console.log(`  wasm compile rounds (ms): ${JSON.stringify(Object.fromEntries(Object.entries(wasmTimes).map(([name, t]) => [name, t.compile.map(Math.round)])))}`);
  console.log(`  start-up load average ${startLoad.toFixed(1)} → ${startLoadEnd.toFixed(1)}`);
}
if (process.env.STARTUP_ONLY) {
  printStartup();
  process.exit(0);
}

// The origin for both proxies: a small fixed answer.
const origin = createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('hello from the origin\n'); });
});
await new Promise((r) => origin.listen(0, '127.0.0.1', r));
const originUrl = `http://127.0.0.1:${origin.address().port}`;

const stops = [];
try {
  // Every Gatehouse (the build under test and, with BEFORE_BUILD=dir, an earlier build for a
  // before/after in the same run) in normal and proxy mode, each signed in once.
  // Each runs the build's own entry, as deployed. WITH_TEST_ENTRY=1 adds the build under test
  // behind the tests' entry (tests/support/harness.mjs), to show what that layer costs.
  const builds = {
    gh: { dir: join(ROOT, 'build'), testRoutes: false },
    ...Object.fromEntries(EARLIER.map(([label, dir]) => [label, { dir, testRoutes: false }])),
    ...(process.env.WITH_TEST_ENTRY ? { wrapped: { dir: join(ROOT, 'build'), testRoutes: true } } : {}),
  };
  const ports = {};
  for (const b of Object.keys(builds)) ports[b] = { api: await freePort(), proxy: await freePort() };
  const secret = randomBytes(24).toString('base64url');
  const redirect_uris = Object.values(ports).flatMap((p) => [p.api, p.proxy]).map((port) => `http://127.0.0.1:${port}/auth/callback/dev`);
  const idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris }] });
  stops.push(() => idp.close());
  const key = newSigningKey();
  const providers = { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } };
  const secrets = { ...baseSecrets(), SIGNING_KEYS: JSON.stringify([key]), PROVIDER_DEV_SECRET: secret };
  const instances = {};
  for (const [b, { dir: buildDir, testRoutes }] of Object.entries(builds)) {
    const api = await startGatehouse({ port: ports[b].api, buildDir, testRoutes, vars: { PROVIDERS: providers, ACCESS_TOKEN_TTL_SECONDS: '3600' }, secrets });
    stops.push(() => api.stop());
    const browser = new Client();
    await oidcSignIn(browser, api.url, { login: 'bench' });
    const proxy = await startGatehouse({ port: ports[b].proxy, buildDir, testRoutes, vars: { PROVIDERS: providers, ACCESS_TOKEN_TTL_SECONDS: '3600', ORIGIN_URL: originUrl }, secrets });
    stops.push(() => proxy.stop());
    const pxBrowser = new Client();
    await oidcSignIn(pxBrowser, proxy.url, { login: 'bench' });
    const pxToken = pxBrowser.cookie(proxy.url, 'gh_access');
    const probe = await fetch(`${proxy.url}/app/page`, { headers: { cookie: `gh_access=${pxToken}` }, redirect: 'manual' });
    if (probe.status !== 200) throw new Error(`${b}: proxied request answered ${probe.status}`);
    instances[b] = { api, proxy, token: browser.cookie(api.url, 'gh_access'), pxToken };
  }

  const rust = await startWorker('minimal-rust', MINIMAL_RUST, ['index.js', 'index_bg.wasm']);
  stops.push(() => rust.stop());
  const js = await startWorker('minimal-js', MINIMAL_JS, ['index.js'], { ORIGIN_URL: originUrl });
  stops.push(() => js.stop());
  const jsEdits = await startWorker('minimal-js-edits', MINIMAL_JS, ['index.js'], { ORIGIN_URL: originUrl, HEADER_EDITS: '1' });
  stops.push(() => jsEdits.stop());

  const cases = {
    jsHealth: () => wrk(js, '/healthz'),
    rustHealth: () => wrk(rust, '/healthz'),
    jsProxy: () => wrk(js, '/app/page'),
    // The same request as Gatehouse's proxy gets (an access cookie of the same size).
    jsProxyEdits: () => wrk(jsEdits, '/app/page', { cookie: `gh_access=${instances.gh.pxToken}` }),
  };
  for (const [b, i] of Object.entries(instances)) {
    cases[`${b}Health`] = () => wrk(i.api, '/healthz');
    cases[`${b}Me`] = () => wrk(i.api, '/auth/me', { authorization: `Bearer ${i.token}` });
    cases[`${b}Proxy`] = () => wrk(i.proxy, '/app/page', { cookie: `gh_access=${i.pxToken}` });
  }
  // CASES=regex runs only the matching cases (e.g. CASES=Proxy: the proxies alone).
  if (process.env.CASES) for (const k of Object.keys(cases)) if (!new RegExp(process.env.CASES).test(k)) delete cases[k];
  for (const f of Object.values(cases)) await f(); // warm-up: compile, import keys
  const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [k, f] of Object.entries(cases)) results[k].push(await f());
  }
  const rps = (k) => median(results[k].map((x) => x.rps));
  const cpu = (k) => median(results[k].map((x) => x.cpuUs));
  // Also the median of each round's own ratio: both sides of a pair ran a few seconds apart,
  // so a change of the machine's load between rounds cancels out.
  const paired = (k, base, f) => median(results[k].map((x, i) => f(x) / f(results[base][i])));
  const row = (label, k, base) => !results[k] || (base && !results[base]) ? null :
    `  ${label.padEnd(44)} ${rps(k).toFixed(0).padStart(6)} req/s  ${cpu(k).toFixed(0).padStart(5)} µs CPU` +
    (base ? `   ratio ${(rps(k) / rps(base)).toFixed(3)} (rps), ${(cpu(k) / cpu(base)).toFixed(3)} (CPU) vs ${base}; paired ${paired(k, base, (x) => x.rps).toFixed(3)}, ${paired(k, base, (x) => x.cpuUs).toFixed(3)}` : '');
  const spread = (k) => { const xs = results[k].map((x) => x.rps); return `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`; };
  console.log(`\nOverhead benchmark — wrk -t2 -c${CONNECTIONS} -d${SECONDS}s, median of ${ROUNDS} interleaved rounds; load average ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)}`);
  const rows = [
    row('minimal JS Worker, /healthz', 'jsHealth'),
    row('minimal workers-rs Worker, /healthz', 'rustHealth', 'jsHealth'),
  ];
  for (const b of Object.keys(instances)) {
    const label = b === 'gh' ? 'Gatehouse' : `Gatehouse (${b})`;
    rows.push(row(`${label} /healthz`, `${b}Health`, 'rustHealth'), row(`${label} /auth/me, valid JWT`, `${b}Me`, `${b}Health`));
  }
  rows.push(row('bare JS proxy to the local origin', 'jsProxy'));
  rows.push(row("JS proxy making Gatehouse's header edits", 'jsProxyEdits', 'jsProxy'));
  for (const b of Object.keys(instances)) {
    const label = b === 'gh' ? 'Gatehouse' : `Gatehouse (${b})`;
    rows.push(row(`${label} proxy, valid access cookie`, `${b}Proxy`, 'jsProxy'));
    rows.push(row(`${label} proxy, vs the JS proxy with the edits`, `${b}Proxy`, 'jsProxyEdits'));
  }
  for (const r of rows) if (r) console.log(r);
  console.log(`  spread of rounds (req/s): ${Object.keys(cases).map((k) => `${k} ${spread(k)}`).join(', ')}`);
  printStartup();
} finally {
  for (const stop of stops.reverse()) await stop();
  origin.close();
}
