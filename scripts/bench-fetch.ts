// bench:fetch — the fetch process's wall time for 40 secrets and for 1, against emulators that add
// 20 ms to every response, beside the lower bound measured in the same run.
// BENCH_VAULT_HTTP2=0 makes the vault speak HTTP/1.1 only; BENCH_NODE_ARGS passes flags to every
// measured process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkloadIdentityCredential } from '@azure/identity';
import { startFetchWorld, VAULT_NAME } from '../test/fixtures/fetch-world.js';
import { loopbackChildEnv } from '../test/fixtures/loopback.js';

const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 20);
const OBJECTS = 40;
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const root = new URL('..', import.meta.url).pathname;
const cli = join(root, 'dist', 'cli.js');

const VAULT_HTTP2 = process.env.BENCH_VAULT_HTTP2 !== '0';
// In a pod the files go to a memory-backed emptyDir: write them to tmpfs here too, where there is one.
const TMPFS = '/dev/shm';
const scratchRoot = existsSync(TMPFS) ? TMPFS : tmpdir();
const world = await startFetchWorld({ latencyMs: LATENCY_MS, vaultHttp2: VAULT_HTTP2, scratchRoot });
const scratch = await mkdtemp(join(tmpdir(), 'akv-bench-'));
const names = Array.from({ length: OBJECTS }, (_, i) => `bench-secret-${String(i).padStart(2, '0')}`);
for (const name of names) world.vault.setSecret(name, `value-${name}-${'x'.repeat(64)}`);

interface Sample {
  ms: number;
  rssKiB: number;
  requests: number;
  /** Of those, Key Vault requests that came over HTTP/2. */
  http2: number;
}

async function timeProcess(args: string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  const rssFile = join(scratch, `rss-${Math.random().toString(36).slice(2)}`);
  const before = world.vault.requests.length + world.entra.requests.length;
  const vaultBefore = world.vault.requests.length;
  const started = process.hrtime.bigint();
  const stderr: Buffer[] = [];
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), ...args], {
      env: { ...env, BENCH_RSS_FILE: rssFile, NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} --require ${join(root, 'scripts', 'bench-rss.cjs')}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    child.on('error', reject);
    child.on('exit', (c) => resolve(c ?? 1));
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}: ${Buffer.concat(stderr).toString()}`);
  const rssKiB = Number(await readFile(rssFile, 'utf8'));
  return {
    ms,
    rssKiB,
    requests: world.vault.requests.length + world.entra.requests.length - before,
    http2: world.vault.requests.slice(vaultBefore).filter((r) => r.httpVersion === '2.0').length,
  };
}

async function fetchEnv(objectNames: string[]): Promise<NodeJS.ProcessEnv> {
  const job = await world.job(objectNames.map((objectName) => ({ objectName, objectType: 'secret' })));
  return loopbackChildEnv(world.caFile, {
    PATH: process.env.PATH,
    AZURE_CLIENT_ID: job.clientId,
    AZURE_TENANT_ID: job.tenantId,
    AZURE_FEDERATED_TOKEN_FILE: job.tokenFile,
    AZURE_AUTHORITY_HOST: job.authorityHost,
    AKV_INJECTOR_VAULT_URL: job.vaultUrl,
    AKV_INJECTOR_OBJECTS: JSON.stringify(job.objects.map((o) => ({ objectName: o.objectName, objectType: o.objectType }))),
    AKV_INJECTOR_OUTPUT_DIR: job.outputDir,
    ...(process.env.BENCH_CONCURRENCY ? { AKV_INJECTOR_CONCURRENCY: process.env.BENCH_CONCURRENCY } : {}),
  });
}

// The bound reads with a real token, minted once here.
const tokenJob = await world.job([{ objectName: names[0], objectType: 'secret' }]);
const credential = new WorkloadIdentityCredential({
  clientId: tokenJob.clientId,
  tenantId: tokenJob.tenantId,
  tokenFilePath: tokenJob.tokenFile,
  authorityHost: tokenJob.authorityHost,
  disableInstanceDiscovery: true,
  agent: world.agent,
});
const token = await credential.getToken('https://vault.azure.net/.default');
const boundEnv = loopbackChildEnv(world.caFile, {
  PATH: process.env.PATH,
  BOUND_AUTHORITY: world.entra.url,
  BOUND_TENANT: tokenJob.tenantId,
  BOUND_VAULT: world.vault.vaultUrl(VAULT_NAME),
  BOUND_TOKEN: token?.token ?? '',
  BOUND_SECRETS: names.join(','),
});
const boundScript = join(root, 'scripts', 'bench-bound.cjs');
const boundEnv1 = { ...boundEnv, BOUND_SECRETS: names[0] };

const samples: Record<'fetch40' | 'fetch1' | 'bound' | 'bound1', Sample[]> = { fetch40: [], fetch1: [], bound: [], bound1: [] };
// Warm-up: the file cache and the emulators' first handshakes.
await timeProcess([cli, 'fetch'], await fetchEnv(names));
await timeProcess([boundScript], boundEnv);
for (let run = 0; run < RUNS; run++) {
  samples.fetch40.push(await timeProcess([cli, 'fetch'], await fetchEnv(names)));
  samples.fetch1.push(await timeProcess([cli, 'fetch'], await fetchEnv(names.slice(0, 1))));
  samples.bound.push(await timeProcess([boundScript], boundEnv));
  samples.bound1.push(await timeProcess([boundScript], boundEnv1));
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const stat = (s: Sample[]) => ({
  ms: median(s.map((x) => x.ms)),
  rssMiB: Math.max(...s.map((x) => x.rssKiB)) / 1024,
  requests: median(s.map((x) => x.requests)),
  http2: median(s.map((x) => x.http2)),
});
const f40 = stat(samples.fetch40);
const f1 = stat(samples.fetch1);
const bound = stat(samples.bound);
const bound1 = stat(samples.bound1);
const ratio = f40.ms / bound.ms;
// Each run measures 40 and 1 back to back: the median of those paired differences is steadier than
// the difference of two medians when the machine's load drifts.
const pairedExtra = (many: Sample[], one: Sample[]): number => median(many.map((s, i) => s.ms - (one[i] as Sample).ms)) / LATENCY_MS;
const extraRoundTrips = pairedExtra(samples.fetch40, samples.fetch1);
const bareExtra = pairedExtra(samples.bound, samples.bound1);

const row = (name: string, s: ReturnType<typeof stat>): string =>
  `${name.padEnd(38)} ${s.ms.toFixed(0).padStart(6)} ms  ${s.rssMiB.toFixed(1).padStart(6)} MiB  ${String(s.requests).padStart(4)} requests (${s.http2} to Key Vault over HTTP/2)`;
console.log(`bench:fetch — ${RUNS} runs each (medians; peak RSS is the maximum), ${LATENCY_MS} ms added per response, node ${process.version}`);
console.log(`files written under ${scratchRoot}`);
console.log(`the vault offers ${VAULT_HTTP2 ? 'HTTP/2 and HTTP/1.1 (ALPN), as Key Vault does' : 'HTTP/1.1 only (BENCH_VAULT_HTTP2=0)'}`);
console.log(row(`fetch, ${OBJECTS} secrets`, f40));
console.log(row('fetch, 1 secret', f1));
console.log(row('bound: node + preload + 3 round trips', bound));
console.log(row('bound with 1 read (reference)', bound1));
const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
console.log(`ratio fetch(${OBJECTS}) / bound: ${ratio.toFixed(2)} (target ≤ 3.00) ${verdict(ratio <= 3)}`);
console.log(
  `${OBJECTS} objects cost ${extraRoundTrips.toFixed(1)} round trips more than 1 (median of paired runs; target ≤ 4) ${verdict(extraRoundTrips <= 4)}`,
);
console.log(`  for reference, bare Node's own parallel round of ${OBJECTS} reads costs ${bareExtra.toFixed(1)} round trips more than 1 read on this machine`);
console.log(`peak RSS ${f40.rssMiB.toFixed(1)} MiB (target ≤ 80) ${verdict(f40.rssMiB <= 80)}`);

await world.close();
await rm(scratch, { recursive: true, force: true });
