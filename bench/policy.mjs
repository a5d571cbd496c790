// The access policy on the hot path: in ONE run, interleaved wrk rounds, it measures
//   Gatehouse /healthz
//   Gatehouse proxy mode, a request with a valid access cookie to a route that needs a role
//     (POLICY with routes and a rule role: normalize the path, match the routes, check the
//     token's roles — no storage read)
//   and, with BEFORE_BUILD=dir (e.g. main's build/), the same proxied request on that build
//     (no POLICY there), to show what the policy check adds;
// reporting throughput (wrk -c8) and the workerd CPU per request, medians of the rounds.
// Usage: node bench/policy.mjs [seconds]   (needs build/ and wrk)
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { workerdCpu } from './cpu.mjs';
import { startGatehouse, baseSecrets, freePort, Client, oidcSignIn } from '../tests/support/harness.mjs';
import { startOidcProvider } from '../tests/support/oidc-provider.mjs';

const run = promisify(execFile);
const SECONDS = Number(process.argv[2] ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 5);

async function wrk(target, path, headers = {}) {
  const args = ['-t2', '-c8', `-d${SECONDS}s`];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(`${target.url}${path}`);
  const cpu0 = await workerdCpu(target.pid);
  const { stdout } = await run('wrk', args);
  const cpu = (await workerdCpu(target.pid)) - cpu0;
  const requests = Number(stdout.match(/(\d+) requests in/)[1]);
  const bad = Number(stdout.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
  if (bad > 0) throw new Error(`${target.url}${path}: ${bad} non-2xx responses\n${stdout}`);
  return { rps: Number(stdout.match(/Requests\/sec:\s+([\d.]+)/)[1]), cpuUs: (cpu * 1e6) / requests };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const origin = createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); });
await new Promise((r) => origin.listen(0, '127.0.0.1', r));
const secret = randomBytes(24).toString('base64url');
const builds = [['policy', undefined], ...(process.env.BEFORE_BUILD ? [['before', process.env.BEFORE_BUILD]] : [])];
const ports = await Promise.all(builds.map(() => freePort()));
const idp = await startOidcProvider({ clients: [{ client_id: 'gatehouse', client_secret: secret, redirect_uris: ports.map((p) => `http://127.0.0.1:${p}/auth/callback/dev`) }] });
const POLICY = {
  roles: [{ role: 'staff', email_domains: ['example.test'] }],
  routes: [{ path: '/public/*', public: true }, { path: '/internal/*', roles: ['admin'] }, { path: '/app/*', roles: ['staff'] }],
};
const targets = [];
try {
  for (const [i, [name, buildDir]] of builds.entries()) {
    const vars = { PROVIDERS: { dev: { kind: 'oidc', issuer: idp.issuer, client_id: 'gatehouse' } }, ORIGIN_URL: `http://127.0.0.1:${origin.address().port}` };
    if (name === 'policy') vars.POLICY = POLICY;
    const gh = await startGatehouse({ port: ports[i], vars, secrets: { ...baseSecrets(), PROVIDER_DEV_SECRET: secret }, buildDir, testRoutes: false });
    const browser = new Client();
    await oidcSignIn(browser, gh.url, { login: `bench${i}` });
    const cookie = `gh_access=${browser.cookie(gh.url, 'gh_access')}`;
    const probe = await fetch(`${gh.url}/app/page`, { headers: { cookie } });
    if (probe.status !== 200) throw new Error(`${name}: proxied request answered ${probe.status}`);
    targets.push({ name, gh, cookie, healthz: [], proxy: [] });
  }
  console.log(`load average before: ${loadavg().map((x) => x.toFixed(1)).join(' ')}; ${ROUNDS} rounds of ${SECONDS} s, wrk -c8`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of targets) {
      t.healthz.push(await wrk(t.gh, '/healthz'));
      t.proxy.push(await wrk(t.gh, '/app/page', { cookie: t.cookie }));
    }
  }
  for (const t of targets) {
    const h = median(t.healthz.map((x) => x.rps));
    const p = median(t.proxy.map((x) => x.rps));
    const hc = median(t.healthz.map((x) => x.cpuUs));
    const pc = median(t.proxy.map((x) => x.cpuUs));
    console.log(`${t.name}: /healthz ${h.toFixed(0)} req/s, ${hc.toFixed(0)} µs CPU; proxied /app/page (valid token, role route) ${p.toFixed(0)} req/s, ${pc.toFixed(0)} µs CPU; ratio proxy/healthz ${(p / h).toFixed(2)}`);
  }
  console.log(`load average after: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
} finally {
  for (const t of targets) await t.gh.stop();
  await idp.close();
  origin.close();
}
