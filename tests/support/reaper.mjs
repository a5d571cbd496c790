// Runs one command as the leader of a new process group (the harness spawns this detached)
// and ends the whole group — wrangler, workerd and anything they started — as soon as the test
// process that started it is gone, however it went (a crash, a kill -9, a timeout). The test
// process holds the write end of this process's stdin; the kernel closes it when that process
// dies, which is the signal here: no polling, no pid reuse races.
import { spawn } from 'node:child_process';

const [command, ...args] = process.argv.slice(2);
const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
const endGroup = () => { try { process.kill(-process.pid, 'SIGKILL'); } catch { process.exit(1); } };
process.stdin.on('end', endGroup);
process.stdin.on('error', endGroup);
process.stdin.resume();
// A stop from the harness signals the whole group; wrangler handles its own signal, and this
// process stays until wrangler has gone, so that the watch above lasts as long as it does.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => {});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
child.on('error', (e) => { console.error(`reaper: cannot start ${command}: ${e.message}`); process.exit(127); });
