// bench:webhook's helper processes, bundled by scripts/bench-webhook.ts and run with plain node (BENCH_NODE):
//   bare   the baseline: fastify over HTTPS, no logger, parsing each body and answering a minimal AdmissionReview
//          (or, as a reference, one carrying a patch of `patchBytes` characters: an answer as large as the webhook's)
//   floor  the bare server doing the webhook's work and no more: each body through the webhook's mutator (its informer
//          caches fed by the fake API server, its template cache): a replica of a template it has answered told by its
//          bytes, any other body parsed and decoded; no body budget, no log line, no metrics, no hooks of its own
//   load   autocannon with every request built before the clock starts, each connection its own slice of bodies,
//          so the client spends no CPU building requests; it reports its own CPU time per run
import type { Server } from 'node:https';
import type { Options as AutocannonOptions } from 'autocannon';
import type { RouteHandlerMethod } from 'fastify';
import { waitFor } from '../test/fixtures/wait-for.js';
import { reviews } from './bench-webhook-bodies.js';

export type ToChild =
  | { type: 'bare'; certPem: string; keyPem: string; patchBytes: number }
  | { type: 'floor'; certPem: string; keyPem: string; kubeconfig: string; args: string[] }
  | { type: 'bodies'; connections: number; perConnection: number }
  | { type: 'load'; port: number; seconds: number; connections: number };
export type ToParent =
  | { type: 'listening'; port: number }
  | { type: 'ready'; bodies: number; meanBytes: number }
  | { type: 'loaded'; result: LoadResult }
  | { type: 'failed'; message: string };

export interface LoadResult {
  total: number;
  seconds: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** CPU time (user + system) of this load process during the run, µs. */
  clientCpuUs: number;
}

interface AdmissionBody {
  request?: { uid?: unknown };
}

const send = (message: ToParent): void => void process.send?.(message);

/** The bare fastify HTTPS server with `mutate` as its one route, listening; the parent is told its port. */
async function serveBare(certPem: string, keyPem: string, mutate: RouteHandlerMethod, bodyAs: 'json' | 'bytes' = 'json'): Promise<void> {
  const { fastify } = await import('fastify');
  const { TLS_POLICY } = await import('../webhook/tls-reloader.js');
  const app = fastify({ https: { ...TLS_POLICY, cert: certPem, key: keyPem }, bodyLimit: 4 * 1024 * 1024 });
  if (bodyAs === 'bytes') {
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  }
  app.post('/mutate', mutate);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = (app.server as Server).address();
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  send({ type: 'listening', port: address.port });
}

async function bare(certPem: string, keyPem: string, patchBytes: number): Promise<void> {
  const patch = patchBytes > 0 ? { patchType: 'JSONPatch', patch: 'A'.repeat(patchBytes) } : {};
  await serveBare(certPem, keyPem, async (req) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: (req.body as AdmissionBody).request?.uid, allowed: true, ...patch },
  }));
}

async function floor(certPem: string, keyPem: string, kubeconfig: string, args: string[]): Promise<void> {
  const [
    { KubeConfig },
    { parseWebhookFlags },
    { createClusterCache },
    { readServerVersion },
    { createMutator },
    { decodeReview, serializeReview },
    { createLogger },
  ] = await Promise.all([
    import('@kubernetes/client-node'),
    import('../webhook/main.js'),
    import('../webhook/cluster-cache.js'),
    import('../webhook/server-version.js'),
    import('../webhook/mutate.js'),
    import('../webhook/admission.js'),
    import('../src/log.js'),
  ]);
  const parsed = parseWebhookFlags(args, { env: {}, readNamespaceFile: () => undefined });
  if (!parsed.ok) throw new Error(`floor: the webhook's flags do not parse: ${parsed.problems.join('; ')}`);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(kubeconfig);
  const logger = createLogger('floor', undefined, 'warn');
  const cache = createClusterCache(kubeConfig, { logger });
  cache.start();
  const version = readServerVersion(kubeConfig, { logger });
  await waitFor('the floor server caches synced with the fake API server', () => cache.synced() && version.current() !== undefined, 30_000, 20);
  const mutator = createMutator({ ...parsed.config.settings, serverVersion: version.current }, cache);
  // The webhook's way with a body: a replica of a template answered before is told by its bytes (replicas.ts).
  await serveBare(
    certPem,
    keyPem,
    async (req, reply) => {
      const body = req.body as Buffer;
      reply.header('content-type', 'application/json; charset=utf-8');
      const replica = await mutator.replica?.(body);
      if (replica !== undefined) return reply.send(replica.review);
      const decoded = decodeReview(JSON.parse(body.toString('utf8')));
      if (!decoded.ok) return reply.code(400).send({ message: decoded.message });
      const result = await mutator(decoded.request, body);
      return reply.send(serializeReview({ ...result.response, uid: decoded.request.uid }));
    },
    'bytes',
  );
}

let slices: Buffer[][] = [];

function makeBodies(connections: number, perConnection: number): void {
  slices = Array.from({ length: connections }, (_, c) => reviews(perConnection, c).map((body) => Buffer.from(body)));
  const all = slices.flat();
  send({ type: 'ready', bodies: all.length, meanBytes: all.reduce((n, b) => n + b.length, 0) / all.length });
}

async function load(port: number, seconds: number, connections: number): Promise<void> {
  const { default: autocannon } = await import('autocannon');
  let nextSlice = 0;
  const requests = (slice: Buffer[]): Array<{ method: 'POST'; path: string; headers: Record<string, string>; body: Buffer }> =>
    slice.map((body) => ({ method: 'POST', path: '/mutate', headers: { 'content-type': 'application/json' }, body }));
  const cpu = process.cpuUsage();
  const result = await autocannon({
    url: `https://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    servername: 'localhost',
    // A placeholder: each connection is handed its own slice below (autocannon copies `requests` into every connection).
    requests: requests([slices[0]?.[0] ?? Buffer.from('{}')]),
    // The client API's setRequests: every request of the slice is built once, then sent as it is, in turn.
    setupClient: (client: { setRequests(requests: unknown[]): void }) => client.setRequests(requests(slices[nextSlice++ % slices.length] ?? [])),
  } as AutocannonOptions);
  const used = process.cpuUsage(cpu);
  send({
    type: 'loaded',
    result: {
      total: result.requests.total,
      seconds: result.duration,
      p50: result.latency.p50,
      p99: result.latency.p99,
      errors: result.errors + result.timeouts,
      non2xx: result.non2xx,
      clientCpuUs: used.user + used.system,
    },
  });
}

process.on('message', (message: ToChild) => {
  const run = async (): Promise<void> => {
    if (message.type === 'bare') await bare(message.certPem, message.keyPem, message.patchBytes);
    else if (message.type === 'floor') await floor(message.certPem, message.keyPem, message.kubeconfig, message.args);
    else if (message.type === 'bodies') makeBodies(message.connections, message.perConnection);
    else await load(message.port, message.seconds, message.connections);
  };
  run().catch((error: unknown) => send({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }));
});
process.on('disconnect', () => process.exit(0));
