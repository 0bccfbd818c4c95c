// bench:webhook — the admission webhook (buildApp + the real createMutator, in-memory cluster reads) over HTTPS,
// beside a bare fastify HTTPS server that only parses the same bodies, each in its own process, under autocannon.
//
//   tsx scripts/bench-webhook.ts    run the benchmark
// A third server, `canned`, is the webhook with each template's real answer replayed (same response, log line and
// metrics, no mutator work): the gap between the rows splits the cost into HTTP layer and admission logic.
// The servers run as this very file bundled by esbuild (as dist/ is), with plain node: what RSS and CPU they show
// is the shipped code's, not tsx's. `node <bundle> serve webhook|bare` is that child, driven over IPC.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import { CLOUDS } from '../src/clouds.js';
import { createServerLogger } from '../src/log.js';
import { IMAGE } from '../src/version.js';
import { encodeReview, type AdmissionRequest, type AdmissionReview } from '../webhook/admission.js';
import type { Lookups } from '../webhook/lookups.js';
import { createMetrics } from '../webhook/metrics.js';
import { createMutator, type MutationResult, type Mutator } from '../webhook/mutate.js';
import { buildApp } from '../webhook/server.js';
import type { WebhookSettings } from '../webhook/settings.js';
import { TLS_POLICY } from '../webhook/tls-reloader.js';
import capturedPod from '../test/fixtures/admission/deployment-pod.json' with { type: 'json' };

type ServerKind = 'webhook' | 'canned' | 'bare';
const KINDS: readonly ServerKind[] = ['webhook', 'canned', 'bare'];
type ToChild = { type: 'start'; certPem: string; keyPem: string } | { type: 'mark' } | { type: 'stop' };
type ToParent = { type: 'listening'; port: number } | { type: 'marked' } | { type: 'stopped'; maxRssKiB: number; cpuMs: number };

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const WARMUP_S = Number(process.env.BENCH_WARMUP ?? 3);
const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
/** Measured rounds per server, interleaved across servers so drift on a shared machine hits all alike. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const NAMESPACE = 'shop';
const CLIENT_ID = '8f1c2b7a-3d4e-4f5a-9b6c-7d8e9f0a1b2c';
const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';

// ---------------------------------------------------------------------------------------------------------------
// The servers (child processes).

const SETTINGS: WebhookSettings = { image: IMAGE, cloud: CLOUDS.AzurePublicCloud, namespace: 'akv-injector' };

/** Lookups over maps, as the watch-backed cache answers once synced. */
function memoryLookups(): Lookups {
  const namespaces = new Map<string, V1Namespace>([[NAMESPACE, { metadata: { name: NAMESPACE, labels: { 'kubernetes.io/metadata.name': NAMESPACE } } }]]);
  const serviceAccounts = new Map<string, V1ServiceAccount>(
    ['checkout', 'payments', 'orders-worker', 'storefront'].map((name) => [
      `${NAMESPACE}/${name}`,
      {
        metadata: {
          name,
          namespace: NAMESPACE,
          annotations: { 'azure.workload.identity/client-id': CLIENT_ID, 'azure.workload.identity/tenant-id': TENANT_ID },
        },
      },
    ]),
  );
  return {
    namespace: async (name) => namespaces.get(name),
    serviceAccount: async (namespace, name) => serviceAccounts.get(`${namespace}/${name}`),
    secretProviderClass: async () => undefined,
  };
}

async function serve(kind: ServerKind, certPem: string, keyPem: string): Promise<{ port: number; close: () => Promise<void> }> {
  const tls = { ...TLS_POLICY, cert: certPem, key: keyPem };
  if (kind !== 'bare') {
    // As main.ts wires it: JSON logs on stdout (here /dev/null), metrics, the real mutator.
    const real = createMutator(SETTINGS, memoryLookups());
    const app = buildApp({ mutator: kind === 'webhook' ? real : replaying(real), logger: createServerLogger('webhook'), metrics: createMetrics(), https: tls });
    await app.listen({ host: '127.0.0.1', port: 0 });
    return { port: portOf(app.server.address()), close: () => app.close() };
  }
  // A fixed answer of the real size: one injection's AdmissionReview (with its JSON Patch), computed once,
  // so both servers parse the same bodies and send the same amount back.
  const first = (JSON.parse(review(TEMPLATES[0] as Template)) as AdmissionReview).request as AdmissionRequest;
  const fixedAnswer: AdmissionReview = encodeReview((await createMutator(SETTINGS, memoryLookups())(first)).response);
  const { fastify } = await import('fastify');
  const app = fastify({ https: tls, bodyLimit: 4 * 1024 * 1024 });
  app.post('/mutate', async () => fixedAnswer);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { port: portOf(app.server.address()), close: () => app.close() };
}

/** The first real answer per pod template (by its app label), replayed with each request's uid. */
function replaying(real: Mutator): Mutator {
  const answers = new Map<string, MutationResult>();
  return async (request) => {
    const app = (request.object as { metadata?: { labels?: Record<string, string> } } | undefined)?.metadata?.labels?.app ?? '';
    let answer = answers.get(app);
    if (answer === undefined) {
      answer = await real(request);
      answers.set(app, answer);
    }
    return { ...answer, response: { ...answer.response, uid: request.uid } };
  };
}

function portOf(address: ReturnType<https.Server['address']>): number {
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  return address.port;
}

async function childMain(kind: ServerKind): Promise<void> {
  const send = (message: ToParent): void => void process.send?.(message);
  let close: (() => Promise<void>) | undefined;
  let mark = process.cpuUsage();
  process.on('message', (message: ToChild) => {
    if (message.type === 'start') {
      void serve(kind, message.certPem, message.keyPem).then((server) => {
        close = server.close;
        send({ type: 'listening', port: server.port });
      });
    } else if (message.type === 'mark') {
      mark = process.cpuUsage();
      send({ type: 'marked' });
    } else {
      const cpu = process.cpuUsage(mark);
      void (close?.() ?? Promise.resolve()).then(() => {
        send({ type: 'stopped', maxRssKiB: process.resourceUsage().maxRSS, cpuMs: (cpu.user + cpu.system) / 1000 });
        process.disconnect();
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The load (parent process): distinct AdmissionReviews of Deployment-made pods.

const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789'; // the alphabet of Kubernetes' generated name suffixes
function suffix(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += ALPHANUMS[byte % ALPHANUMS.length];
  return out;
}

interface Template {
  app: string;
  serviceAccount: string;
  annotations: Record<string, string>;
  containers: Array<Record<string, unknown>>;
  initContainers?: Array<Record<string, unknown>>;
  volumes?: Array<Record<string, unknown>>;
}

const probes = (port: number): Record<string, unknown> => ({
  livenessProbe: {
    httpGet: { path: '/healthz', port, scheme: 'HTTP' },
    initialDelaySeconds: 10,
    periodSeconds: 10,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold: 3,
  },
  readinessProbe: { httpGet: { path: '/ready', port, scheme: 'HTTP' }, periodSeconds: 5, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 },
});
const resources = (cpu: string, memory: string): Record<string, unknown> => ({ resources: { requests: { cpu, memory }, limits: { memory } } });
// The service-account volume the API server adds to every pod, as it reads in a captured pod (test/fixtures/admission).
const apiAccessVolume = capturedPod.request.object.spec.volumes.find((volume) => volume.name.startsWith('kube-api-access-'));
const containerDefaults = { terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' };
const env = (pairs: Record<string, string>): Array<Record<string, unknown>> => Object.entries(pairs).map(([name, value]) => ({ name, value }));

const TEMPLATES: Template[] = [
  {
    app: 'checkout',
    serviceAccount: 'checkout',
    annotations: {
      'akv-injector.io/vault': 'kv-shop',
      'akv-injector.io/objects':
        '- objectName: db-password\n  objectType: secret\n  filePermission: "0440"\n- objectName: web-tls\n  objectType: secret\n  objectAlias: tls/tls.pem\n',
      'kubectl.kubernetes.io/restartedAt': '2026-11-28T10:00:00Z',
    },
    containers: [
      {
        name: 'checkout',
        image: 'contoso.azurecr.io/shop/checkout:1.42.0',
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
        env: env({
          ASPNETCORE_URLS: 'http://+:8080',
          DB_HOST: 'checkout-db.shop.svc',
          DB_USER: 'checkout',
          LOG_LEVEL: 'info',
          FEATURE_FLAGS: 'new-cart,fast-pay',
        }),
        ...resources('250m', '512Mi'),
        ...probes(8080),
      },
    ],
  },
  {
    app: 'payments',
    serviceAccount: 'payments',
    annotations: {
      'akv-injector.io/vault': 'https://kv-payments.vault.azure.net/',
      'akv-injector.io/objects': JSON.stringify([
        { objectName: 'stripe-api-key', objectType: 'secret' },
        { objectName: 'payments-signing', objectType: 'key' },
        { objectName: 'payments-mtls', objectType: 'cert', objectAlias: 'mtls/cert.pem' },
      ]),
      'akv-injector.io/containers': 'payments',
      'sidecar.istio.io/status':
        '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"revision":"default"}',
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '15020',
    },
    initContainers: [
      {
        name: 'istio-init',
        image: 'docker.io/istio/proxyv2:1.24.0',
        args: ['istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'],
        securityContext: { capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] }, runAsUser: 0, runAsNonRoot: false },
        ...resources('100m', '128Mi'),
      },
    ],
    containers: [
      {
        name: 'payments',
        image: 'contoso.azurecr.io/shop/payments:3.7.1',
        ports: [{ name: 'grpc', containerPort: 9090, protocol: 'TCP' }],
        env: env({
          GRPC_PORT: '9090',
          STRIPE_ENDPOINT: 'https://api.stripe.com',
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4317',
          REGION: 'westeurope',
        }),
        ...resources('500m', '1Gi'),
        ...probes(9091),
      },
      {
        name: 'istio-proxy',
        image: 'docker.io/istio/proxyv2:1.24.0',
        args: ['proxy', 'sidecar', '--domain', '$(POD_NAMESPACE).svc.cluster.local', '--proxyLogLevel=warning', '--log_output_level=default:info'],
        ports: [{ name: 'http-envoy-prom', containerPort: 15090, protocol: 'TCP' }],
        env: [
          { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
          { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
          { name: 'ISTIO_META_WORKLOAD_NAME', value: 'payments' },
        ],
        volumeMounts: [
          { name: 'istio-envoy', mountPath: '/etc/istio/proxy' },
          { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
        ],
        ...resources('100m', '128Mi'),
      },
    ],
    volumes: [
      { name: 'istio-envoy', emptyDir: { medium: 'Memory' } },
      { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } },
    ],
  },
  {
    app: 'orders-worker',
    serviceAccount: 'orders-worker',
    annotations: {
      'akv-injector.io/vault': 'kv-orders',
      'akv-injector.io/objects':
        'array:\n  - |\n    objectName: servicebus-connection\n    objectType: secret\n  - |\n    objectName: orders-db\n    objectType: secret\n    objectVersionHistory: 2\n',
      'akv-injector.io/mount-path': '/var/run/secrets/orders',
    },
    initContainers: [
      { name: 'migrate', image: 'contoso.azurecr.io/shop/orders-migrate:2.0.4', args: ['--wait-for-db', '--apply'], ...resources('100m', '256Mi') },
    ],
    containers: [
      {
        name: 'worker',
        image: 'contoso.azurecr.io/shop/orders-worker:2.0.4',
        env: env(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`WORKER_SETTING_${i}`, `value-${i}-${'x'.repeat(20)}`]))),
        volumeMounts: [{ name: 'config', mountPath: '/etc/orders', readOnly: true }],
        ...resources('1', '2Gi'),
      },
    ],
    volumes: [{ name: 'config', configMap: { name: 'orders-worker-config', defaultMode: 420 } }],
  },
  {
    app: 'storefront',
    serviceAccount: 'storefront',
    annotations: {
      'akv-injector.io/vault': 'kv-shop',
      'akv-injector.io/objects':
        '- objectName: storefront-tls\n  objectType: secret\n  objectFormat: pfx\n  objectEncoding: base64\n  objectAlias: tls.pfx\n- objectName: session-key\n  objectType: secret\n',
      'akv-injector.io/containers': 'nginx,app',
      'akv-injector.io/token-expiration': '7200',
    },
    containers: [
      {
        name: 'nginx',
        image: 'docker.io/library/nginx:1.27-alpine',
        ports: [{ name: 'https', containerPort: 8443, protocol: 'TCP' }],
        volumeMounts: [
          { name: 'nginx-conf', mountPath: '/etc/nginx/conf.d', readOnly: true },
          { name: 'cache', mountPath: '/var/cache/nginx' },
        ],
        ...resources('100m', '64Mi'),
      },
      {
        name: 'app',
        image: 'contoso.azurecr.io/shop/storefront:5.2.0',
        ports: [{ name: 'http', containerPort: 3000, protocol: 'TCP' }],
        env: env({ NODE_ENV: 'production', PORT: '3000', API_BASE: 'http://checkout.shop.svc:8080' }),
        ...resources('200m', '256Mi'),
        ...probes(3000),
      },
    ],
    volumes: [
      { name: 'nginx-conf', configMap: { name: 'storefront-nginx', defaultMode: 420 } },
      { name: 'cache', emptyDir: {} },
    ],
  },
];

/** A fresh AdmissionReview for a pod the ReplicaSet controller creates from `template`. */
function review(template: Template): string {
  const hash = suffix(10);
  const apiAccess = `kube-api-access-${suffix(5)}`;
  const serviceAccountMount = { name: apiAccess, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' };
  const withMount = (c: Record<string, unknown>): Record<string, unknown> => ({
    ...containerDefaults,
    ...c,
    volumeMounts: [...((c.volumeMounts as unknown[]) ?? []), serviceAccountMount],
  });
  const pod = {
    metadata: {
      generateName: `${template.app}-${hash}-`,
      namespace: NAMESPACE,
      creationTimestamp: null,
      labels: { app: template.app, 'pod-template-hash': hash, 'app.kubernetes.io/part-of': 'shop' },
      annotations: { 'akv-injector.io/inject': 'true', ...template.annotations },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${template.app}-${hash}`, uid: randomUUID(), controller: true, blockOwnerDeletion: true },
      ],
      managedFields: [
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          apiVersion: 'v1',
          time: new Date().toISOString(),
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': { 'f:generateName': {}, 'f:labels': { '.': {}, 'f:app': {}, 'f:pod-template-hash': {} }, 'f:ownerReferences': { '.': {} } },
          },
        },
      ],
    },
    spec: {
      volumes: [...(template.volumes ?? []), { ...apiAccessVolume, name: apiAccess }],
      ...(template.initContainers ? { initContainers: template.initContainers.map(withMount) } : {}),
      containers: template.containers.map(withMount),
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: template.serviceAccount,
      serviceAccount: template.serviceAccount,
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {},
  };
  const gvk = { group: '', version: 'v1', kind: 'Pod' };
  const gvr = { group: '', version: 'v1', resource: 'pods' };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: gvk,
      resource: gvr,
      requestKind: gvk,
      requestResource: gvr,
      namespace: NAMESPACE,
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        uid: randomUUID(),
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  });
}

let nextTemplate = 0;
function nextReview(): string {
  const template = TEMPLATES[nextTemplate++ % TEMPLATES.length] as Template;
  return review(template);
}

interface Server {
  port: number;
  /** Start counting the server's CPU time. */
  mark: () => Promise<void>;
  stop: () => Promise<{ maxRssKiB: number; cpuMs: number }>;
}

/** This file as one ESM bundle for plain node, built the way scripts/build.js builds dist/. */
async function bundleSelf(outdir: string): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = path.join(outdir, 'bench-webhook.mjs');
  await build({
    entryPoints: [fileURLToPath(import.meta.url)],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Readable names in profiles (BENCH_PROFILE); minified like dist/ otherwise.
    minify: !process.env.BENCH_PROFILE,
    external: ['autocannon', 'esbuild'],
    logLevel: 'warning',
    banner: { js: "import { createRequire as __benchCreateRequire } from 'node:module'; const require = __benchCreateRequire(import.meta.url);" },
  });
  return outfile;
}

async function startServer(bundle: string, kind: ServerKind, certPem: string, keyPem: string): Promise<Server> {
  // stdout to /dev/null: the webhook logs a JSON line per admission, as it would to the container runtime.
  // BENCH_PROFILE=DIR writes a CPU profile of each server into DIR.
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const child: ChildProcess = fork(bundle, ['serve', kind], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: profile });
  const next = (type: ToParent['type']): Promise<ToParent> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: ToParent): void => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        resolve(message);
      };
      child.on('message', onMessage);
      child.once('exit', (code) => reject(new Error(`the ${kind} server exited (${code}) before "${type}"`)));
    });
  const listening = next('listening');
  child.send({ type: 'start', certPem, keyPem } satisfies ToChild);
  const { port } = (await listening) as Extract<ToParent, { type: 'listening' }>;
  return {
    port,
    mark: async () => {
      const marked = next('marked');
      child.send({ type: 'mark' } satisfies ToChild);
      await marked;
    },
    stop: async () => {
      const stopped = next('stopped');
      child.send({ type: 'stop' } satisfies ToChild);
      const { maxRssKiB, cpuMs } = (await stopped) as Extract<ToParent, { type: 'stopped' }>;
      return { maxRssKiB, cpuMs };
    },
  };
}

/** One request by hand: the webhook must really inject these pods, or the benchmark measures nothing. */
async function checkInjects(port: number, caPem: string): Promise<void> {
  for (const template of TEMPLATES) {
    const body = review(template);
    const answer = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca: caPem, servername: 'localhost', headers: { 'content-type': 'application/json' } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    const response = (JSON.parse(answer) as AdmissionReview).response;
    if (response?.allowed !== true || response.patch === undefined) {
      throw new Error(`template ${template.app} was not injected: ${answer.slice(0, 500)}`);
    }
  }
}

interface Measured {
  rps: number;
  p50: number;
  p99: number;
  rssMiB: number;
  /** Server CPU time (user + system) per request in the measured run. */
  cpuMsPerRequest: number;
  errors: number;
  non2xx: number;
}

async function load(port: number, seconds: number): Promise<{ rps: number; total: number; p50: number; p99: number; errors: number; non2xx: number }> {
  const { default: autocannon } = await import('autocannon');
  const result = await autocannon({
    url: `https://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: seconds,
    servername: 'localhost',
    requests: [
      {
        method: 'POST',
        path: '/mutate',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: nextReview() }),
      },
    ],
  });
  return {
    rps: result.requests.average,
    total: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** Start every server, warm each up, then measure them in interleaved rounds; medians per server. */
async function measureAll(bundle: string, certPem: string, keyPem: string, caPem: string): Promise<Record<ServerKind, Measured>> {
  const servers = new Map<ServerKind, Server>();
  for (const kind of KINDS) {
    const server = await startServer(bundle, kind, certPem, keyPem);
    if (kind !== 'bare') await checkInjects(server.port, caPem);
    await load(server.port, WARMUP_S);
    await server.mark();
    servers.set(kind, server);
  }
  const runs = new Map<ServerKind, Array<Awaited<ReturnType<typeof load>>>>(KINDS.map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round: no server always runs first or last.
    const order = KINDS.map((_, i) => KINDS[(i + round) % KINDS.length] as ServerKind);
    for (const kind of order) runs.get(kind)?.push(await load((servers.get(kind) as Server).port, DURATION_S));
  }
  const out = {} as Record<ServerKind, Measured>;
  for (const kind of KINDS) {
    const { maxRssKiB, cpuMs } = await (servers.get(kind) as Server).stop();
    const list = runs.get(kind) ?? [];
    const total = list.reduce((n, r) => n + r.total, 0);
    out[kind] = {
      rps: median(list.map((r) => r.rps)),
      p50: median(list.map((r) => r.p50)),
      p99: median(list.map((r) => r.p99)),
      errors: list.reduce((n, r) => n + r.errors, 0),
      non2xx: list.reduce((n, r) => n + r.non2xx, 0),
      rssMiB: maxRssKiB / 1024,
      cpuMsPerRequest: cpuMs / Math.max(1, total),
    };
  }
  return out;
}

async function parentMain(): Promise<void> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'bench-webhook-'));
  const bundle = await bundleSelf(scratch);
  // Parent-only modules are imported here, so the servers' bundle never loads them.
  const { generateCa, generateServingCert } = await import('../src/certs.js');
  const ca = await generateCa({ commonName: 'bench:webhook CA', validityDays: 1 });
  const serving = await generateServingCert(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 1 });
  const { webhook, canned, bare } = await measureAll(bundle, serving.certPem, serving.keyPem, ca.certPem);
  await rm(scratch, { recursive: true, force: true });
  const bodyKiB = TEMPLATES.reduce((sum, t) => sum + Buffer.byteLength(review(t)), 0) / TEMPLATES.length / 1024;

  const row = (name: string, m: Measured): string =>
    `${name.padEnd(15)} ${m.rps.toFixed(0).padStart(7)} req/s  p50 ${m.p50.toFixed(2).padStart(6)} ms  p99 ${m.p99.toFixed(2).padStart(6)} ms  ` +
    `server CPU ${(m.cpuMsPerRequest * 1000).toFixed(0).padStart(4)} µs/req  peak RSS ${m.rssMiB.toFixed(1).padStart(6)} MiB  errors ${m.errors}  non-2xx ${m.non2xx}`;
  const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
  const ratio = webhook.rps / bare.rps;
  console.log(
    `bench:webhook — HTTPS on 127.0.0.1, ${CONNECTIONS} connections, ${WARMUP_S} s warm-up, then ${ROUNDS} interleaved rounds of ${DURATION_S} s per server (medians), node ${process.version}`,
  );
  console.log(`bodies: distinct AdmissionReviews of Deployment pods, ${TEMPLATES.length} templates, ${bodyKiB.toFixed(1)} KiB on average`);
  console.log(row('webhook', webhook));
  console.log(row('webhook canned', canned));
  console.log(row('bare fastify', bare));
  const cpuUs = (m: Measured): number => m.cpuMsPerRequest * 1000;
  console.log(
    `server CPU per request: HTTP layer (canned − bare) ${(cpuUs(canned) - cpuUs(bare)).toFixed(0)} µs, ` +
      `admission logic (webhook − canned) ${(cpuUs(webhook) - cpuUs(canned)).toFixed(0)} µs`,
  );
  console.log(`throughput webhook / bare: ${ratio.toFixed(2)} (target ≥ 0.70) ${verdict(ratio >= 0.7)}`);
  console.log(`webhook p99 ${webhook.p99.toFixed(2)} ms (target ≤ 10) ${verdict(webhook.p99 <= 10)}`);
  console.log(`webhook peak RSS ${webhook.rssMiB.toFixed(1)} MiB (target ≤ 150) ${verdict(webhook.rssMiB <= 150)}`);
  if ([webhook, canned, bare].some((m) => m.errors + m.non2xx > 0)) {
    console.log('some requests failed: the figures above are not valid');
    process.exitCode = 1;
  }
}

const [role, kind] = process.argv.slice(2);
const serverKind = KINDS.find((k) => k === kind);
if (role === 'serve' && serverKind !== undefined) await childMain(serverKind);
else await parentMain();
