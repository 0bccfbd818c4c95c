// What the Key Vault SDK itself costs per secret read, with no network and none of our code around it: the fetch's
// SecretClient (@azure/keyvault-secrets, its pipeline, its challenge policy) over an in-memory HttpClient that
// answers as Key Vault does (a 401 challenge to a request without a token, then the secret's JSON with Key Vault's
// headers), and a credential that hands out a fixed token. Each child process reads one secret (as the fetch's first
// read: the challenge, the token), then 39 at once, as the fetch's other reads, and then warm batches of 39.
// Prints µs of CPU per read (user + system, every thread), medians of five children, and what the 39 cold reads
// come to in round trips of bench:fetch's 20 ms: the part of "40 objects cost N round trips more than 1" that is
// the SDK's own. Then the bytes the 39 reads allocate (V8's sampling heap profiler, collected objects included;
// scripts/heap-sampling.ts), less what the in-memory Key Vault's answers allocate, medians of three more children.
// A measurement, with no target.
//
//   npx tsx scripts/measure-sdk-read.ts
//   BENCH_NODE=$(npx -y node@24 -p process.execPath) npx tsx scripts/measure-sdk-read.ts   # the image's Node 24
import { fileURLToPath } from 'node:url';
import { createHttpHeaders, type HttpClient, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { childFigure } from './child-figure.js';
import { allocatedBytes } from './heap-sampling.js';
import { median } from './median.js';

const VAULT = 'https://bench.vault.azure.net';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const BATCH = 39;
const WARM_BATCHES = 20;
const ROUND_TRIP_MS = 20;
const CHILDREN = 5;
const ALLOCATION_CHILDREN = 3;

/** Key Vault's answer to GET /secrets/{name}/?api-version=…: its headers, and a secret bundle as bench:fetch's. */
function answer(request: PipelineRequest): PipelineResponse {
  if (!request.headers.has('authorization')) {
    return {
      request,
      status: 401,
      headers: createHttpHeaders({
        'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${TENANT}", resource="https://vault.azure.net"`,
        'content-type': 'application/json; charset=utf-8',
        'x-ms-request-id': crypto.randomUUID(),
      }),
      bodyAsText: '{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}',
    };
  }
  const name = new URL(request.url).pathname.split('/')[2] ?? '';
  const bodyAsText = JSON.stringify({
    value: `value-${name}-${'x'.repeat(64)}`,
    id: `${VAULT}/secrets/${name}/6a1f2d9c1b2c4d5e8f900123456789ab`,
    attributes: { enabled: true, created: 1764460800, updated: 1764460800, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
    tags: {},
  });
  return {
    request,
    status: 200,
    headers: createHttpHeaders({
      'cache-control': 'no-cache',
      pragma: 'no-cache',
      'content-type': 'application/json; charset=utf-8',
      expires: '-1',
      'x-ms-keyvault-region': 'westeurope',
      'x-ms-request-id': crypto.randomUUID(),
      'x-ms-keyvault-service-version': '1.9.2500.1',
      'x-ms-keyvault-network-info': 'conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;',
      'x-content-type-options': 'nosniff',
      'strict-transport-security': 'max-age=31536000;includeSubDomains',
      date: new Date().toUTCString(),
      'content-length': String(bodyAsText.length),
    }),
    bodyAsText,
  };
}

async function child(figure: 'cpu' | 'allocation'): Promise<void> {
  const { SecretClient } = await import('@azure/keyvault-secrets');
  const sent: PipelineRequest[] = [];
  const httpClient: HttpClient = {
    sendRequest: async (request) => {
      sent.push(request);
      return answer(request);
    },
  };
  const credential: TokenCredential = {
    getToken: async (): Promise<AccessToken> => ({ token: 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.c2ln', expiresOnTimestamp: Date.now() + 3_600_000 }),
  };
  const client = new SecretClient(VAULT, credential, { httpClient, retryOptions: { maxRetries: 0 } });
  const batch = async (label: string): Promise<number> => {
    const before = process.cpuUsage();
    await Promise.all(Array.from({ length: BATCH }, (_, i) => client.getSecret(`${label}-${i}`)));
    const used = process.cpuUsage(before);
    return (used.user + used.system) / BATCH;
  };
  await client.getSecret('first');
  if (figure === 'allocation') {
    sent.length = 0;
    const reads = await allocatedBytes(() => Promise.all(Array.from({ length: BATCH }, (_, i) => client.getSecret(`cold-${i}`))));
    const requests = sent.splice(0);
    const answers = await allocatedBytes(async () => requests.map(answer));
    process.send?.({ allocated: reads / BATCH, answers: answers / BATCH, version: process.version });
    return;
  }
  const cold = await batch('cold');
  const warm: number[] = [];
  for (let i = 0; i < WARM_BATCHES; i++) warm.push(await batch(`warm${i}`));
  process.send?.({ cold, warm: median(warm), version: process.version });
}

interface Figure {
  cold: number;
  warm: number;
  version: string;
}

interface Allocation {
  /** Bytes per read, the SDK and the in-memory answers together. */
  allocated: number;
  /** Bytes per read of the in-memory answers alone. */
  answers: number;
}

const measure = <T>(figure: 'cpu' | 'allocation'): Promise<T> => childFigure<T>(fileURLToPath(import.meta.url), ['child', figure], { imageHeap: true });

if (process.argv[2] === 'child') {
  await child(process.argv[3] === 'allocation' ? 'allocation' : 'cpu');
} else {
  const figures: Figure[] = [];
  for (let i = 0; i < CHILDREN; i++) figures.push(await measure<Figure>('cpu'));
  const allocations: Allocation[] = [];
  for (let i = 0; i < ALLOCATION_CHILDREN; i++) allocations.push(await measure<Allocation>('allocation'));
  const cold = median(figures.map((f) => f.cold));
  const warm = median(figures.map((f) => f.warm));
  const out = (text: string): void => void process.stdout.write(`${text}\n`);
  out(`node ${figures[0]?.version}: SecretClient.getSecret over an in-memory Key Vault, µs of CPU per read (median of ${CHILDREN} processes)`);
  out(
    `  the ${BATCH} reads after the first, at once (as the fetch's)  ${cold.toFixed(0).padStart(5)} µs   (each process: ${figures.map((f) => f.cold.toFixed(0)).join(', ')})`,
  );
  out(`  warm batches of ${BATCH}                                     ${warm.toFixed(0).padStart(5)} µs`);
  out(
    `  the ${BATCH} cold reads: ${((cold * BATCH) / 1000).toFixed(1)} ms of CPU, ${((cold * BATCH) / 1000 / ROUND_TRIP_MS).toFixed(2)} round trips of ${ROUND_TRIP_MS} ms`,
  );
  const kb = (bytes: number): string => (bytes / 1000).toFixed(1);
  const own = allocations.map((a) => a.allocated - a.answers);
  out(
    `allocated per read by the SDK, the in-memory answers' own left out: ${kb(median(own))} KB (median of ${ALLOCATION_CHILDREN} processes: ${own.map(kb).join(', ')}; the answers ${kb(median(allocations.map((a) => a.answers)))} KB)`,
  );
}
