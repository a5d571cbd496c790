// CPU accounting for the benchmarks: the CPU time the workerd processes of one `wrangler dev`
// have used so far, read from /proc. Measured around a wrk round, it gives the runtime's CPU
// per request directly, which throughput alone cannot (wrk shares the machine's two cores).

const CLK_TCK = 100; // Linux's USER_HZ: /proc times are in 1/100 s

/** CPU seconds (user + system) so far of the workerd processes in process group `pgid`. */
export async function workerdCpu(pgid) {
  const { readdir, readFile } = await import('node:fs/promises');
  let ticks = 0;
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try { stat = await readFile(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' '); // from field 3 (state): pgrp = f[2], utime = f[11], stime = f[12]
    if (comm.startsWith('workerd') && Number(f[2]) === pgid) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / CLK_TCK;
}
