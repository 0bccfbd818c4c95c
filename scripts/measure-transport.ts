// What the fetch's HTTP/2 transport (src/fetch/http2-client.ts) costs per Key Vault read over bare node:http2, both
// against the Key Vault emulator with 20 ms added per response, as the fetch's reads go: each child process takes a
// token, opens the connection, reads one secret, then reads 39 at once, and reports the CPU those 39 took (user +
// system, every thread). The transport's requests are made before the clock starts (the SDK makes them, and
// scripts/measure-sdk-read.ts counts them), with the fetch's bounds (a time limit per request, the run's abort
// signal); the bare reads collect and decode their bodies too. Prints µs of CPU per read, medians of 8 children
// each, run in alternation; then the bytes each allocates per read (V8's sampling heap profiler, every object
// counted whether or not it was collected), medians of 4 children each: a figure the machine's noise does not move.
// A measurement, with no target.
//
//   npx tsx scripts/measure-transport.ts
//   BENCH_NODE=$(npx -y node@24 -p process.execPath) npx tsx scripts/measure-transport.ts   # the image's Node 24
import type { OutgoingHttpHeaders } from 'node:http2';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createHttpHeaders, createPipelineRequest, type PipelineRequest } from '@azure/core-rest-pipeline';
import { createHttp2Client } from '../src/fetch/http2-client.js';
import { childFigure } from './child-figure.js';
import { allocatedBytes } from './heap-sampling.js';
import { median } from './median.js';

const BATCH = 39;
const CHILDREN = 8;
const ALLOCATION_CHILDREN = 4;
/** The fetch's time limit per request (job.ts, requestTimeoutMs); never reached here. */
const REQUEST_TIMEOUT_MS = 10_000;
const LATENCY_MS = 20;
type Kind = 'transport' | 'bare';

/** The bound's token request and bare node:http2 reads (scripts/bench-bound.cjs), from the child's environment. */
const { accessToken, bareHttp2 } = createRequire(import.meta.url)('./bench-bound.cjs') as {
  accessToken: (env: NodeJS.ProcessEnv) => Promise<string>;
  bareHttp2: (origin: string) => { request: (headers: OutgoingHttpHeaders) => Promise<{ body: Buffer }>; close: () => void };
};

/** The headers the SDK's pipeline gives a secret read. */
const readHeaders = (token: string): Record<string, string> => ({
  accept: 'application/json',
  'accept-encoding': 'gzip,deflate',
  'user-agent': 'azsdk-js-keyvault-secrets/4.11.2 core-rest-pipeline/1.24.0 Node/24 OS/(x64-Linux)',
  'x-ms-client-request-id': crypto.randomUUID(),
  authorization: `Bearer ${token}`,
});

/** A GET of `url` returning the body as text, over one TLS connection with HTTP/2, bare. */
function bareGetter(vault: URL, token: string): (url: string) => Promise<string> {
  const bare = bareHttp2(vault.origin);
  return async (url) => {
    const { pathname, search } = new URL(url);
    return (await bare.request({ ':path': `${pathname}${search}`, ...readHeaders(token) })).body.toString();
  };
}

async function child(kind: Kind, figure: 'cpu' | 'allocation'): Promise<void> {
  const token = await accessToken(process.env);
  const vault = process.env.BOUND_VAULT ?? '';
  const urls = Array.from({ length: BATCH + 1 }, (_, i) => `${vault}secrets/bench-secret-${String(i).padStart(2, '0')}/?api-version=7.6`);
  let get: (url: string) => Promise<string>;
  if (kind === 'transport') {
    const client = createHttp2Client({ requestTimeoutMs: REQUEST_TIMEOUT_MS });
    const deadline = new AbortController();
    const requests = new Map<string, PipelineRequest>(
      urls.map((url) => [url, createPipelineRequest({ url, method: 'GET', headers: createHttpHeaders(readHeaders(token)), abortSignal: deadline.signal })]),
    );
    get = async (url) => (await client.sendRequest(requests.get(url) as PipelineRequest)).bodyAsText ?? '';
  } else {
    get = bareGetter(new URL(vault), token);
  }
  await get(urls[0] as string);
  let bodies: string[] = [];
  const batch = async (): Promise<void> => void (bodies = await Promise.all(urls.slice(1).map(get)));
  let value: number;
  if (figure === 'allocation') {
    value = (await allocatedBytes(batch)) / BATCH;
  } else {
    const before = process.cpuUsage();
    await batch();
    const used = process.cpuUsage(before);
    value = (used.user + used.system) / BATCH;
  }
  if (!bodies.every((body) => body.includes('"value"'))) throw new Error(`${kind}: a read did not return a secret`);
  process.send?.({ value, version: process.version });
  process.exit(0);
}

if (process.argv[2] === 'child') {
  await child(process.argv[3] as Kind, process.argv[4] === 'allocation' ? 'allocation' : 'cpu');
} else {
  const { startFetchWorld, VAULT_NAME } = await import('../test/fixtures/fetch-world.js');
  const world = await startFetchWorld({ latencyMs: LATENCY_MS });
  for (let i = 0; i <= BATCH; i++) world.vault.setSecret(`bench-secret-${String(i).padStart(2, '0')}`, `value-${i}-${'x'.repeat(64)}`);
  const job = await world.job([{ objectName: 'bench-secret-00', objectType: 'secret' }]);
  const env = world.childEnv(job, [], {
    BOUND_AUTHORITY: job.authorityHost,
    BOUND_TENANT: job.tenantId,
    BOUND_CLIENT: job.clientId,
    BOUND_TOKEN_FILE: job.tokenFile,
    BOUND_VAULT: world.vault.vaultUrl(VAULT_NAME),
  });
  let version = '';
  /** One figure from each of `children` pairs of processes, the two kinds taking turns to go first. */
  const measure = async (figure: 'cpu' | 'allocation', children: number): Promise<Record<Kind, number[]>> => {
    const figures: Record<Kind, number[]> = { transport: [], bare: [] };
    for (let i = 0; i < children; i++) {
      for (const kind of (i % 2 === 0 ? ['transport', 'bare'] : ['bare', 'transport']) as Kind[]) {
        const answer = await childFigure<{ value: number; version: string }>(fileURLToPath(import.meta.url), ['child', kind, figure], { imageHeap: true, env });
        figures[kind].push(answer.value);
        version = answer.version;
      }
    }
    return figures;
  };
  const cpu = await measure('cpu', CHILDREN);
  const allocation = await measure('allocation', ALLOCATION_CHILDREN);
  await world.close();
  const out = (text: string): void => void process.stdout.write(`${text}\n`);
  const row = (kind: Kind, values: number[], unit: string, scale = 1): string =>
    `  ${kind === 'transport' ? "the fetch's transport" : 'bare node:http2'.padEnd(21)}  ${(median(values) / scale).toFixed(scale === 1 ? 0 : 1).padStart(5)} ${unit}   (${values.map((v) => (v / scale).toFixed(scale === 1 ? 0 : 1)).join(', ')})`;
  out(`node ${version}: ${BATCH} Key Vault reads at once over one HTTP/2 connection, µs of CPU per read (median of ${CHILDREN} processes)`);
  for (const kind of ['transport', 'bare'] as const) out(row(kind, cpu[kind], 'µs'));
  out(`  the transport's own: ${(median(cpu.transport) - median(cpu.bare)).toFixed(0)} µs per read`);
  out(`allocated per read, KB (median of ${ALLOCATION_CHILDREN} processes)`);
  for (const kind of ['transport', 'bare'] as const) out(row(kind, allocation[kind], 'KB', 1000));
  out(`  the transport's own: ${((median(allocation.transport) - median(allocation.bare)) / 1000).toFixed(1)} KB per read`);
}
