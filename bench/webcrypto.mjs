// What one Ed25519 verify through WebCrypto costs in this workerd, apart from Gatehouse: a
// tiny JavaScript Worker under `wrangler dev` verifies 0, 1 or 10 signatures per request,
// and the workerd CPU per request is read from /proc around interleaved wrk rounds.
// (10 − 0) / 10 is the cost of one `crypto.subtle.verify("Ed25519", …)` with its await.
// Usage: node bench/webcrypto.mjs [rounds]
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { generateKeyPairSync, sign } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, freePort } from '../tests/support/harness.mjs';
import { workerdCpu } from './cpu.mjs';

const run = promisify(execFile);
const ROUNDS = Number(process.argv[2] ?? 15);

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const msg = Buffer.from('eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ1c3JfYmVuY2gifQ');
const dir = await mkdtemp(join(tmpdir(), 'gatehouse-webcrypto-'));
await writeFile(join(dir, 'worker.js'), `
const jwk = ${JSON.stringify(publicKey.export({ format: 'jwk' }))};
const msg = new Uint8Array(${JSON.stringify([...msg])});
const sig = new Uint8Array(${JSON.stringify([...sign(null, msg, privateKey)])});
let key;
export default { async fetch(req) {
  const n = Number(new URL(req.url).searchParams.get('n') ?? 0);
  key ??= await crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['verify']);
  let ok = true;
  for (let i = 0; i < n; i++) ok = ok && await crypto.subtle.verify({ name: 'Ed25519' }, key, sig, msg);
  return new Response(ok ? 'ok' : 'bad', { status: ok ? 200 : 500 });
} };`);
await writeFile(join(dir, 'wrangler.json'), JSON.stringify({ name: 'webcrypto-bench', main: 'worker.js', compatibility_date: '2026-04-01' }));
const port = await freePort();
const child = spawn(join(ROOT, 'node_modules', '.bin', 'wrangler'), ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await freePort()), '--persist-to', join(dir, 'state'), '--show-interactive-dev-session=false'], {
  cwd: dir, detached: true, stdio: 'ignore', env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false' },
});
try {
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    try { if ((await fetch(`${url}?n=1`)).ok) break; } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error('the bench Worker did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const cpu = { 0: [], 1: [], 10: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of [0, 1, 10]) {
      const before = await workerdCpu(child.pid);
      const { stdout } = await run('wrk', ['-t2', '-c8', '-d1s', `${url}?n=${n}`]);
      const spent = (await workerdCpu(child.pid)) - before;
      if (/Non-2xx/.test(stdout)) throw new Error(`n=${n}: failed verifies\n${stdout}`);
      cpu[n].push((spent * 1e6) / Number(stdout.match(/(\d+) requests in/)[1]));
    }
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const [c0, c1, c10] = [median(cpu[0]), median(cpu[1]), median(cpu[10])];
  console.log(`WebCrypto Ed25519 verify in workerd (median of ${ROUNDS} interleaved 1 s rounds, workerd CPU per request)`);
  console.log(`  0 verifies ${c0.toFixed(0)} µs, 1 verify ${c1.toFixed(0)} µs, 10 verifies ${c10.toFixed(0)} µs`);
  console.log(`  one verify: ${((c10 - c0) / 10).toFixed(1)} µs  (budget for Gatehouse's verify: <= 50 µs)`);
} finally {
  try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
  await rm(dir, { recursive: true, force: true });
}
