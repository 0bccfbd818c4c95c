// The webhook role: read the flags, start the caches, the HTTPS admission listener and the health port; stop cleanly.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import type { KubeConfig } from '@kubernetes/client-node';
import { tenantIdProblem } from '../src/azure-ids.js';
import { cloudFromFlag } from '../src/clouds.js';
import { isDnsLabel } from '../src/dns-names.js';
import { createServerLogger, type Logger } from '../src/log.js';
import { writeTerminationLog } from '../src/termination-log.js';
import { IMAGE as DEFAULT_IMAGE } from '../src/version.js';
import { createBodyBudget } from './body-budget.js';
import { createClusterCache, type ClusterCache } from './cluster-cache.js';
import { createDevCluster } from './dev-cluster.js';
import { buildHealthApp } from './health.js';
import { createMetrics } from './metrics.js';
import { contextNamespace, findKubeAccess, probeApiServer, type KubeAccess } from './kube-access.js';
import { createMutator } from './mutate.js';
import { buildApp, DEFAULT_BODY_BUDGET } from './server.js';
import { readServerVersion } from './server-version.js';
import type { WebhookSettings } from './settings.js';
import { createTlsReloader, TLS_POLICY, type ServingCertificate, type TlsReloader } from './tls-reloader.js';

export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const LISTEN_HOST = '0.0.0.0';
// Within the kubelet's default 30 s grace period: in-flight admissions get this long to finish.
const DRAIN_DEADLINE_MS = 20_000;
const DEV_HOSTS = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };
// How long --dev waits for the API server to answer before it goes on without one.
const DEV_PROBE_MS = 2000;

export interface WebhookConfig {
  port: number;
  healthPort: number;
  tls: { kind: 'files'; certFile: string; keyFile: string } | { kind: 'dev' };
  settings: WebhookSettings;
}

export type ParsedFlags = { ok: true; config: WebhookConfig } | { ok: false; problems: string[] };

export interface FlagSources {
  env: NodeJS.ProcessEnv;
  /** The in-cluster namespace file's content, or undefined when there is none. */
  readNamespaceFile: () => string | undefined;
  /** With --dev: the kubeconfig context's namespace, the default after the file's (as kubectl's). */
  kubeContextNamespace?: () => string | undefined;
}

const OPTIONS = {
  port: { type: 'string' },
  'tls-cert-file': { type: 'string' },
  'tls-key-file': { type: 'string' },
  image: { type: 'string' },
  'tenant-id': { type: 'string' },
  cloud: { type: 'string' },
  'health-port': { type: 'string' },
  namespace: { type: 'string' },
  'windows-image': { type: 'string' },
  dev: { type: 'boolean' },
} as const;

type FlagName = keyof typeof OPTIONS;

const IMAGE = /^[^\s]+$/;

/** The webhook's configuration from its flags and environment, or every problem with them. */
export function parseWebhookFlags(args: string[], sources: FlagSources): ParsedFlags {
  const problems: string[] = [];
  const { values, malformed } = readFlags(args, problems);
  const text = (name: FlagName): string | undefined => {
    const value = values.get(name);
    return typeof value === 'string' ? value.trim() : undefined;
  };

  const port = parsePort('--port', text('port'), 8443, problems);
  const healthPort = parsePort('--health-port', text('health-port'), 8080, problems);
  if (port !== 0 && port === healthPort) problems.push(`--port and --health-port must differ, both are ${port}`);

  const dev = values.get('dev') === true;
  // The manifests set AKV_INJECTOR_IMAGE, which kustomize's images transformer keeps equal to the container's image;
  // --dev runs without a cluster's settings: this version's image, as render injects it.
  const fromEnv = sources.env.AKV_INJECTOR_IMAGE?.trim() || undefined;
  const imageOrigin = text('image') !== undefined ? '--image' : 'AKV_INJECTOR_IMAGE';
  const image = text('image') ?? fromEnv ?? (dev && !malformed.has('image') ? DEFAULT_IMAGE : undefined);
  if (image === undefined || image === '') {
    if (!malformed.has('image')) problems.push("--image is required (or AKV_INJECTOR_IMAGE): the image of the injected init container (this program's image)");
  } else if (!IMAGE.test(image)) problems.push(`${imageOrigin} ${JSON.stringify(image)} is not an image reference`);
  const windowsImage = text('windows-image');
  if (windowsImage !== undefined && !IMAGE.test(windowsImage)) problems.push(`--windows-image ${JSON.stringify(windowsImage)} is not an image reference`);

  const tenantId = text('tenant-id');
  const tenantProblem = tenantId === undefined ? undefined : tenantIdProblem(tenantId);
  if (tenantProblem !== undefined) problems.push(`--tenant-id ${JSON.stringify(tenantId)} ${tenantProblem}`);

  const { cloud, problem: cloudProblem } = cloudFromFlag(text('cloud'));
  if (cloudProblem !== undefined) problems.push(cloudProblem);

  const namespace = ownNamespace(text('namespace'), sources, dev, problems);

  const certFile = text('tls-cert-file');
  const keyFile = text('tls-key-file');
  let tls: WebhookConfig['tls'] | undefined;
  if (dev) {
    if (certFile !== undefined || keyFile !== undefined) problems.push('--dev generates its own certificate: leave out --tls-cert-file and --tls-key-file');
    tls = { kind: 'dev' };
  } else {
    if (!certFile && !malformed.has('tls-cert-file')) problems.push('--tls-cert-file is required (the serving certificate, PEM), unless --dev');
    if (!keyFile && !malformed.has('tls-key-file')) problems.push('--tls-key-file is required (its private key, PEM), unless --dev');
    if (certFile && keyFile) tls = { kind: 'files', certFile, keyFile };
  }

  if (problems.length > 0 || image === undefined || cloud === undefined || namespace === undefined || tls === undefined) {
    return { ok: false, problems };
  }
  const settings: WebhookSettings = {
    image,
    cloud,
    namespace,
    ...(windowsImage ? { windowsImage } : {}),
    ...(tenantId ? { tenantId } : {}),
  };
  return { ok: true, config: { port, healthPort, tls, settings } };
}

/** The flags' values; unknown flags, missing values and stray arguments go to `problems`, all of them. */
function readFlags(args: string[], problems: string[]): { values: Map<FlagName, string | boolean>; malformed: Set<FlagName> } {
  const values = new Map<FlagName, string | boolean>();
  const malformed = new Set<FlagName>();
  const { tokens } = parseArgs({ args, options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === 'positional') {
      problems.push(`unexpected argument ${JSON.stringify(token.value)}`);
      continue;
    }
    if (token.kind !== 'option') continue;
    if (!Object.hasOwn(OPTIONS, token.name)) {
      problems.push(`unknown flag ${token.rawName}`);
      continue;
    }
    const name = token.name as FlagName;
    if (OPTIONS[name].type === 'boolean') {
      if (token.value !== undefined) {
        problems.push(`${token.rawName} takes no value`);
        malformed.add(name);
      } else values.set(name, true);
    } else if (token.value === undefined) {
      problems.push(`${token.rawName} needs a value`);
      malformed.add(name);
    } else {
      values.set(name, token.value);
    }
  }
  return { values, malformed };
}

function parsePort(flag: string, value: string | undefined, fallback: number, problems: string[]): number {
  if (value === undefined) return fallback;
  const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (Number.isInteger(port) && port >= 0 && port <= 65535) return port;
  problems.push(`${flag} ${JSON.stringify(value)} is not a port (0–65535)`);
  return fallback;
}

function ownNamespace(flag: string | undefined, sources: FlagSources, dev: boolean, problems: string[]): string | undefined {
  const fromEnv = sources.env.POD_NAMESPACE?.trim();
  const found =
    flag !== undefined
      ? { value: flag, origin: '--namespace' }
      : fromEnv
        ? { value: fromEnv, origin: 'POD_NAMESPACE' }
        : (fileNamespace(sources) ?? (dev ? devNamespace(sources) : undefined));
  if (found === undefined) {
    problems.push(
      `--namespace is required outside a cluster: the webhook's own namespace (or set POD_NAMESPACE; in a pod it is read from ${SERVICE_ACCOUNT_NAMESPACE_FILE})`,
    );
    return undefined;
  }
  if (!isDnsLabel(found.value)) {
    problems.push(`${found.origin} ${JSON.stringify(found.value)} is not a namespace name (lowercase letters, digits and '-', at most 63)`);
    return undefined;
  }
  return found.value;
}

/** Outside a cluster, as kubectl: the current context's namespace, else "default". */
function devNamespace(sources: FlagSources): { value: string; origin: string } {
  const fromContext = sources.kubeContextNamespace?.();
  return fromContext ? { value: fromContext, origin: "the kubeconfig context's namespace" } : { value: 'default', origin: 'the default namespace' };
}

function fileNamespace(sources: FlagSources): { value: string; origin: string } | undefined {
  const value = sources.readNamespaceFile()?.trim();
  return value ? { value, origin: SERVICE_ACCOUNT_NAMESPACE_FILE } : undefined;
}

function readNamespaceFile(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8');
  } catch {
    return undefined;
  }
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Where --dev prints its CA and flag problems go; default process.stderr. */
  stderr?: (text: string) => void;
  /** Kubernetes access; default in-cluster when KUBERNETES_SERVICE_HOST is set, else KUBECONFIG, else ~/.kube/config. */
  kubeConfig?: KubeConfig;
  /** The home folder whose .kube/config is read; default os.homedir(). */
  home?: string;
  /** Stops the webhook when aborted; default SIGTERM and SIGINT. */
  stop?: AbortSignal;
  /** Called once both listeners are up, with their ports (useful with port 0). */
  onListening?: (ports: { port: number; healthPort: number }) => void;
  /** Set the process's heap limits (limitYoungGeneration); default: when run on the process's own environment (the CLI). */
  heapLimits?: boolean;
}

/**
 * A webhook started with no young-generation size of its own (`node dist/cli.js`, `npx`: no NODE_OPTIONS) keeps the
 * young generation near its first size instead of growing it to 2 × 16 MiB or more under load: of the flags that
 * bound it, this is the one V8 still reads after start-up. bench:webhook on Node 24 without flags: peak RSS 128 MiB
 * with it, 140 without. One that has a size (the Deployment's NODE_OPTIONS, --max-semi-space-size=2) keeps it.
 */
export function limitYoungGeneration(nodeOptions = process.env.NODE_OPTIONS ?? '', execArgv = process.execArgv): boolean {
  if ([...nodeOptions.split(/\s+/), ...execArgv].some((flag) => /^--max[-_]semi[-_]space[-_]size\b/.test(flag))) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}

/** Run the webhook until SIGTERM/SIGINT (or `options.stop`); resolves the process exit code. */
export async function runWebhook(args: string[], options: RunOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const stderr = options.stderr ?? ((text: string): void => void process.stderr.write(text));
  const access: KubeAccess = options.kubeConfig
    ? { found: true, kubeConfig: options.kubeConfig, source: 'the given configuration' }
    : findKubeAccess({ env, ...(options.home !== undefined ? { home: options.home } : {}) });
  const kubeContextNamespace = (): string | undefined => (access.found ? contextNamespace(access.kubeConfig) : undefined);
  const parsed = parseWebhookFlags(args, { env, readNamespaceFile, kubeContextNamespace });
  if (!parsed.ok) {
    const message = `akv-injector webhook: invalid flags:\n${parsed.problems.map((p) => `- ${p}`).join('\n')}\nRun "akv-injector webhook --help" for the flags.\n`;
    stderr(message);
    await writeTerminationLog(message);
    return 2;
  }
  const { config } = parsed;
  if (options.heapLimits ?? options.env === undefined) limitYoungGeneration();
  const logger = options.logger ?? createServerLogger('webhook');
  const stopSignal = options.stop ?? processSignals(logger);

  let cache: ClusterCache;
  if (config.tls.kind === 'dev') cache = await devCache(access, logger);
  else if (access.found) cache = createClusterCache(access.kubeConfig, { logger });
  else {
    const message = `akv-injector webhook: no Kubernetes configuration. Tried: ${access.tried.join('; ')}. Run it in a pod, set KUBECONFIG, or try it without a cluster with --dev.`;
    logger.fatal({ tried: access.tried }, message);
    await writeTerminationLog(`${message}\n`);
    return 1;
  }

  let reloader: TlsReloader | undefined;
  let devCertificate: ServingCertificate | undefined;
  let httpsOptions: https.ServerOptions;
  if (config.tls.kind === 'dev') {
    // node-forge is loaded only here: a production webhook never needs it.
    const { generateCa, generateServingCert } = await import('../src/certs.js');
    const ca = await generateCa({ commonName: 'akv-injector dev CA', validityDays: 30 });
    const serving = await generateServingCert(ca, { ...DEV_HOSTS, validityDays: 30 });
    stderr(
      `akv-injector webhook --dev: serving a generated certificate for ${[...DEV_HOSTS.dnsNames, ...DEV_HOSTS.ipAddresses].join(', ')}, issued by this CA (trust it, e.g. curl --cacert):\n${ca.certPem}`,
    );
    httpsOptions = { ...TLS_POLICY, cert: serving.certPem, key: serving.keyPem };
    // Shown in the metrics, never warned about: --dev makes a new one at every start.
    devCertificate = { notAfter: new Date(new X509Certificate(serving.certPem).validTo) };
  } else {
    reloader = createTlsReloader({ certFile: config.tls.certFile, keyFile: config.tls.keyFile, logger });
    // Without a valid pair yet the listener still starts; it is not ready until one arrives.
    await reloader.start();
    httpsOptions = reloader.serverOptions();
  }

  // --dev is for trying it out, with or without a cluster: like render, it does not check the server's version.
  const serverVersion = config.tls.kind !== 'dev' && access.found ? readServerVersion(access.kubeConfig, { logger }) : undefined;
  const bodyBudget = createBodyBudget(DEFAULT_BODY_BUDGET);
  const metrics = createMetrics({
    cacheSizes: () => cache.sizes(),
    bodyBudget: () => bodyBudget.usage(),
    servingCertificate: () => reloader?.certificate() ?? devCertificate,
  });
  const app = buildApp({
    mutator: createMutator(serverVersion ? { ...config.settings, serverVersion: serverVersion.current } : config.settings, cache),
    logger,
    metrics,
    bodyBudget,
    https: httpsOptions,
  });
  if (reloader !== undefined && app.server instanceof https.Server) reloader.attach(app.server);

  let listening = false;
  let shuttingDown = false;
  const notReadyReasons = (): string[] => {
    const reasons: string[] = [];
    if (shuttingDown) reasons.push('shutting down');
    if (!listening) reasons.push('the admission listener is not up yet');
    const tlsProblem = reloader?.problem();
    if (tlsProblem !== undefined) reasons.push(`no TLS certificate loaded: ${tlsProblem}`);
    if (!cache.synced()) reasons.push('the cluster caches have not synced with the API server yet');
    if (serverVersion !== undefined && serverVersion.current() === undefined)
      reasons.push(`the API server's version is not known yet${serverVersion.problem() ? `: ${serverVersion.problem()}` : ''}`);
    return reasons;
  };
  const health = buildHealthApp({ notReadyReasons, metrics, logger });

  logger.info(
    {
      image: config.settings.image,
      windowsImage: config.settings.windowsImage,
      tenantId: config.settings.tenantId,
      cloud: config.settings.cloud.name,
      namespace: config.settings.namespace,
      port: config.port,
      healthPort: config.healthPort,
      tls: config.tls.kind === 'dev' ? 'generated (--dev)' : config.tls,
    },
    'akv-injector webhook starting',
  );
  try {
    // Never throws: an unreachable API server is retried, and /readyz says so meanwhile.
    cache.start();
    await health.listen({ host: LISTEN_HOST, port: config.healthPort });
    await app.listen({ host: LISTEN_HOST, port: config.port });
    listening = true;
  } catch (error) {
    logger.fatal({ err: error }, 'cannot start the webhook');
    reloader?.stop();
    serverVersion?.stop();
    await Promise.allSettled([app.close(), health.close(), cache.stop()]);
    return 1;
  }
  const ports = { port: (app.server.address() as AddressInfo).port, healthPort: (health.server.address() as AddressInfo).port };
  logger.info(
    { admission: `https://${LISTEN_HOST}:${ports.port}/mutate`, health: `http://${LISTEN_HOST}:${ports.healthPort}/{healthz,readyz,metrics}` },
    'akv-injector webhook listening',
  );
  options.onListening?.(ports);

  await new Promise<void>((resolve) => {
    if (stopSignal.aborted) resolve();
    else stopSignal.addEventListener('abort', () => resolve(), { once: true });
  });

  shuttingDown = true;
  logger.info('shutting down: not ready, no new connections, finishing the admissions in flight');
  const deadline = setTimeout(() => {
    logger.warn({ afterMs: DRAIN_DEADLINE_MS }, 'admissions still in flight at the drain deadline: closing their connections');
    app.server.closeAllConnections();
  }, DRAIN_DEADLINE_MS);
  deadline.unref();
  await app.close();
  clearTimeout(deadline);
  reloader?.stop();
  serverVersion?.stop();
  await cache.stop();
  await health.close();
  logger.info('akv-injector webhook stopped');
  logger.flush();
  return 0;
}

/** --dev: the cluster's caches when its API server answers, else namespaces and ServiceAccounts in memory, said once. */
async function devCache(access: KubeAccess, logger: Logger): Promise<ClusterCache> {
  const unreachable = access.found ? await probeApiServer(access.kubeConfig, DEV_PROBE_MS) : undefined;
  if (access.found && unreachable === undefined) return createClusterCache(access.kubeConfig, { logger });
  const why = access.found
    ? `the API server of ${access.source} is not reachable (${unreachable})`
    : `no Kubernetes configuration (tried: ${access.tried.join('; ')})`;
  logger.warn(
    `--dev without a cluster: ${why}; every namespace and ServiceAccount is taken to exist without labels or annotations, and no SecretProviderClass does: pods must carry all their settings in annotations`,
  );
  return createDevCluster();
}

/** Aborted by the first SIGTERM or SIGINT; a second one ends the process at once. */
function processSignals(logger: Logger): AbortSignal {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      logger.warn({ signal }, 'second signal: exiting without finishing');
      process.exit(1);
    }
    logger.info({ signal }, 'signal received');
    controller.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return controller.signal;
}
