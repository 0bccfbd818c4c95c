// Watch-backed caches of the namespaces, ServiceAccounts and SecretProviderClasses the webhook reads, with a direct read on a miss.
import { STATUS_CODES } from 'node:http';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  ListWatch,
  Observable,
  Watch,
  type ConfigurationOptions,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObservableMiddleware,
  type V1Namespace,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { backoffDelay } from '../src/backoff.js';
import { isDnsSubdomain } from '../src/dns-names.js';
import type { Logger } from '../src/log.js';
import { trimNamespace, trimSecretProviderClass, trimServiceAccount } from './cache-trim.js';
import { CRD_MISSING, type Lookups, type SecretProviderClass } from './lookups.js';

const SPC_GROUP = 'secrets-store.csi.x-k8s.io';
const SPC_VERSION = 'v1';
const SPC_PLURAL = 'secretproviderclasses';
/** Objects per list page: a cluster's worth of large objects never arrives in one response. */
const LIST_PAGE_SIZE = 100;

export interface ClusterCacheOptions {
  logger: Logger;
  /** Period of a full relist that replaces each cache, healing a watch that silently missed events; 0 turns it off. Default 30 min. */
  resyncMs?: number;
  /** How often a missing SecretProviderClass CRD is looked for again. Default 60 s. */
  crdRecheckMs?: number;
  /** First delay before retrying a failed list or watch; it doubles (with jitter) up to `backoffMaxMs`. Default 500 ms. */
  backoffInitialMs?: number;
  /** Longest delay between retries. Default 30 s. */
  backoffMaxMs?: number;
  /** Deadline of a direct read on a cache miss. Default 5 s. */
  readTimeoutMs?: number;
  /** Deadline of a list. Default 60 s. */
  listTimeoutMs?: number;
}

export interface CacheSizes {
  namespaces: number;
  serviceAccounts: number;
  secretProviderClasses: number;
}

export interface ClusterCache extends Lookups {
  /** Begin listing and watching. Never throws: failures are logged and retried with backoff. */
  start(): void;
  /** True once every cache has completed its first list (a missing SecretProviderClass CRD counts as done). */
  synced(): boolean;
  sizes(): CacheSizes;
  /** End every watch and timer. Cache hits still answer; misses fail from then on. */
  stop(): Promise<void>;
}

/** A direct read failed for another reason than 404: the object may exist, so the caller must not guess. */
export class ClusterReadError extends Error {
  override readonly name = 'ClusterReadError';
  constructor(
    message: string,
    /** The HTTP status, when the API server answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

interface Timing {
  resyncMs: number;
  crdRecheckMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  listTimeoutMs: number;
}

/**
 * Caches fed by list+watch (namespaces, ServiceAccounts in all namespaces, SecretProviderClasses), read without
 * a request on a hit. Objects returned are the cache's own: read them, never mutate them. While the API server is
 * unreachable, hits answer from the last known state. Throws only when `kubeConfig` has no current cluster.
 */
export function createClusterCache(kubeConfig: KubeConfig, options: ClusterCacheOptions): ClusterCache {
  const { logger } = options;
  const timing: Timing = {
    resyncMs: options.resyncMs ?? 30 * 60_000,
    crdRecheckMs: options.crdRecheckMs ?? 60_000,
    backoffInitialMs: options.backoffInitialMs ?? 500,
    backoffMaxMs: options.backoffMaxMs ?? 30_000,
    listTimeoutMs: options.listTimeoutMs ?? 60_000,
  };
  const readTimeoutMs = options.readTimeoutMs ?? 5_000;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  let started = false;
  let stopped = false;

  const watched = <T extends KubernetesObject>(spec: ResourceSpec<T>): WatchedResource<T> => new WatchedResource(kubeConfig, timing, logger, spec);
  const namespaces = watched<V1Namespace>({
    resource: 'namespaces',
    api: '/api/v1',
    trim: trimNamespace,
    list: (page, requestOptions) => core.listNamespace(page, requestOptions),
  });
  const serviceAccounts = watched<V1ServiceAccount>({
    resource: 'serviceaccounts',
    api: '/api/v1',
    trim: trimServiceAccount,
    list: (page, requestOptions) => core.listServiceAccountForAllNamespaces(page, requestOptions),
  });
  const secretProviderClasses = watched<SecretProviderClass>({
    resource: SPC_PLURAL,
    api: `/apis/${SPC_GROUP}/${SPC_VERSION}`,
    optional: true,
    trim: trimSecretProviderClass,
    list: async (page, requestOptions) =>
      (await custom.listClusterCustomObject(
        { group: SPC_GROUP, version: SPC_VERSION, plural: SPC_PLURAL, ...page },
        requestOptions,
      )) as KubernetesListObject<SecretProviderClass>,
  });
  const resources = [namespaces, serviceAccounts, secretProviderClasses];

  // Pods of one Deployment arrive together: they share one direct read of their new ServiceAccount.
  const inFlight = new Map<string, Promise<unknown>>();
  const once = <R>(key: string, read: () => Promise<R>): Promise<R> => {
    const running = inFlight.get(key);
    if (running) return running as Promise<R>;
    const promise = read().finally(() => inFlight.delete(key));
    inFlight.set(key, promise);
    return promise;
  };

  const directRead = async <R, M>(what: string, call: (requestOptions: ConfigurationOptions) => Promise<R>, notFound: (body: unknown) => M): Promise<R | M> => {
    if (stopped) throw new ClusterReadError(`cannot read ${what} from the Kubernetes API: the cluster cache is stopped`);
    const timeout = AbortSignal.timeout(readTimeoutMs);
    try {
      return await call(withSignal(timeout));
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return notFound(parseBody(error.body));
      throw readError(what, error, timeout.aborted ? readTimeoutMs : undefined);
    }
  };

  /**
   * One object by name: from the cache when it holds it, else by a direct read shared by the pods asking at once. Every
   * name must be a DNS subdomain: anything else cannot exist, and names such as `..` would change the request path.
   */
  const lookup = async <T extends KubernetesObject, M = undefined>(
    kind: string,
    resource: WatchedResource<T>,
    namespace: string | undefined,
    name: string,
    read: (requestOptions: ConfigurationOptions) => Promise<T>,
    notFound: (body: unknown) => M | undefined = () => undefined,
  ): Promise<T | M | undefined> => {
    if (!isDnsSubdomain(name) || (namespace !== undefined && !isDnsSubdomain(namespace))) return undefined;
    const cached = resource.get(name, namespace);
    if (cached) return cached;
    const path = namespace === undefined ? name : `${namespace}/${name}`;
    return once(`${kind} ${path}`, () => directRead(`${kind} "${path}"`, read, notFound));
  };

  return {
    start: () => {
      if (started || stopped) return;
      started = true;
      for (const resource of resources) resource.start();
    },
    synced: () => resources.every((resource) => resource.synced()),
    sizes: () => ({
      namespaces: namespaces.size(),
      serviceAccounts: serviceAccounts.size(),
      secretProviderClasses: secretProviderClasses.size(),
    }),
    stop: async () => {
      stopped = true;
      await Promise.all(resources.map((resource) => resource.stop()));
    },

    namespace: (name) =>
      lookup('namespace', namespaces, undefined, name, async (requestOptions) => trimNamespace(await core.readNamespace({ name }, requestOptions))),

    serviceAccount: (namespace, name) =>
      lookup('ServiceAccount', serviceAccounts, namespace, name, async (requestOptions) =>
        trimServiceAccount(await core.readNamespacedServiceAccount({ namespace, name }, requestOptions)),
      ),

    secretProviderClass: async (namespace, name) => {
      // Known missing: the feature is off until the periodic re-check finds the CRD.
      if (secretProviderClasses.absent()) return CRD_MISSING;
      return lookup(
        'SecretProviderClass',
        secretProviderClasses,
        namespace,
        name,
        async (requestOptions) =>
          trimSecretProviderClass(
            (await custom.getNamespacedCustomObject(
              { group: SPC_GROUP, version: SPC_VERSION, namespace, plural: SPC_PLURAL, name },
              requestOptions,
            )) as SecretProviderClass,
          ),
        // A missing object's 404 names it; a 404 for a resource type the server does not know names nothing.
        (body) => (statusDetailsName(body) === undefined ? CRD_MISSING : undefined),
      );
    },
  };
}

interface ResourceSpec<T extends KubernetesObject> {
  /** The plural resource name: the last segment of the path the informer watches, and the name in logs. */
  resource: string;
  /** The path of its API group and version, e.g. /api/v1. */
  api: string;
  /** A custom resource whose CRD may be missing: a 404 on list turns it off until a re-check finds it. */
  optional?: boolean;
  /** What the cache keeps of each object (cache-trim.ts). */
  trim(object: T): T;
  /** One page of the list. */
  list(page: ListPage, requestOptions: ConfigurationOptions): Promise<KubernetesListObject<T>>;
}

/** The paging parameters of a list request. */
interface ListPage {
  limit: number;
  _continue?: string;
}

/** One informer and what we know about it. A fresh list means a new generation, since ListWatch relists only on 410. */
interface Generation<T extends KubernetesObject> {
  informer: ListWatch<T>;
  /** Aborts the generation's list and watch requests, in flight or open. */
  abort: AbortController;
  retired: boolean;
  /** Its last list answered 404: the resource type is not served. */
  absent: boolean;
  startedAt: number;
}

/**
 * One resource kept in an informer's cache: retries with backoff after any failure, turns itself off while an
 * optional CRD is missing, and relists periodically by building a new informer beside the one serving lookups.
 */
class WatchedResource<T extends KubernetesObject> {
  private active: Generation<T> | undefined;
  private pending: Generation<T> | undefined;
  private attempts = 0;
  private isSynced = false;
  private isAbsent = false;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly timing: Timing,
    private readonly logger: Logger,
    private readonly spec: ResourceSpec<T>,
  ) {}

  start(): void {
    this.active = this.create();
    this.run(this.active);
    if (this.timing.resyncMs > 0) {
      const timer = setInterval(() => this.resync(), this.timing.resyncMs);
      timer.unref();
      this.timers.add(timer);
    }
  }

  synced(): boolean {
    return this.isSynced;
  }

  absent(): boolean {
    return this.isAbsent;
  }

  get(name: string, namespace?: string): T | undefined {
    if (this.isAbsent) return undefined;
    return this.active?.informer.get(name, namespace);
  }

  size(): number {
    if (this.isAbsent) return 0;
    return this.active?.informer.list().length ?? 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const generations = [this.active, this.pending].filter((generation) => generation !== undefined);
    await Promise.all(generations.map((generation) => this.retire(generation)));
  }

  private create(): Generation<T> {
    const abort = new AbortController();
    const watch = new GenerationWatch(this.kubeConfig, abort.signal, this.spec.trim);
    const generation: Generation<T> = {
      informer: new ListWatch<T>(`${this.spec.api}/${this.spec.resource}`, watch, () => this.list(generation), false),
      abort,
      retired: false,
      absent: false,
      startedAt: 0,
    };
    generation.informer.on('error', (error: unknown) => this.failed(generation, error));
    generation.informer.on('connect', () => this.logger.debug({ resource: this.spec.resource }, 'kubernetes cache: connecting'));
    return generation;
  }

  private run(generation: Generation<T>): void {
    if (generation.retired || this.stopped) return;
    generation.startedAt = Date.now();
    // start() resolves after the watch is set up and reports failures to the 'error' handlers; it rejects only on
    // a bug-shaped failure (a list item without metadata), which we treat like any other.
    generation.informer.start().catch((error: unknown) => this.failed(generation, error));
  }

  private async list(generation: Generation<T>): Promise<KubernetesListObject<T>> {
    const timeout = AbortSignal.timeout(this.timing.listTimeoutMs);
    let result: KubernetesListObject<T>;
    try {
      result = await this.listPages(withSignal(AbortSignal.any([generation.abort.signal, timeout])));
    } catch (error) {
      generation.absent = this.spec.optional === true && error instanceof ApiException && error.code === 404;
      if (timeout.aborted) throw new Error(`list of ${this.spec.resource} timed out after ${this.timing.listTimeoutMs} ms`, { cause: error });
      throw error;
    }
    // ListWatch goes on to watch after a list even when stopped meanwhile: fail it instead.
    if (generation.retired) throw new Error('stopped');
    generation.absent = false;
    // The informer fills its cache from this list synchronously once the promise settles; mark it listed after that.
    setImmediate(() => this.listed(generation, result.items.length));
    return result;
  }

  // Page by page, each page trimmed before the next arrives; the pages share one snapshot of the
  // cluster, and the last one carries its resourceVersion (the same for all).
  private async listPages(requestOptions: ConfigurationOptions): Promise<KubernetesListObject<T>> {
    const items: T[] = [];
    let page: ListPage = { limit: LIST_PAGE_SIZE };
    for (;;) {
      const result = await this.spec.list(page, requestOptions);
      for (const item of result.items) items.push(this.spec.trim(item));
      const next = result.metadata?._continue;
      if (next === undefined || next === '') return { ...result, items };
      page = { limit: LIST_PAGE_SIZE, _continue: next };
    }
  }

  private listed(generation: Generation<T>, count: number): void {
    if (generation.retired || this.stopped) return;
    if (generation === this.pending) {
      const previous = this.active;
      this.active = generation;
      this.pending = undefined;
      if (previous) void this.retire(previous);
      this.logger.debug({ resource: this.spec.resource, count }, 'kubernetes cache: relisted');
    }
    if (this.isAbsent) {
      this.isAbsent = false;
      this.logger.info({ resource: this.spec.resource }, 'kubernetes cache: the CRD is installed now; the feature is on');
    }
    if (!this.isSynced) {
      this.isSynced = true;
      this.logger.info({ resource: this.spec.resource, count }, 'kubernetes cache: synced');
    }
  }

  private failed(generation: Generation<T>, error: unknown): void {
    if (generation.retired || this.stopped) return;
    if (generation.absent) {
      this.turnOff();
      return;
    }
    if (generation === this.pending) {
      this.logger.warn({ resource: this.spec.resource, error: describeError(error) }, 'kubernetes cache: periodic relist failed; keeping the current cache');
      this.pending = undefined;
      void this.retire(generation);
      return;
    }
    const retryInMs = this.backoff(generation);
    this.logger.warn({ resource: this.spec.resource, error: describeError(error), retryInMs }, 'kubernetes cache: list/watch failed; retrying');
    if (statusOf(error) === 404) {
      // The watched type went away (its CRD deleted): only a fresh list tells whether it is still served.
      void this.retire(generation);
      const next = this.create();
      this.active = next;
      this.after(retryInMs, () => this.run(next));
      return;
    }
    // Same informer: it keeps its cache and resourceVersion and resumes the watch where it stopped.
    this.after(retryInMs, () => this.run(generation));
  }

  private turnOff(): void {
    for (const generation of [this.active, this.pending]) {
      if (generation) void this.retire(generation);
    }
    this.active = undefined;
    this.pending = undefined;
    if (!this.isAbsent) {
      this.logger.info(
        { resource: this.spec.resource, recheckMs: this.timing.crdRecheckMs },
        'kubernetes cache: the API server does not serve this resource (CRD not installed); the feature is off until it appears',
      );
    }
    this.isAbsent = true;
    this.isSynced = true;
    this.after(this.timing.crdRecheckMs, () => {
      const next = this.create();
      this.active = next;
      this.run(next);
    });
  }

  private resync(): void {
    if (this.stopped || this.pending || this.isAbsent || !this.isSynced || !this.active) return;
    this.pending = this.create();
    this.run(this.pending);
  }

  private backoff(generation: Generation<T>): number {
    // A generation that ran for a while before failing starts the backoff over.
    if (Date.now() - generation.startedAt > this.timing.backoffMaxMs) this.attempts = 0;
    // Half the wait is random: informers of many replicas spread out, and none retries at once.
    return backoffDelay(this.attempts++, { initialMs: this.timing.backoffInitialMs, maxMs: this.timing.backoffMaxMs, jitter: 0.5 });
  }

  private after(delayMs: number, action: () => void): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
  }

  private async retire(generation: Generation<T>): Promise<void> {
    generation.retired = true;
    generation.abort.abort();
    await generation.informer.stop();
  }
}

type WatchArgs = Parameters<Watch['watch']>;

const OBJECT_EVENTS = new Set(['ADDED', 'MODIFIED', 'DELETED']);

/**
 * The library's Watch, made safe to stop and unable to crash the process: a watch request still in flight when
 * its generation is retired is aborted as soon as it connects, and a failure before the request is sent (building
 * the auth headers) reaches `done` instead of becoming an unhandled rejection in ListWatch's restart path.
 */
class GenerationWatch<T extends KubernetesObject> extends Watch {
  constructor(
    config: KubeConfig,
    private readonly signal: AbortSignal,
    private readonly trim: (object: T) => T,
  ) {
    super(config);
  }

  override async watch(path: WatchArgs[0], queryParams: WatchArgs[1], events: WatchArgs[2], done: WatchArgs[3]): Promise<AbortController> {
    if (this.signal.aborted) return new AbortController();
    // Objects of ADDED, MODIFIED and DELETED events enter the cache: trimmed like the list's. BOOKMARK and ERROR pass as sent.
    const callback: WatchArgs[2] = (phase, object, watchObject) =>
      events(phase, OBJECT_EVENTS.has(phase) && object !== null && typeof object === 'object' ? this.trim(object as T) : object, watchObject);
    let controller: AbortController | undefined;
    let ended = false;
    const onAbort = (): void => controller?.abort();
    const finish = (error: unknown): void => {
      ended = true;
      this.signal.removeEventListener('abort', onAbort);
      done(error);
    };
    try {
      controller = await super.watch(path, queryParams, callback, finish);
    } catch (error) {
      finish(error);
      return new AbortController();
    }
    if (this.signal.aborted) controller.abort();
    else if (!ended) this.signal.addEventListener('abort', onAbort, { once: true });
    return controller;
  }
}

/** Per-request options that tie the request to `signal`. */
function withSignal(signal: AbortSignal): ConfigurationOptions {
  const middleware: ObservableMiddleware = {
    pre: (context) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

function readError(what: string, error: unknown, timedOutAfterMs: number | undefined): ClusterReadError {
  if (timedOutAfterMs !== undefined) return new ClusterReadError(`cannot read ${what} from the Kubernetes API: no answer within ${timedOutAfterMs} ms`);
  return new ClusterReadError(`cannot read ${what} from the Kubernetes API: ${describeError(error)}`, statusOf(error));
}

/** One line for a log or an error message: the HTTP status and the API server's Status message, or the network error. */
function describeError(error: unknown): string {
  if (error instanceof ApiException) {
    const body = parseBody(error.body);
    const message = isRecord(body) && typeof body.message === 'string' ? body.message : STATUS_CODES[error.code];
    return `HTTP ${error.code}${message ? `: ${message}` : ''}`;
  }
  const status = statusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return status === undefined ? message : `HTTP ${status}: ${message}`;
}

/** ApiException carries `code`; the Watch's errors carry `statusCode`. */
function statusOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  if (isRecord(error) && typeof error.statusCode === 'number') return error.statusCode;
  return undefined;
}

function parseBody(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return body;
  }
}

function statusDetailsName(body: unknown): string | undefined {
  if (!isRecord(body) || !isRecord(body.details)) return undefined;
  return typeof body.details.name === 'string' && body.details.name !== '' ? body.details.name : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
