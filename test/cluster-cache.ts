// The cluster cache with the real @kubernetes/client-node against a fake API server: sync, watch, misses, CRD on/off, outages, stop.
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig, V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import { ClusterReadError, createClusterCache, type ClusterCache, type ClusterCacheOptions } from '../webhook/cluster-cache.js';
import { CRD_MISSING, type SecretProviderClass } from '../webhook/lookups.js';
import { startFakeApiServer, unreachableKubeConfig, type FakeApiServer, type FakeApiServerOptions } from './fixtures/fake-apiserver.js';
import { captureLog, type LogLine } from './fixtures/log-capture.js';
import { waitFor } from './fixtures/wait-for.js';

const rejections: unknown[] = [];
process.on('unhandledRejection', (reason) => rejections.push(reason));

const SPC_PATH = '/apis/secrets-store.csi.x-k8s.io/v1';
const LIST_PATHS = ['/api/v1/namespaces', '/api/v1/serviceaccounts', `${SPC_PATH}/secretproviderclasses`];

/** Fast retries so the tests need no long waits. */
const QUICK = { backoffInitialMs: 20, backoffMaxMs: 200, crdRecheckMs: 100, readTimeoutMs: 2_000 } as const satisfies Omit<ClusterCacheOptions, 'logger'>;
/** The longest timer a cache with QUICK timings sets that starts a request: a retry, a CRD re-check (resync is 30 min). */
const LONGEST_TIMER_MS = Math.max(QUICK.backoffMaxMs, QUICK.crdRecheckMs);

interface World {
  fake: FakeApiServer;
  cache: ClusterCache;
  logs: () => LogLine[];
  rawLogs: () => string;
}

function seed(fake: FakeApiServer): void {
  fake.upsert('namespaces', { metadata: { name: 'team-a', labels: { 'akv-injector.io/inject': 'enabled' } } });
  fake.upsert('namespaces', { metadata: { name: 'team-b' } });
  fake.upsert('serviceaccounts', { metadata: { name: 'default', namespace: 'team-a', annotations: { 'azure.workload.identity/client-id': 'client-a' } } });
  fake.upsert('serviceaccounts', { metadata: { name: 'app', namespace: 'team-a' } });
  fake.upsert('serviceaccounts', { metadata: { name: 'default', namespace: 'team-b' } });
  fake.upsert('secretproviderclasses', { metadata: { name: 'kv', namespace: 'team-a' }, spec: { provider: 'azure', parameters: { keyvaultName: 'kv-a' } } });
}

async function world(
  t: Test,
  options: { fake?: FakeApiServerOptions; cache?: Omit<ClusterCacheOptions, 'logger'>; kubeConfig?: (fake: FakeApiServer) => KubeConfig; seed?: boolean } = {},
): Promise<World> {
  const fake = await startFakeApiServer(options.fake);
  if (options.seed !== false) seed(fake);
  const { logger, lines, text } = captureLog('webhook', 'debug');
  const cache = createClusterCache(options.kubeConfig?.(fake) ?? fake.kubeConfig(), { logger, ...QUICK, ...options.cache });
  t.teardown(async () => {
    await cache.stop();
    await fake.close();
  });
  return { fake, cache, logs: lines, rawLogs: text };
}

/**
 * Whatever a stopped cache could still start has arrived at `fake`: every timer it may have set has fired, since
 * Node runs timers in order of expiry and none is longer than LONGEST_TIMER_MS, and a probe request sent after
 * them has arrived, so any request begun before it has too.
 */
async function pastEverythingPending(fake: FakeApiServer): Promise<void> {
  await sleep(LONGEST_TIMER_MS + 1);
  await fake.probe();
}

async function synced(w: World): Promise<void> {
  w.cache.start();
  await waitFor('synced', () => w.cache.synced());
}

/** Non-watch requests for exactly `path`. */
function gets(fake: FakeApiServer, path: string): number {
  return fake.requests.filter((request) => !request.watch && request.path === path).length;
}

function warnings(w: World): LogLine[] {
  return w.logs().filter((line) => line.level === 'warn');
}

/** A log line's field as text ('' when absent), for matching. */
const field = (line: LogLine | undefined, name: string): string => String(line?.[name] ?? '');

async function rejection(promise: Promise<unknown>): Promise<ClusterReadError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ClusterReadError) return error;
    throw error;
  }
  throw new Error('expected a ClusterReadError');
}

t.test('initial sync fills the caches; lookups are then served without a request', async (t) => {
  const w = await world(t);
  t.equal(w.cache.synced(), false, 'not synced before start');
  t.same(w.cache.sizes(), { namespaces: 0, serviceAccounts: 0, secretProviderClasses: 0 });

  await synced(w);
  t.same(w.cache.sizes(), { namespaces: 2, serviceAccounts: 3, secretProviderClasses: 1 });
  for (const path of LIST_PATHS) t.equal(gets(w.fake, path), 1, `listed ${path} once`);

  const before = w.fake.requests.filter((request) => !request.watch).length;
  const namespace = await w.cache.namespace('team-a');
  const serviceAccount = await w.cache.serviceAccount('team-a', 'default');
  const spc = (await w.cache.secretProviderClass('team-a', 'kv')) as SecretProviderClass;
  t.equal(namespace?.metadata?.labels?.['akv-injector.io/inject'], 'enabled');
  t.equal(serviceAccount?.metadata?.annotations?.['azure.workload.identity/client-id'], 'client-a');
  t.equal(spc.spec?.parameters?.keyvaultName, 'kv-a');
  t.equal(w.fake.requests.filter((request) => !request.watch).length, before, 'no request for a cache hit');

  await waitFor('three watches', () => w.fake.openWatches() === 3);
  for (const path of LIST_PATHS) {
    const watch = w.fake.requests.find((request) => request.watch && request.path === path);
    t.ok(watch?.query.get('resourceVersion'), `${path} watched from the list's resourceVersion`);
  }
  t.notOk(w.rawLogs().includes(w.fake.token), 'the token never appears in a log');
});

t.test('watch events reach the cache: add, modify, delete', async (t) => {
  const w = await world(t);
  await synced(w);
  await waitFor('three watches', () => w.fake.openWatches() === 3);

  w.fake.upsert('namespaces', { metadata: { name: 'team-c', labels: { 'akv-injector.io/inject': 'enabled' } } });
  await waitFor('team-c added', () => w.cache.sizes().namespaces === 3);
  t.equal((await w.cache.namespace('team-c'))?.metadata?.labels?.['akv-injector.io/inject'], 'enabled');
  t.equal(gets(w.fake, '/api/v1/namespaces/team-c'), 0, 'served from the watch, not read');

  w.fake.upsert('namespaces', { metadata: { name: 'team-a', labels: { 'akv-injector.io/inject': 'disabled' } } });
  await waitFor('team-a label modified', async () => (await w.cache.namespace('team-a'))?.metadata?.labels?.['akv-injector.io/inject'] === 'disabled');

  w.fake.upsert('serviceaccounts', { metadata: { name: 'app', namespace: 'team-a', annotations: { 'azure.workload.identity/client-id': 'client-app' } } });
  await waitFor(
    'annotation added',
    async () => (await w.cache.serviceAccount('team-a', 'app'))?.metadata?.annotations?.['azure.workload.identity/client-id'] === 'client-app',
  );

  w.fake.upsert('secretproviderclasses', { metadata: { name: 'kv', namespace: 'team-a' }, spec: { provider: 'azure', parameters: { keyvaultName: 'kv-b' } } });
  await waitFor(
    'SPC modified',
    async () => ((await w.cache.secretProviderClass('team-a', 'kv')) as SecretProviderClass).spec?.parameters?.keyvaultName === 'kv-b',
  );

  w.fake.remove('namespaces', undefined, 'team-b');
  w.fake.remove('serviceaccounts', 'team-a', 'app');
  await waitFor('deletions', () => w.cache.sizes().namespaces === 2 && w.cache.sizes().serviceAccounts === 2);
  t.equal(await w.cache.namespace('team-b'), undefined, 'a deleted namespace is gone');
  t.equal(gets(w.fake, '/api/v1/namespaces/team-b'), 1, 'its miss was read directly, answered 404');
  t.equal(gets(w.fake, '/api/v1/namespaces/team-c') + gets(w.fake, '/api/v1/namespaces/team-a'), 0, 'hits never read');
});

t.test('a miss reads directly: a ServiceAccount created a moment before its pod', async (t) => {
  const w = await world(t);
  await synced(w);

  const created = w.fake.upsert<V1ServiceAccount>(
    'serviceaccounts',
    { metadata: { name: 'fresh', namespace: 'team-a', annotations: { 'azure.workload.identity/client-id': 'client-fresh' } } },
    { silent: true },
  );
  const found = await w.cache.serviceAccount('team-a', 'fresh');
  t.equal(found?.metadata?.resourceVersion, created.metadata?.resourceVersion);
  t.equal(found?.metadata?.annotations?.['azure.workload.identity/client-id'], 'client-fresh');
  t.equal(gets(w.fake, '/api/v1/namespaces/team-a/serviceaccounts/fresh'), 1);

  w.fake.upsert('serviceaccounts', { metadata: { name: 'burst', namespace: 'team-a' } }, { silent: true });
  const burst = await Promise.all([1, 2, 3, 4].map(() => w.cache.serviceAccount('team-a', 'burst')));
  t.ok(burst.every((sa) => sa?.metadata?.name === 'burst'));
  t.equal(gets(w.fake, '/api/v1/namespaces/team-a/serviceaccounts/burst'), 1, 'concurrent misses share one read');

  w.fake.upsert('namespaces', { metadata: { name: 'fresh-ns' } }, { silent: true });
  t.equal((await w.cache.namespace('fresh-ns'))?.metadata?.name, 'fresh-ns');
  w.fake.upsert('secretproviderclasses', { metadata: { name: 'fresh-spc', namespace: 'team-a' }, spec: { provider: 'azure' } }, { silent: true });
  t.equal(((await w.cache.secretProviderClass('team-a', 'fresh-spc')) as SecretProviderClass).spec?.provider, 'azure');
});

t.test('404 is undefined and caches nothing; impossible names cost no request', async (t) => {
  const w = await world(t);
  await synced(w);

  t.equal(await w.cache.serviceAccount('team-a', 'ghost'), undefined);
  t.equal(await w.cache.serviceAccount('team-a', 'ghost'), undefined);
  t.equal(gets(w.fake, '/api/v1/namespaces/team-a/serviceaccounts/ghost'), 2, 'each miss asks again');
  t.equal(await w.cache.namespace('ghost'), undefined);
  t.equal(await w.cache.secretProviderClass('team-a', 'ghost'), undefined, 'a missing object is not a missing CRD');
  t.equal(gets(w.fake, `${SPC_PATH}/namespaces/team-a/secretproviderclasses/ghost`), 1);

  const before = w.fake.requests.length;
  for (const name of ['..', '.', 'Upper', 'a/b', '', 'x'.repeat(254)]) {
    t.equal(await w.cache.serviceAccount('team-a', name), undefined, `serviceAccount ${JSON.stringify(name.slice(0, 10))}`);
    t.equal(await w.cache.namespace(name), undefined, `namespace ${JSON.stringify(name.slice(0, 10))}`);
    t.equal(await w.cache.secretProviderClass('team-a', name), undefined, `secretProviderClass ${JSON.stringify(name.slice(0, 10))}`);
  }
  t.equal(w.fake.requests.length, before);
});

t.test('a failed direct read throws a ClusterReadError naming the object and the cause', async (t) => {
  const w = await world(t);
  await synced(w);

  w.fake.failNext(1, 500, '/serviceaccounts/ghost');
  let error = await rejection(w.cache.serviceAccount('team-a', 'ghost'));
  t.match(error.message, /ServiceAccount "team-a\/ghost".*HTTP 500: Internal Server Error/);
  t.equal(error.status, 500);

  w.fake.failNext(1, 403, '/namespaces/ghost');
  error = await rejection(w.cache.namespace('ghost'));
  t.match(error.message, /namespace "ghost".*HTTP 403/);
  t.equal(error.status, 403);

  w.fake.failNext(1, 'reset', '/secretproviderclasses/ghost');
  error = await rejection(w.cache.secretProviderClass('team-a', 'ghost'));
  t.match(error.message, /SecretProviderClass "team-a\/ghost"/);
  t.equal(error.status, undefined);

  t.equal(await w.cache.serviceAccount('team-a', 'ghost'), undefined, 'the next read works again');
});

t.test('a direct read has a deadline', async (t) => {
  const w = await world(t, { cache: { readTimeoutMs: 100 } });
  w.fake.latencyMs = 2_000;
  const error = await rejection(w.cache.serviceAccount('team-a', 'slow'));
  t.match(error.message, /ServiceAccount "team-a\/slow".*no answer within 100 ms/);
  t.equal(error.status, undefined);
});

t.test('CRD missing: synced with the feature off, then picked up once installed, and dropped again', async (t) => {
  const w = await world(t, { fake: { crdInstalled: false } });
  await synced(w);
  t.equal(await w.cache.secretProviderClass('team-a', 'kv'), CRD_MISSING);
  t.equal(w.cache.sizes().secretProviderClasses, 0);
  t.equal(gets(w.fake, `${SPC_PATH}/namespaces/team-a/secretproviderclasses/kv`), 0, 'no read while the CRD is known missing');
  t.equal(w.logs().filter((line) => /CRD not installed/.test(field(line, 'msg'))).length, 1, 'said once, at info');
  t.same(warnings(w), []);
  // Re-checked with a fresh list every crdRecheckMs.
  await waitFor('a re-check', () => gets(w.fake, `${SPC_PATH}/secretproviderclasses`) >= 2);
  t.equal(w.logs().filter((line) => /CRD not installed/.test(field(line, 'msg'))).length, 1, 'not repeated on each re-check');

  w.fake.installCrd(true);
  w.fake.upsert('secretproviderclasses', { metadata: { name: 'kv', namespace: 'team-a' }, spec: { provider: 'azure' } });
  await waitFor('SPC cache on', () => w.cache.sizes().secretProviderClasses === 1);
  t.equal(((await w.cache.secretProviderClass('team-a', 'kv')) as SecretProviderClass).spec?.provider, 'azure');
  t.ok(w.logs().some((line) => /CRD is installed now/.test(field(line, 'msg'))));
  await waitFor('SPC watch', () => w.fake.openWatches('secretproviderclasses') === 1);
  w.fake.upsert('secretproviderclasses', { metadata: { name: 'kv2', namespace: 'team-a' }, spec: { provider: 'azure' } });
  await waitFor('SPC watch event', () => w.cache.sizes().secretProviderClasses === 2);

  // Deleting the CRD ends its watches; the re-watch 404s, and a fresh list finds it gone.
  w.fake.installCrd(false);
  await waitFor('CRD_MISSING again', async () => (await w.cache.secretProviderClass('team-a', 'kv')) === CRD_MISSING);
  t.equal(w.cache.synced(), true);
  t.equal(w.cache.sizes().secretProviderClasses, 0);
});

t.test('before sync, a direct read tells a missing CRD from a missing object', async (t) => {
  const w = await world(t, { fake: { crdInstalled: false } });
  t.equal(await w.cache.secretProviderClass('team-a', 'kv'), CRD_MISSING);
  w.fake.installCrd(true);
  t.equal(await w.cache.secretProviderClass('team-a', 'nope'), undefined);
  w.fake.upsert('secretproviderclasses', { metadata: { name: 'kv', namespace: 'team-a' }, spec: { provider: 'azure' } });
  t.equal(((await w.cache.secretProviderClass('team-a', 'kv')) as SecretProviderClass).metadata?.name, 'kv');
});

t.test('API server unreachable at start: not synced, no crash, synced once it is back', async (t) => {
  const w = await world(t, { fake: { paused: true } });
  w.cache.start();
  await waitFor('retries logged', () => warnings(w).length >= 6);
  t.equal(w.cache.synced(), false);
  t.match(field(warnings(w)[0], 'error'), /ECONNREFUSED/);
  const error = await rejection(w.cache.namespace('team-a'));
  t.match(error.message, /namespace "team-a".*ECONNREFUSED/);

  w.fake.upsert('namespaces', { metadata: { name: 'while-down' } });
  await w.fake.resume();
  await waitFor('synced after the outage', () => w.cache.synced(), 3_000);
  t.same(w.cache.sizes(), { namespaces: 3, serviceAccounts: 3, secretProviderClasses: 1 });
  w.fake.upsert('namespaces', { metadata: { name: 'after' } });
  await waitFor('watch works after the outage', () => w.cache.sizes().namespaces === 4);
});

t.test('a kubeconfig pointing at a closed port: warnings, retries, a clean stop', async (t) => {
  const { logger, lines } = captureLog('webhook', 'debug');
  const kubeConfig = await unreachableKubeConfig();
  const cache = createClusterCache(kubeConfig, { logger, ...QUICK });
  cache.start();
  cache.start(); // idempotent
  await waitFor('retries', () => lines().filter((line) => line.level === 'warn').length >= 6);
  t.equal(cache.synced(), false);
  await cache.stop();
  const after = lines().length;
  // An API server comes up on that port: a retry after stop would now arrive there instead of failing unseen.
  const fake = await startFakeApiServer({ port: Number(new URL(kubeConfig.getCurrentCluster()?.server ?? '').port) });
  t.teardown(() => fake.close());
  await pastEverythingPending(fake);
  t.same(fake.requests, [], 'no request after stop');
  t.equal(lines().length, after, 'nothing logged after stop');
  const error = await rejection(cache.serviceAccount('a', 'b'));
  t.match(error.message, /stopped/);
});

t.test('a wrong token: 401 logged and retried, lookups fail clearly', async (t) => {
  const wrong = 'wrong-token-7c1d0e';
  const w = await world(t, { kubeConfig: (fake) => fake.kubeConfig({ token: wrong }) });
  w.cache.start();
  await waitFor('401 warnings', () => warnings(w).filter((line) => /HTTP 401/.test(field(line, 'error'))).length >= 3);
  t.equal(w.cache.synced(), false);
  const error = await rejection(w.cache.serviceAccount('team-a', 'default'));
  t.equal(error.status, 401);
  t.match(error.message, /ServiceAccount "team-a\/default".*HTTP 401: Unauthorized/);
  t.notOk(w.rawLogs().includes(wrong), 'no credentials in logs');
});

t.test('watch interruptions: a clean close resumes, 410 relists, failures back off, an outage heals', async (t) => {
  const w = await world(t);
  await synced(w);
  await waitFor('three watches', () => w.fake.openWatches() === 3);
  const nsLists = (): number => gets(w.fake, '/api/v1/namespaces');
  const nsWatches = (): number => w.fake.requests.filter((request) => request.watch && request.path === '/api/v1/namespaces').length;

  // The API server ends watches at its request timeout: the informer re-watches from where it was, no relist.
  let watches = nsWatches();
  w.fake.endWatches();
  w.fake.upsert('namespaces', { metadata: { name: 'during-rewatch' } });
  await waitFor('re-watched', () => nsWatches() > watches && w.fake.openWatches() === 3);
  await waitFor('event after re-watch', () => w.cache.sizes().namespaces === 3);
  t.equal(nsLists(), 1, 'no relist for a clean close');

  // History compacted past what the informer saw: the re-watch gets 410 Gone and the informer relists.
  w.fake.upsert('serviceaccounts', { metadata: { name: 'unseen', namespace: 'team-b' } }, { silent: true });
  w.fake.compact();
  w.fake.endWatches();
  await waitFor('relisted after 410', () => nsLists() === 2);
  w.fake.upsert('namespaces', { metadata: { name: 'after-410' } });
  await waitFor('event after 410', () => w.cache.sizes().namespaces === 4);

  // A failing re-watch is retried with backoff.
  watches = nsWatches();
  w.fake.failNext(2, 500, '/api/v1/namespaces');
  w.fake.endWatches();
  await waitFor('two failures then a watch', () => w.fake.openWatches('namespaces') === 1 && nsWatches() >= watches + 3);
  t.ok(warnings(w).some((line) => line.resource === 'namespaces' && /HTTP 500/.test(field(line, 'error'))));
  w.fake.upsert('namespaces', { metadata: { name: 'after-500' } });
  await waitFor('event after 500s', () => w.cache.sizes().namespaces === 5);

  // The whole server goes away and comes back; changes made meanwhile arrive by replay.
  await w.fake.pause();
  await waitFor('outage noticed', () => warnings(w).some((line) => /ECONNREFUSED/.test(field(line, 'error'))));
  t.equal(w.cache.synced(), true, 'still synced: the cache serves its last state');
  t.equal((await w.cache.namespace('team-a'))?.metadata?.name, 'team-a', 'hits still answer during the outage');
  w.fake.upsert('serviceaccounts', { metadata: { name: 'while-down', namespace: 'team-b' } });
  await w.fake.resume();
  await waitFor('replayed after the outage', () => w.cache.sizes().serviceAccounts === 5, 3_000);
});

t.test('resync relists into a new cache beside the serving one', async (t) => {
  const w = await world(t, { cache: { resyncMs: 100 } });
  await synced(w);
  w.fake.upsert('namespaces', { metadata: { name: 'missed-by-watch' } }, { silent: true });
  await waitFor('relist picks it up', () => w.cache.sizes().namespaces === 3);
  const before = gets(w.fake, '/api/v1/namespaces/missed-by-watch');
  t.equal((await w.cache.namespace('missed-by-watch'))?.metadata?.name, 'missed-by-watch');
  t.equal(gets(w.fake, '/api/v1/namespaces/missed-by-watch'), before, 'served from the new cache');
  // Each relist starts a new generation's watches: after two more, the old ones must have closed, or they pile up.
  const lists = gets(w.fake, '/api/v1/namespaces');
  await waitFor('two more relists', () => gets(w.fake, '/api/v1/namespaces') >= lists + 2);
  await waitFor('old watches closed', () => w.fake.openWatches() <= 3);
});

t.test('a failing periodic relist keeps the serving cache', async (t) => {
  const w = await world(t, { cache: { resyncMs: 60 } });
  await synced(w);
  await waitFor('three watches', () => w.fake.openWatches() === 3);
  w.fake.failNext(1, 500, (request) => request.path === '/api/v1/namespaces' && !request.watch);
  await waitFor('relist failure logged', () => warnings(w).some((line) => /periodic relist failed/.test(field(line, 'msg')) && line.resource === 'namespaces'));
  t.equal(w.cache.sizes().namespaces, 2);
  w.fake.upsert('namespaces', { metadata: { name: 'later' } }, { silent: true });
  await waitFor('the next relist succeeds', () => w.cache.sizes().namespaces === 3);
});

t.test('a credential failure when re-watching is retried, not an unhandled rejection', async (t) => {
  let failing = false;
  const w = await world(t, {
    kubeConfig: (fake) => {
      const kubeConfig = fake.kubeConfig();
      kubeConfig.loadFromOptions({
        clusters: kubeConfig.clusters,
        contexts: kubeConfig.contexts,
        currentContext: kubeConfig.currentContext,
        users: [{ name: 'fake', token: fake.token, authProvider: { name: 'flaky-plugin' } }],
      });
      kubeConfig.addAuthenticator({
        isAuthProvider: (user) => (user.authProvider as { name?: string } | undefined)?.name === 'flaky-plugin',
        applyAuthentication: async () => {
          if (failing) throw new Error('credential plugin failed');
        },
      });
      return kubeConfig;
    },
  });
  await synced(w);
  await waitFor('three watches', () => w.fake.openWatches() === 3);
  failing = true;
  w.fake.endWatches();
  await waitFor('failures retried', () => warnings(w).filter((line) => /credential plugin failed/.test(field(line, 'error'))).length >= 6);
  t.equal(w.fake.openWatches(), 0);
  failing = false;
  await waitFor('watching again', () => w.fake.openWatches() === 3, 3_000);
  w.fake.upsert('namespaces', { metadata: { name: 'after' } });
  await waitFor('event after recovery', () => w.cache.sizes().namespaces === 3);
  t.same(rejections, []);
});

t.test('stop ends every watch, and nothing follows it', async (t) => {
  const w = await world(t);
  await synced(w);
  await waitFor('three watches', () => w.fake.openWatches() === 3);
  await w.cache.stop();
  await waitFor('watches closed', () => w.fake.openWatches() === 0);
  const count = w.fake.requests.length;
  await pastEverythingPending(w.fake);
  t.equal(w.fake.requests.length, count, 'no request after stop');
  t.same(warnings(w), [], 'stopping is not a failure');
  t.equal((await w.cache.namespace('team-a'))?.metadata?.name, 'team-a', 'hits still answer');
});

t.test('stop while a list or a watch request is in flight leaves no watch behind', async (t) => {
  const listing = await world(t, { fake: { latencyMs: 150 } });
  listing.cache.start();
  await waitFor('lists sent', () => listing.fake.requests.length === 3);
  await listing.cache.stop();
  // Once the server is through with the lists, a watch could only follow from a client that ignored stop.
  await waitFor('lists finished', () => listing.fake.requests.every((request) => request.finished));
  await pastEverythingPending(listing.fake);
  t.equal(listing.fake.requests.filter((request) => request.watch).length, 0, 'no watch after a list in flight');
  t.equal(listing.fake.openWatches(), 0);

  const watching = await world(t);
  await synced(watching);
  await waitFor('three watches', () => watching.fake.openWatches() === 3);
  watching.fake.latencyMs = 30;
  const watches = watching.fake.requests.filter((request) => request.watch).length;
  watching.fake.endWatches();
  await waitFor('re-watches sent', () => watching.fake.requests.filter((request) => request.watch).length === watches + 3);
  await watching.cache.stop();
  // The delayed watch requests may be answered before the client's abort lands: they must close right after. A watch
  // is open from its delayed answer on, so only once the server is through with every request is none open for good.
  await waitFor('in-flight watch requests finished', () => watching.fake.requests.every((request) => request.finished), 2_000);
  await pastEverythingPending(watching.fake);
  t.equal(watching.fake.openWatches(), 0, 'no watch after a watch request in flight');
  t.equal(watching.fake.requests.filter((request) => request.watch).length, watches + 3, 'and none started after stop');
  t.same(warnings(watching), []);
});

t.test('lookups return the cached objects as typed by the client', async (t) => {
  const w = await world(t);
  await synced(w);
  const namespace: V1Namespace | undefined = await w.cache.namespace('team-a');
  const serviceAccount: V1ServiceAccount | undefined = await w.cache.serviceAccount('team-b', 'default');
  t.equal(namespace?.kind, 'Namespace');
  t.equal(serviceAccount?.metadata?.namespace, 'team-b');
});

t.test('no unhandled rejections anywhere above', async (t) => {
  t.same(rejections, []);
});

t.test('what a namespace owner stores costs the cache a bounded size: lists paged, objects trimmed to what is read', async (t) => {
  const w = await world(t, { seed: false });
  const big = 'x'.repeat(20_000);
  const huge = 'x'.repeat(100_000);
  w.fake.upsert('namespaces', {
    metadata: {
      name: 'team-a',
      labels: { 'akv-injector.io/inject': 'enabled', other: big },
      annotations: { 'akv-injector.io/vault': 'kv-a', 'example.com/notes': big },
    },
  });
  for (let i = 0; i < 250; i++) {
    w.fake.upsert('serviceaccounts', {
      metadata: {
        name: `sa-${i}`,
        namespace: 'team-a',
        labels: { big },
        annotations: { 'azure.workload.identity/client-id': `client-${i}`, 'example.com/blob': big },
      },
      secrets: [{ name: big }],
    } as V1ServiceAccount);
  }
  w.fake.upsert('secretproviderclasses', {
    metadata: { name: 'huge', namespace: 'team-a', annotations: { blob: big } },
    spec: {
      provider: 'azure',
      parameters: JSON.parse(JSON.stringify({ keyvaultName: 'kv-a', objects: huge, unrelated: huge }).replace('{', '{"__proto__":"p",')) as Record<
        string,
        string
      >,
      secretObjects: Array.from({ length: 10 }, () => ({ secretName: big })),
    },
  });
  await synced(w);

  const lists = w.fake.requests.filter((request) => !request.watch && request.path === '/api/v1/serviceaccounts');
  t.equal(lists.length, 3, 'the 250 ServiceAccounts arrived in pages of 100');
  t.equal(w.cache.sizes().serviceAccounts, 250, 'all of them cached');
  const account = await w.cache.serviceAccount('team-a', 'sa-7');
  t.same(
    account,
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: {
        name: 'sa-7',
        namespace: 'team-a',
        resourceVersion: account?.metadata?.resourceVersion,
        annotations: { 'azure.workload.identity/client-id': 'client-7' },
      },
    },
    'a ServiceAccount keeps its name and the workload identity annotations only',
  );
  t.same((await w.cache.namespace('team-a'))?.metadata?.labels, { 'akv-injector.io/inject': 'enabled' }, 'a namespace keeps the inject label only');
  t.same((await w.cache.namespace('team-a'))?.metadata?.annotations, { 'akv-injector.io/vault': 'kv-a' }, 'and akv-injector.io annotations only');
  const spc = (await w.cache.secretProviderClass('team-a', 'huge')) as SecretProviderClass;
  t.same(Object.keys(spc.spec?.parameters ?? {}), ['keyvaultName', 'objects'], 'a SecretProviderClass keeps the parameters the webhook reads');
  t.equal(spc.spec?.parameters?.objects?.length, 64 * 1024 + 1, 'an objects parameter over the limit is cut one past it, so it is still refused as too long');
  t.same(spc.spec?.secretObjects, [{}], 'secretObjects: only that there are some');
  t.equal(JSON.stringify(spc).length < 70_000, true, 'the cached SecretProviderClass is small');

  // A watch event's object is trimmed like the list's.
  w.fake.upsert('serviceaccounts', {
    metadata: { name: 'sa-7', namespace: 'team-a', annotations: { 'azure.workload.identity/client-id': 'client-7b', 'example.com/blob': big } },
  });
  const updated = await waitFor('the update', async () => {
    const account = await w.cache.serviceAccount('team-a', 'sa-7');
    return account?.metadata?.annotations?.['azure.workload.identity/client-id'] === 'client-7b' ? account : undefined;
  });
  t.same(Object.keys(updated.metadata?.annotations ?? {}), ['azure.workload.identity/client-id'], 'the watched update is trimmed');
  t.equal(({} as Record<string, unknown>).p, undefined);
});
