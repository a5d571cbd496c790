// A CPU profile of Gatehouse under load, taken through workerd's DevTools inspector: where the
// Worker's own time goes on one kind of request. It prints the functions with the most self
// time, JavaScript and wasm, then Gatehouse's wasm functions with their callees. wasm
// functions have names only in a build that keeps its names section:
//   GATEHOUSE_KEEP_NAMES=1 scripts/build   (then build/ is bigger than the deployed bundle)
// Usage: node bench/profile.mjs proxy|me|healthz [seconds] [buildDir]
//   INTERVAL_US=N sampling interval (default 50); PROFILE_OUT=path also writes
//   path.cpuprofile (DevTools) and the bundle wrangler ran, whose line numbers the
//   JavaScript rows give.
// With the inspector attached V8 runs wasm in its baseline tier, so the wasm's share is
// overstated: read the profile for where the time goes, and bench/overhead.mjs for how much
// (docs/toolchain.md).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFile, readdir, copyFile } from 'node:fs/promises';
// wrangler's inspector proxy refuses the upgrade from Node's built-in WebSocket client.
import WebSocket from 'ws';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn, newSigningKey, ROOT } from '../tests/support/harness.mjs';
import { startOidcProvider } from '../tests/support/oidc-provider.mjs';

const run = promisify(execFile);
const [kind = 'proxy', seconds = '10', buildDir = join(ROOT, 'build')] = process.argv.slice(2);
const TOP = Number(process.env.TOP ?? 45);

/** A minimal DevTools protocol client: `send(method, params)` resolves with the result. */
async function devtools(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let next = 1;
  const pending = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(data);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result);
    }
  });
  return {
    send: (method, params = {}) => new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    }),
    close: () => ws.close(),
  };
}

/** Time per function with its callees (each sample counted once per function on its stack). */
function totalTimes(profile) {
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const out = new Map();
  profile.samples.forEach((id, i) => {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const name = byId.get(at).callFrame.functionName;
      if (name && !seen.has(name)) { seen.add(name); out.set(name, (out.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0)); }
    }
  });
  return [...out].sort((a, b) => b[1] - a[1]);
}

/** Self time per function (name and script), and the total of the samples, in µs. */
function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const out = new Map();
  let total = 0;
  for (const [id, t] of dt) {
    const f = byId.get(id).callFrame;
    const script = f.url ? f.url.split('/').pop() : '';
    const key = `${f.functionName || '(anonymous)'}  ${script}${f.lineNumber >= 0 && script ? `:${f.lineNumber + 1}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + t);
    total += t;
  }
  return { rows: [...out].sort((a, b) => b[1] - a[1]), total };
}

const origin = createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('hello from the origin\n'); });
});
await new Promise((r) => origin.listen(0, '127.0.0.1', r));
const stops = [() => origin.close()];
try {
  const secret = randomBytes(24).toString('base64url');
  const port = await freePort();
  const idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`] }] });
  stops.push(() => idp.close());
  const key = newSigningKey();
  const vars = {
    PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } },
    ACCESS_TOKEN_TTL_SECONDS: '3600',
    ...(kind === 'proxy' ? { ORIGIN_URL: `http://127.0.0.1:${origin.address().port}` } : {}),
  };
  const gh = await startGatehouse({ port, buildDir, testRoutes: false, vars, secrets: { ...baseSecrets(), SIGNING_KEYS: JSON.stringify([key]), PROVIDER_DEV_SECRET: secret } });
  stops.push(() => gh.stop());
  const browser = new Client();
  await oidcSignIn(browser, gh.url, { login: 'profile' });
  const token = browser.cookie(gh.url, 'gh_access');
  const [path, header] = {
    proxy: ['/app/page', `cookie: gh_access=${token}`],
    me: ['/auth/me', `authorization: Bearer ${token}`],
    healthz: ['/healthz', 'x-none: 1'],
  }[kind];
  const wrk = (s) => run('wrk', ['-t2', '-c8', `-d${s}s`, '-H', header, `${gh.url}${path}`]);
  await wrk(3); // warm-up: compile, import keys
  const dt = await devtools(gh.inspector);
  stops.push(() => dt.close());
  await dt.send('Profiler.enable');
  await dt.send('Profiler.setSamplingInterval', { interval: Number(process.env.INTERVAL_US ?? 50) });
  await dt.send('Profiler.start');
  const { stdout } = await wrk(Number(seconds));
  const { profile } = await dt.send('Profiler.stop');
  const requests = Number(stdout.match(/(\d+) requests in/)[1]);
  const { rows, total } = selfTimes(profile);
  console.log(`${kind}: ${requests} requests, ${(total / requests).toFixed(1)} µs of sampled isolate time per request (idle excluded below)`);
  for (const [name, t] of rows.slice(0, TOP)) {
    console.log(`${(t / requests).toFixed(2).padStart(8)} µs/req  ${((100 * t) / total).toFixed(1).padStart(5)}%  ${name.slice(0, 140)}`);
  }
  console.log('\nWith callees (Gatehouse\'s own wasm functions):');
  for (const [name, t] of totalTimes(profile).filter(([n]) => n.includes('gatehouse')).slice(0, TOP)) {
    console.log(`${(t / requests).toFixed(2).padStart(8)} µs/req  ${name.slice(0, 150)}`);
  }
  if (process.env.PROFILE_OUT) {
    // For a closer look in DevTools (Performance → load profile), with the bundle wrangler ran.
    await writeFile(`${process.env.PROFILE_OUT}.cpuprofile`, JSON.stringify(profile));
    const tmp = join(gh.dir, '.wrangler', 'tmp');
    for (const d of await readdir(tmp).catch(() => [])) {
      await copyFile(join(tmp, d, 'index.js'), `${process.env.PROFILE_OUT}.${d}.js`).catch(() => {});
    }
  }
} finally {
  for (const stop of stops.reverse()) await stop();
}
