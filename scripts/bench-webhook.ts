// bench:webhook — the real webhook process (the bundled CLI, as the image runs it, reading through its informer
// caches fed by the fake API server) against a bare fastify HTTPS server that parses the same bodies and answers a
// minimal AdmissionReview, both under the same load: 16 connections, distinct Deployment pods, every request built
// before the clock starts (scripts/bench-webhook-child.ts). Two more servers, for reference and no target: the bare
// one answering a patch as long as the webhook's (what sending the answer costs), and the floor, the bare one doing
// the webhook's work with its own mutator and caches and nothing more (what the work costs; above it, what the
// webhook's body budget, log line and metrics cost). Then one profiled run of the webhook and the bare server gives
// the server CPU per admission by stage (scripts/bench-webhook-profile.ts). Exits 1 when a target is missed or a
// request failed.
//
//   npm run bench:webhook
//   BENCH_NODE=/path/to/node      the Node.js of both servers and of the load (default: this one)
//   BENCH_NODE_OPTIONS='...'      the webhook's NODE_OPTIONS (default: the Deployment's, manifests/base/deployment.yaml,
//                                 which also gives it MALLOC_ARENA_MAX; it replaces the image's NODE_OPTIONS)
//   BENCH_IMAGE_FLAGS='...'       node flags on the webhook's command line (default none, as the image's entrypoint;
//                                 e.g. '--min-semi-space-size=4')
//   BENCH_FLOOR_FLAGS='...'       node flags of the floor server (default none; e.g. the Deployment's heap limits, to
//                                 weigh them apart from the rest of the webhook's serving)
//   BENCH_CONNECTIONS, BENCH_WARMUP, BENCH_DURATION (s), BENCH_ROUNDS, BENCH_BODIES (per connection),
//   BENCH_PROFILE (s of the profiled run; 0: none), BENCH_KEEP_PROFILES=DIR (keep the .cpuprofile files there),
//   BENCH_LOG_LEVEL (the webhook's LOG_LEVEL: `warn` leaves out the admission lines, to weigh them)
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startFakeApiServer, type FakeApiServer } from '../test/fixtures/fake-apiserver.js';
import { makeTestPki } from '../test/fixtures/tls.js';
import { waitFor } from '../test/fixtures/wait-for.js';
import {
  deploymentRuntime,
  injectionProblem,
  memoryOf,
  postMutate,
  startWebhookProcess,
  WEBHOOK_SETTINGS_FLAGS,
  type WebhookProcess,
} from '../test/fixtures/webhook-process.js';
import type { V1Pod } from '@kubernetes/client-node';
import { CLIENT_ID, NAMESPACE, review, TEMPLATES, TENANT_ID } from './bench-webhook-bodies.js';
import type { LoadResult, ToChild, ToParent } from './bench-webhook-child.js';
import { ALL_STAGES, stageTimes, type CpuProfile } from './bench-webhook-profile.js';
import { median } from './median.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const WARMUP_S = Number(process.env.BENCH_WARMUP ?? 3);
const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
/** Measured rounds per server, interleaved so drift on a shared machine hits both alike. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BODIES_PER_CONNECTION = Number(process.env.BENCH_BODIES ?? 1000);
const PROFILE_S = Number(process.env.BENCH_PROFILE ?? DURATION_S);
const NODE = process.env.BENCH_NODE ?? process.execPath;
// The webhook runs as deployed: the image's ENTRYPOINT is `node /app/dist/cli.js`, and the Deployment's NODE_OPTIONS
// (read from the manifest by the fixture when BENCH_NODE_OPTIONS is unset) replace the image's.
const IMAGE_FLAGS = (process.env.BENCH_IMAGE_FLAGS ?? '').split(' ').filter(Boolean);
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS;
/** Node flags of the floor server (default none: Node's default heap, as the bare server's). */
const FLOOR_FLAGS = (process.env.BENCH_FLOOR_FLAGS ?? '').split(' ').filter(Boolean);
/** Samples every 250 µs: enough for 1 µs per admission at ~10⁴ admissions in a run, at a few percent overhead. */
const PROFILE_FLAGS = (dir: string): string[] => ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=250'];
const TARGETS = { ratio: 0.75, p99Ms: 5, rssMiB: 120 };
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const started = performance.now();
function progress(text: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${text}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// The processes.

/** The CLI bundle of the current sources, built by scripts/build.js as for the image; returns its cli.js. */
async function buildCli(scratch: string): Promise<string> {
  const outdir = path.join(scratch, 'dist');
  await promisify(execFile)(process.execPath, [path.join(ROOT, 'scripts', 'build.js'), '--outdir', outdir]);
  return path.join(outdir, 'cli.js');
}

/** scripts/bench-webhook-child.ts as one ESM bundle for plain node, beside node_modules (it imports autocannon). */
async function bundleChild(): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = path.join(ROOT, 'node_modules', '.cache', 'bench-webhook', 'child.mjs');
  await build({
    entryPoints: [path.join(ROOT, 'scripts', 'bench-webhook-child.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    external: ['autocannon'],
    logLevel: 'warning',
    banner: { js: "import { createRequire as __benchCreateRequire } from 'node:module'; const require = __benchCreateRequire(import.meta.url);" },
  });
  return outfile;
}

interface Child {
  pid: number;
  ask<T extends ToParent['type']>(message: ToChild, answer: T): Promise<Extract<ToParent, { type: T }>>;
  stop(): Promise<void>;
}

function startChild(bundle: string, execArgv: string[] = []): Child {
  const child: ChildProcess = fork(bundle, [], { execPath: NODE, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid as number,
    ask: (message, answer) =>
      new Promise((resolve, reject) => {
        const onMessage = (reply: ToParent): void => {
          if (reply.type === 'failed') reject(new Error(reply.message));
          else if (reply.type === answer) resolve(reply as Extract<ToParent, { type: typeof answer }>);
          else return;
          child.off('message', onMessage);
        };
        child.on('message', onMessage);
        void exited.then(() => reject(new Error(`a helper process exited before "${answer}"`)));
        child.send(message);
      }),
    stop: async () => {
      if (child.connected) child.disconnect();
      await exited;
    },
  };
}

/** The namespace and the templates' ServiceAccounts, as the webhook's informers will list them. */
function seed(fake: FakeApiServer): void {
  fake.upsert('namespaces', { metadata: { name: NAMESPACE, labels: { 'kubernetes.io/metadata.name': NAMESPACE } } });
  for (const template of TEMPLATES) {
    fake.upsert('serviceaccounts', {
      metadata: {
        name: template.serviceAccount,
        namespace: NAMESPACE,
        annotations: { 'azure.workload.identity/client-id': CLIENT_ID, 'azure.workload.identity/tenant-id': TENANT_ID },
      },
    });
  }
}

/**
 * Every template by hand first: the webhook must really inject these pods, or the benchmark measures nothing.
 * Returns the mean length of their patches (base64), for the reference server's answer.
 */
async function checkInjects(port: number, caPem: string): Promise<number> {
  let patchChars = 0;
  for (const template of TEMPLATES) {
    const body = review(template);
    const request = (JSON.parse(body) as { request: { uid: string; object: V1Pod } }).request;
    const answer = await postMutate(port, caPem, body);
    const problem = injectionProblem({ uid: request.uid, body, pod: request.object }, answer);
    if (problem !== undefined) throw new Error(`template ${template.app} was not injected: ${problem}`);
    patchChars += (JSON.parse(answer.body) as { response: { patch: string } }).response.patch.length;
  }
  return Math.round(patchChars / TEMPLATES.length);
}

/** CPU time (user + system) of a process so far, µs, from /proc (clock ticks of 10 ms). */
async function cpuUsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** The webhook, the baseline, and two references: the baseline answering a patch as long as the webhook's, and the floor. */
type Kind = 'webhook' | 'bare' | 'answer' | 'floor';
const KINDS: readonly Kind[] = ['webhook', 'bare', 'answer', 'floor'];
/** The webhook's flags as the floor server parses them: its settings as the fixture starts it, TLS files it never reads. */
const FLOOR_WEBHOOK_FLAGS = ['--tls-cert-file=/unused/tls.crt', '--tls-key-file=/unused/tls.key', ...WEBHOOK_SETTINGS_FLAGS];

interface Target {
  kind: Kind;
  pid: number;
  port: number;
  stop: () => Promise<unknown>;
}

interface World {
  scratch: string;
  cli: string;
  child: string;
  pki: ReturnType<typeof makeTestPki>;
  fake: FakeApiServer;
  load: Child;
  /** Mean length of the webhook's patches, found when it starts. */
  patchChars: number;
}

/** The servers started and not stopped yet: main() stops them all if the benchmark fails half-way. */
const running = new Set<() => Promise<unknown>>();

/** `stop`, noted in `running` until called. */
function stopLater(stop: () => Promise<unknown>): () => Promise<unknown> {
  running.add(stop);
  return () => {
    running.delete(stop);
    return stop();
  };
}

async function startTarget(world: World, kind: Kind, profileDir?: string): Promise<Target> {
  const flags = profileDir === undefined ? [] : PROFILE_FLAGS(profileDir);
  if (kind === 'floor') {
    const child = startChild(world.child, [...FLOOR_FLAGS, ...flags]);
    const stop = stopLater(() => child.stop());
    const { certPem, keyPem } = world.pki;
    const { port } = await child.ask(
      { type: 'floor', certPem, keyPem, kubeconfig: world.fake.kubeConfig().exportConfig(), args: FLOOR_WEBHOOK_FLAGS },
      'listening',
    );
    // The same patches as the webhook's, or it is not the webhook's work.
    const patchChars = await checkInjects(port, world.pki.caCertPem);
    if (patchChars !== world.patchChars) throw new Error(`the floor server's patches (${patchChars} characters) are not the webhook's (${world.patchChars})`);
    return { kind, pid: child.pid, port, stop };
  }
  if (kind !== 'webhook') {
    const child = startChild(world.child, flags);
    const stop = stopLater(() => child.stop());
    const patchBytes = kind === 'answer' ? world.patchChars : 0;
    const { port } = await child.ask({ type: 'bare', certPem: world.pki.certPem, keyPem: world.pki.keyPem, patchBytes }, 'listening');
    return { kind, pid: child.pid, port, stop };
  }
  const dir = await mkdtemp(path.join(world.scratch, 'webhook-'));
  const webhook: WebhookProcess = await startWebhookProcess({
    cli: world.cli,
    fake: world.fake,
    dir,
    pki: world.pki,
    node: NODE,
    ...(NODE_OPTIONS === undefined ? {} : { nodeOptions: NODE_OPTIONS }),
    nodeArgs: [...IMAGE_FLAGS, ...flags],
    ...(process.env.BENCH_LOG_LEVEL ? { env: { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } } : {}),
  });
  const stop = stopLater(() => webhook.stop());
  const ready = (): Promise<boolean> =>
    webhook.health('/readyz').then(
      (r) => r.status === 200,
      () => false,
    );
  await waitFor('the webhook ready (its caches synced with the fake API server)', ready, 30_000);
  world.patchChars = await checkInjects(webhook.port, world.pki.caCertPem);
  return { kind, pid: webhook.pid, port: webhook.port, stop };
}

async function runLoad(world: World, target: Target, seconds: number): Promise<LoadResult & { serverCpuUs: number }> {
  const before = await cpuUsOf(target.pid);
  const { result } = await world.load.ask({ type: 'load', port: target.port, seconds, connections: CONNECTIONS }, 'loaded');
  return { ...result, serverCpuUs: (await cpuUsOf(target.pid)) - before };
}

// ---------------------------------------------------------------------------------------------------------------
// The measurement.

interface Measured {
  rps: number;
  p50: number;
  p99: number;
  serverCpuUsPerRequest: number;
  clientCpuUsPerRequest: number;
  /** Share of one core the load process used. */
  clientCores: number;
  peakRssMiB: number;
  failures: number;
  rounds: number[];
}

async function measure(world: World): Promise<Record<Kind, Measured>> {
  const targets = new Map<Kind, Target>();
  for (const kind of KINDS) {
    progress(`starting the ${kind} server`);
    const target = await startTarget(world, kind);
    progress(`warming up the ${kind} server for ${WARMUP_S} s`);
    await runLoad(world, target, WARMUP_S);
    targets.set(kind, target);
  }
  const runs = new Map<Kind, Array<Awaited<ReturnType<typeof runLoad>>>>(KINDS.map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // The order turns each round: neither server always runs first.
    for (const kind of round % 2 === 0 ? KINDS : [...KINDS].reverse()) {
      progress(`round ${round + 1}/${ROUNDS}: ${kind}, ${DURATION_S} s`);
      const run = await runLoad(world, targets.get(kind) as Target, DURATION_S);
      runs.get(kind)?.push(run);
      progress(`  ${(run.total / run.seconds).toFixed(0)} req/s, p99 ${run.p99} ms`);
    }
  }
  const out = {} as Record<Kind, Measured>;
  for (const kind of KINDS) {
    const target = targets.get(kind) as Target;
    const peak = (await memoryOf(target.pid)).peak;
    await target.stop();
    const list = runs.get(kind) ?? [];
    const sum = (pick: (r: (typeof list)[number]) => number): number => list.reduce((n, r) => n + pick(r), 0);
    const total = Math.max(
      1,
      sum((r) => r.total),
    );
    out[kind] = {
      rps: median(list.map((r) => r.total / r.seconds)),
      p50: median(list.map((r) => r.p50)),
      p99: median(list.map((r) => r.p99)),
      serverCpuUsPerRequest: sum((r) => r.serverCpuUs) / total,
      clientCpuUsPerRequest: sum((r) => r.clientCpuUs) / total,
      clientCores: sum((r) => r.clientCpuUs) / (sum((r) => r.seconds) * 1e6),
      peakRssMiB: peak / 1024 / 1024,
      failures: sum((r) => r.errors + r.non2xx),
      rounds: list.map((r) => r.total / r.seconds),
    };
  }
  return out;
}

/** One profiled run of `kind`: µs of sampled CPU per request by stage. */
async function profile(world: World, kind: Kind): Promise<Map<string, number>> {
  const dir = await mkdtemp(path.join(world.scratch, `profile-${kind}-`));
  progress(`profiling the ${kind} server: ${WARMUP_S} s warm-up, ${PROFILE_S} s sampled`);
  const target = await startTarget(world, kind, dir);
  await runLoad(world, target, WARMUP_S);
  const from = Number(process.hrtime.bigint() / 1000n);
  const run = await runLoad(world, target, PROFILE_S);
  const to = Number(process.hrtime.bigint() / 1000n);
  await target.stop();
  const file = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`the profiled ${kind} server wrote no profile`);
  if (process.env.BENCH_KEEP_PROFILES) {
    await mkdir(process.env.BENCH_KEEP_PROFILES, { recursive: true });
    await cp(path.join(dir, file), path.join(process.env.BENCH_KEEP_PROFILES, `${kind}.cpuprofile`));
    // The window, and the bundle the profile's frames point into (kept: the scratch folder is not removed).
    await writeFile(path.join(process.env.BENCH_KEEP_PROFILES, `${kind}.window.json`), JSON.stringify({ from, to, requests: run.total }));
  }
  const times = stageTimes(JSON.parse(await readFile(path.join(dir, file), 'utf8')) as CpuProfile, from, to);
  // The sampler runs on the wall clock: on a busy machine a descheduled thread is sampled too. Its shares are
  // what counts, laid over the process's own CPU time in the run.
  const sampled = [...times.values()].reduce((n, us) => n + us, 0);
  const scale = run.serverCpuUs / Math.max(1, sampled) / Math.max(1, run.total);
  return new Map([...times].map(([stage, us]) => [stage, us * scale]));
}

// ---------------------------------------------------------------------------------------------------------------
// The report.

function report(
  m: Record<Kind, Measured>,
  stages: Record<'webhook' | 'bare', Map<string, number>> | undefined,
  bodies: { count: number; meanBytes: number },
  patchChars: number,
): boolean {
  const { webhook, bare } = m;
  // Each webhook round against the bare round next to it in time: on a shared machine whose speed drifts within a run,
  // the median of these paired ratios is steadier than the ratio of the two medians (printed beside it).
  const ratio = median(webhook.rounds.map((rps, i) => rps / (bare.rounds[i] as number)));
  const deployed = deploymentRuntime();
  console.log(
    `bench:webhook — node ${NODE === process.execPath ? process.version : NODE}, webhook as deployed: node ${[...IMAGE_FLAGS, 'dist/cli.js'].join(' ')} (${process.env.BENCH_IMAGE_FLAGS === undefined ? "the image's entrypoint" : 'BENCH_IMAGE_FLAGS'}), NODE_OPTIONS ${JSON.stringify(NODE_OPTIONS ?? deployed.nodeOptions)}${NODE_OPTIONS === undefined ? " (the Deployment's)" : ''}, MALLOC_ARENA_MAX ${deployed.mallocArenaMax ?? 'unset'}; ` +
      `HTTPS on 127.0.0.1, ${CONNECTIONS} connections, ${WARMUP_S} s warm-up, ${ROUNDS} interleaved rounds of ${DURATION_S} s (medians)`,
  );
  console.log(
    `bodies: ${bodies.count} distinct AdmissionReviews of Deployment pods (${TEMPLATES.length} templates), ${(bodies.meanBytes / 1024).toFixed(1)} KiB on average`,
  );
  const row = (name: string, x: Measured): string =>
    `${name.padEnd(8)} ${x.rps.toFixed(0).padStart(6)} req/s  p50 ${x.p50.toFixed(0).padStart(3)} ms  p99 ${x.p99.toFixed(0).padStart(3)} ms  ` +
    `server CPU ${x.serverCpuUsPerRequest.toFixed(0).padStart(4)} µs/req  peak RSS ${x.peakRssMiB.toFixed(0).padStart(4)} MiB  ` +
    `client CPU ${x.clientCpuUsPerRequest.toFixed(0).padStart(3)} µs/req (${(x.clientCores * 100).toFixed(0)} % of a core)  ` +
    `rounds ${x.rounds.map((r) => r.toFixed(0)).join(' ')}  failed ${x.failures}`;
  console.log(row('webhook', webhook));
  console.log(row('bare', bare));
  console.log(row('answer', m.answer));
  console.log(row('floor', m.floor));
  console.log(
    `answer: the bare server answering a patch of ${patchChars} characters, as long as the webhook's (a reference, no target): ` +
      `webhook / answer ${(webhook.rps / m.answer.rps).toFixed(2)}, answer / bare ${(m.answer.rps / bare.rps).toFixed(2)}, ` +
      `its server CPU ${(m.answer.serverCpuUsPerRequest - bare.serverCpuUsPerRequest).toFixed(0)} µs/req over the bare server's`,
  );
  console.log(
    `floor: the bare server doing the webhook's work (the webhook's mutator and caches, replicas told by their bytes, the answer) and no more (a reference, no target): ` +
      `floor / bare ${(m.floor.rps / bare.rps).toFixed(2)}, webhook / floor ${(webhook.rps / m.floor.rps).toFixed(2)}, ` +
      `its server CPU ${(m.floor.serverCpuUsPerRequest - bare.serverCpuUsPerRequest).toFixed(0)} µs/req over the bare server's, the webhook's ${(webhook.serverCpuUsPerRequest - m.floor.serverCpuUsPerRequest).toFixed(0)} over its`,
  );
  if (stages !== undefined) {
    console.log('server CPU per request by stage (profiled run: its CPU time, split as sampled), µs   webhook    bare');
    for (const stage of ALL_STAGES) {
      const w = stages.webhook.get(stage) ?? 0;
      const b = stages.bare.get(stage) ?? 0;
      if (w >= 0.5 || b >= 0.5) console.log(`  ${stage.padEnd(77)} ${w.toFixed(0).padStart(7)} ${b.toFixed(0).padStart(7)}`);
    }
    const total = (s: Map<string, number>): number => [...s.values()].reduce((n, v) => n + v, 0);
    console.log(`  ${'total'.padEnd(77)} ${total(stages.webhook).toFixed(0).padStart(7)} ${total(stages.bare).toFixed(0).padStart(7)}`);
  }
  const failures = KINDS.reduce((n, kind) => n + m[kind].failures, 0);
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  const checks = [
    [
      `throughput webhook / bare ${ratio.toFixed(2)}, the median of the ${webhook.rounds.length} paired rounds' ratios (${webhook.rounds.map((rps, i) => (rps / (bare.rounds[i] as number)).toFixed(2)).join(' ')}; the medians' ratio ${(webhook.rps / bare.rps).toFixed(2)}) (target ≥ ${TARGETS.ratio})`,
      ratio >= TARGETS.ratio,
    ],
    [`webhook p99 ${webhook.p99.toFixed(0)} ms (target ≤ ${TARGETS.p99Ms})`, webhook.p99 <= TARGETS.p99Ms],
    [`webhook peak RSS ${webhook.peakRssMiB.toFixed(0)} MiB (target ≤ ${TARGETS.rssMiB})`, webhook.peakRssMiB <= TARGETS.rssMiB],
    [`failed requests ${failures} (must be 0)`, failures === 0],
  ] as const;
  for (const [text, ok] of checks) console.log(`${text}: ${verdict(ok)}`);
  return checks.every(([, ok]) => ok);
}

async function main(): Promise<void> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'bench-webhook-'));
  try {
    progress('building the CLI bundle and the helper bundle');
    const [cli, child] = await Promise.all([buildCli(scratch), bundleChild()]);
    const pki = makeTestPki(['localhost', '127.0.0.1']);
    const fake = await startFakeApiServer();
    seed(fake);
    const load = startChild(child);
    progress(`building ${CONNECTIONS} × ${BODIES_PER_CONNECTION} request bodies in the load process`);
    const bodies = await load.ask({ type: 'bodies', connections: CONNECTIONS, perConnection: BODIES_PER_CONNECTION }, 'ready');
    const world: World = { scratch, cli, child, pki, fake, load, patchChars: 0 };
    const measured = await measure(world);
    const stages = PROFILE_S > 0 ? { webhook: await profile(world, 'webhook'), bare: await profile(world, 'bare') } : undefined;
    await load.stop();
    await fake.close();
    if (!report(measured, stages, { count: bodies.bodies, meanBytes: bodies.meanBytes }, world.patchChars)) process.exitCode = 1;
  } finally {
    await Promise.allSettled([...running].map((stop) => stop()));
    if (process.env.BENCH_KEEP_PROFILES) progress(`kept ${scratch} (the bundles the profiles point into)`);
    else await rm(scratch, { recursive: true, force: true });
  }
}

await main();
