// The refresh sidecar's cost (issue 12): idle RSS between refreshes, peak RSS, CPU per refresh of 40 objects (nothing
// changed, and all 40 rotated), and CPU while idle. The bundled CLI as the image runs it (its NODE_OPTIONS, --max-semi-space-size=1)
// against the emulators, each refresh asked for with SIGHUP. BENCH_NODE: the Node.js measured (the image runs 24:
// BENCH_NODE=$(npx -y node@24 -p process.execPath)); BENCH_REFRESHES (default 10); BENCH_IDLE_S (default 20).
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildDist, runCli } from '../test/fixtures/dist.js';
import { startFetchWorld } from '../test/fixtures/fetch-world.js';
import { startSidecar, type LogLine, type SidecarProcess } from '../test/fixtures/refresh-process.js';
import { memoryOf } from '../test/fixtures/webhook-process.js';

const NODE = process.env.BENCH_NODE ?? process.execPath;
const REFRESHES = Number(process.env.BENCH_REFRESHES ?? 10);
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 20);
const OBJECTS = 40;
const MiB = 1024 * 1024;

/** CPU time the process has run, ms (/proc/PID/schedstat: nanoseconds on a CPU). */
async function cpuMs(pid: number): Promise<number> {
  return Number((await readFile(`/proc/${pid}/schedstat`, 'utf8')).split(' ')[0]) / 1e6;
}

async function refresh(sidecar: SidecarProcess): Promise<{ line: LogLine; cpu: number }> {
  const before = await cpuMs(sidecar.pid);
  const from = sidecar.lines.length;
  sidecar.signal('SIGHUP');
  const line = await sidecar.waitForLine('a refresh', (l) => typeof l.msg === 'string' && /^refresh (complete|failed)/.test(l.msg), { from });
  // The loop writes the status file and logs its next wait right after: count that too.
  await sidecar.waitForLine('the next wait', (l) => l.msg === 'next refresh', { from: sidecar.lines.indexOf(line) });
  if (!String(line.msg).startsWith('refresh complete')) throw new Error(`the refresh failed: ${sidecar.stderr()}`);
  return { line, cpu: (await cpuMs(sidecar.pid)) - before };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const mib = (bytes: number): string => (bytes / MiB).toFixed(1);

const world = await startFetchWorld();
try {
  const cli = await buildDist(world.dir);
  const objects = Array.from({ length: OBJECTS }, (_, i) => ({ objectName: `secret-${i}`, objectType: 'secret' }));
  const rotate = (round: number): void => objects.forEach((o, i) => void world.vault.setSecret(o.objectName, `value ${i} of round ${round} `.repeat(4)));
  rotate(0);
  const job = await world.job(objects);
  const env = world.childEnv(job, objects, { AKV_INJECTOR_REFRESH_INTERVAL: '1h' });
  const fetched = await runCli(cli, ['fetch'], env, world.dir);
  if (fetched.code !== 0) throw new Error(`the fetch failed: ${fetched.stderr}`);

  const version = execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim();
  const sidecar = startSidecar(cli, env, {
    node: NODE,
    nodeArgs: ['--max-semi-space-size=1', ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)],
  });
  try {
    await sidecar.waitForLine('the first wait', (l) => l.msg === 'next refresh');
    await sleep(2_000);
    const startRss = (await memoryOf(sidecar.pid)).rss;

    const unchanged: number[] = [];
    const rotated: number[] = [];
    for (let round = 1; round <= REFRESHES; round++) {
      unchanged.push((await refresh(sidecar)).cpu);
      rotate(round);
      const { line, cpu } = await refresh(sidecar);
      if (line.changed !== true) throw new Error('a rotation published nothing');
      rotated.push(cpu);
    }
    const afterRefreshes = (await memoryOf(sidecar.pid)).rss;
    // Idle: the sidecar waits for its next refresh, an hour away. A bench may wait; it asserts nothing.
    const idleCpuStart = await cpuMs(sidecar.pid);
    const samples: number[] = [];
    for (let s = 0; s < IDLE_S; s += 5) {
      await sleep(5_000);
      samples.push((await memoryOf(sidecar.pid)).rss);
    }
    const idleCpu = (await cpuMs(sidecar.pid)) - idleCpuStart;
    const { peak } = await memoryOf(sidecar.pid);

    console.log(`akv-injector refresh on Node ${version}, ${OBJECTS} secrets, ${REFRESHES} refreshes of each kind, --max-semi-space-size=1`);
    console.log(`idle RSS after start (before any refresh):   ${mib(startRss)} MiB`);
    console.log(`RSS right after ${2 * REFRESHES} refreshes:              ${mib(afterRefreshes)} MiB`);
    console.log(`idle RSS every 5 s after that:               ${samples.map(mib).join(', ')} MiB`);
    console.log(`peak RSS (VmHWM):                            ${mib(peak)} MiB`);
    console.log(`CPU per refresh, nothing changed (median):   ${median(unchanged).toFixed(1)} ms (${unchanged.map((c) => c.toFixed(0)).join(', ')})`);
    console.log(`CPU per refresh, all ${OBJECTS} rotated (median):    ${median(rotated).toFixed(1)} ms (${rotated.map((c) => c.toFixed(0)).join(', ')})`);
    console.log(`CPU while idle for ${IDLE_S} s:                     ${idleCpu.toFixed(1)} ms`);
    const rssSeries = sidecar.lines.filter((l) => l.msg === 'next refresh').map((l) => mib(l.rss as number));
    console.log(`RSS at each wait (MiB):                      ${rssSeries.join(' ')}`);
    sidecar.signal('SIGTERM');
    await sidecar.exited;
  } finally {
    sidecar.kill();
  }
} finally {
  await world.close();
}
