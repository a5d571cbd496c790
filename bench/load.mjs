// The load benchmark (docs/budgets.md): starts Gatehouse in workerd (wrangler dev, local D1/KV)
// and a local OIDC provider, signs one user in, and runs wrk against
//   /healthz                         — the bare route (baseline)
//   /auth/me, one valid access JWT   — the hot path (verify, no storage)
//   /auth/me, a new JWT per request  — no cache can help
// Runs are interleaved and repeated; results are ratios within this run (the machine is
// shared and noisy). Besides throughput it reads the CPU time of the workerd processes from
// /proc around every round, so that the extra CPU of a request with a JWT over a bare one is
// measured directly, not inferred from throughput (wrk shares the two cores). It also
// measures the CPU of login callbacks (OIDC code exchange, ID-token verify, D1 linking, KV
// session) and prints the gzip bundle size. Usage: node bench/load.mjs [seconds]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile, readFile } from 'node:fs/promises';
import { workerdCpu } from './cpu.mjs';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn, newSigningKey, ROOT } from '../tests/support/harness.mjs';
import { startOidcProvider } from '../tests/support/oidc-provider.mjs';
import { signEd25519, accessClaims } from '../tests/support/jwt.mjs';

const run = promisify(execFile);
const SECONDS = Number(process.argv[2] ?? 8);
const CONNECTIONS = 8;
const ROUNDS = Number(process.env.ROUNDS ?? 5);

let GH_PGID;

async function wrk(url, { headers = {}, script, env = {} } = {}) {
  const args = ['-t2', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (script) args.push('-s', script);
  args.push(url);
  const cpu0 = await workerdCpu(GH_PGID);
  const { stdout } = await run('wrk', args, { env: { ...process.env, ...env } });
  const cpu = (await workerdCpu(GH_PGID)) - cpu0;
  const rps = Number(stdout.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const requests = Number(stdout.match(/(\d+) requests in/)[1]);
  const non2xx = Number(stdout.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
  const p50 = stdout.match(/50%\s+(\S+)/)?.[1];
  const p99 = stdout.match(/99%\s+(\S+)/)?.[1];
  if (non2xx > 0) throw new Error(`${url}: ${non2xx} non-2xx responses\n${stdout}`);
  return { rps, p50, p99, cpuUs: (cpu * 1e6) / requests };
}

const port = await freePort();
const secret = randomBytes(24).toString('base64url');
const idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: [`http://127.0.0.1:${port}/auth/callback/dev`] }] });
const key = newSigningKey();
const gh = await startGatehouse({
    testRoutes: false, // the entry as deployed
  port,
  vars: { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } }, ACCESS_TOKEN_TTL_SECONDS: '3600' },
  secrets: { ...baseSecrets(), SIGNING_KEYS: JSON.stringify([key]), PROVIDER_DEV_SECRET: secret },
});
GH_PGID = gh.pid;
try {
  if ((await workerdCpu(GH_PGID)) === 0) throw new Error(`no workerd process found in process group ${GH_PGID}`);
  const browser = new Client();
  await oidcSignIn(browser, gh.url, { login: 'bench' });
  const me = await (await browser.fetch(`${gh.url}/auth/me`)).json();
  const token = browser.cookie(gh.url, 'gh_access');
  // Distinct, valid tokens: same user and session, a different iat and jti-like claim each.
  const now = Math.floor(Date.now() / 1000);
  const tokens = Array.from({ length: 20000 }, (_, i) => signEd25519(key, accessClaims(gh.url, { sub: me.id, sid: me.session_id, email: me.email, name: me.name, iat: now - (i % 600), ttl: 3600, n: i })));
  const tokensFile = join(tmpdir(), `gatehouse-bench-tokens-${process.pid}.txt`);
  await writeFile(tokensFile, tokens.join('\n') + '\n');

  // Warm up (first requests compile the module and import keys).
  await wrk(`${gh.url}/healthz`);
  const results = { health: [], me: [], meDistinct: [] };
  for (let round = 0; round < ROUNDS; round++) {
    results.health.push(await wrk(`${gh.url}/healthz`));
    results.me.push(await wrk(`${gh.url}/auth/me`, { headers: { authorization: `Bearer ${token}` } }));
    results.meDistinct.push(await wrk(`${gh.url}/auth/me`, { script: join(ROOT, 'bench', 'tokens.lua'), env: { TOKENS_FILE: tokensFile } }));
  }
  const medianOf = (xs, f) => xs.map(f).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const median = (xs) => medianOf(xs, (x) => x.rps);
  const h = median(results.health);
  const m = median(results.me);
  const d = median(results.meDistinct);
  const cpu = (xs) => medianOf(xs, (x) => x.cpuUs);
  const [cpuH, cpuM, cpuD] = [cpu(results.health), cpu(results.me), cpu(results.meDistinct)];

  // Login callbacks: the CPU workerd spends on the callback request alone (the provider runs
  // in this process, not in workerd), summed over many sign-ins for the clock's resolution.
  const SIGN_INS = Number(process.env.SIGN_INS ?? 40);
  let callbackCpu = 0;
  for (let i = 0; i < SIGN_INS; i++) {
    const c = new Client();
    const callback = await oidcSignIn(c, gh.url, { login: `cb-${i % 2 ? 'again' : i}`, stopAtCallback: true });
    const before = await workerdCpu(GH_PGID);
    const r = await c.fetch(callback);
    callbackCpu += (await workerdCpu(GH_PGID)) - before;
    if (r.status !== 302) throw new Error(`callback answered ${r.status}`);
  }
  const wasm = await readFile(join(ROOT, 'build', 'index_bg.wasm'));
  const js = await readFile(join(ROOT, 'build', 'index.js'));
  const gz = gzipSync(wasm, { level: 9 }).length + gzipSync(js, { level: 9 }).length;
  // workerd runs one isolate on one thread: at saturation, 1/throughput is the time per
  // request, so the extra time of /auth/me over /healthz bounds the verify cost from above.
  const extraUs = (1e6 / d - 1e6 / h).toFixed(1);
  console.log(`\nGatehouse load benchmark — wrk -t2 -c${CONNECTIONS} -d${SECONDS}s, median of ${ROUNDS} interleaved rounds`);
  console.log(`  /healthz                        ${h.toFixed(0)} req/s   (p99 ${results.health.at(-1).p99})`);
  console.log(`  /auth/me, same valid JWT        ${m.toFixed(0)} req/s   ratio ${(m / h).toFixed(3)} (budget >= 0.9)`);
  console.log(`  /auth/me, new JWT each request  ${d.toFixed(0)} req/s   ratio ${(d / h).toFixed(3)}`);
  console.log(`  extra time per /auth/me request over /healthz (verify + JSON): ${extraUs} µs, from throughput`);
  console.log(`  workerd CPU per request: /healthz ${cpuH.toFixed(1)} µs, /auth/me ${cpuM.toFixed(1)} µs, new JWT each ${cpuD.toFixed(1)} µs`);
  console.log(`  extra CPU of /auth/me over /healthz (parse + WebCrypto verify + JSON), an upper bound on the verify: ${(cpuD - cpuH).toFixed(1)} µs with a new JWT each request, ${(cpuM - cpuH).toFixed(1)} µs same JWT (budget for the verify: <= 50 µs)`);
  console.log(`  login callback, workerd CPU (Gatehouse + runtime + local D1/KV), mean of ${SIGN_INS}: ${((callbackCpu * 1e3) / SIGN_INS).toFixed(2)} ms (budget for Gatehouse itself: <= 2 ms)`);
  console.log(`  bundle: wasm ${wasm.length} B, js ${js.length} B, gzip total ${gz} B = ${(gz / 1024).toFixed(1)} KiB (budget <= 350 KB)`);
  console.log(`  all rounds (req/s): ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map((x) => Math.round(x.rps))])))}`);
  console.log(`  all rounds (CPU µs/request): ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map((x) => Math.round(x.cpuUs))])))}`);
} finally {
  await gh.stop();
  await idp.close();
}
