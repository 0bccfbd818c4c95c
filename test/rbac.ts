// The webhook's ClusterRole is no wider than the API calls it makes: the grants are derived from the requests the real
// cluster cache (and the admission logic over it) sends an API server through a realistic life, not written by hand.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1ClusterRole, V1ClusterRoleBinding, V1Deployment, V1ServiceAccount } from '@kubernetes/client-node';
import t from 'tap';
import { CLOUDS } from '../src/clouds.js';
import { createLogger } from '../src/log.js';
import { createClusterCache } from '../webhook/cluster-cache.js';
import { createMutator } from '../webhook/mutate.js';
import type { WebhookSettings } from '../webhook/settings.js';
import { loadReview } from './fixtures/admission-fixtures.js';
import { startFakeApiServer, type FakeApiServer, type SeenRequest } from './fixtures/fake-apiserver.js';
import { renderKustomization, type KubeObject } from './fixtures/kustomize.js';
import { waitFor } from './fixtures/wait-for.js';

const BASE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'manifests', 'base');
const CLIENT = '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SPC_PATH = '/apis/secrets-store.csi.x-k8s.io/v1';
// The deadline of a wait: generous for a loaded machine, since a passing run never reaches it.
const BOUND_MS = 30_000;

// ---------------------------------------------------------------------------------------------------------
// Requests → the RBAC attributes the API server authorizes them by (k8s.io/apiserver's RequestInfo)

/** `resource.group:verb` of a resource request, as a ClusterRole grant is written; an error for anything else. */
function requestGrant(request: Pick<SeenRequest, 'method' | 'path' | 'watch'>): string {
  const parts = request.path.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') [group, rest] = ['', parts.slice(2)];
  else if (parts[0] === 'apis' && parts.length >= 3) [group, rest] = [parts[1] as string, parts.slice(3)];
  else throw new Error(`${request.method} ${request.path}: not a resource request`);
  // The legacy watch prefix (/api/v1/watch/...) still means the watch verb.
  const legacyWatch = rest[0] === 'watch';
  if (legacyWatch) rest = rest.slice(1);
  // namespaces/<ns>/<resource>/... addresses a namespaced resource; a lone namespaces/<name> the namespace itself.
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  const [resource, name, subresource, ...extra] = rest;
  if (resource === undefined || extra.length > 0) throw new Error(`${request.method} ${request.path}: not a resource path`);
  const fullResource = subresource === undefined ? resource : `${resource}/${subresource}`;
  return `${fullResource}.${group}:${verbOf(request.method, name !== undefined, request.watch || legacyWatch)}`;
}

function verbOf(method: string, oneObject: boolean, watch: boolean): string {
  switch (method) {
    case 'GET':
    case 'HEAD':
      return watch ? 'watch' : oneObject ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return oneObject ? 'delete' : 'deletecollection';
    default:
      throw new Error(`HTTP method ${method} has no RBAC verb`);
  }
}

/** Every `resource.group:verb` the role grants, with the problems that would make it wider than that. */
function roleGrants(role: V1ClusterRole): { grants: string[]; problems: string[] } {
  const grants = new Set<string>();
  const problems: string[] = [];
  for (const [index, rule] of (role.rules ?? []).entries()) {
    if (rule.resourceNames !== undefined) problems.push(`rule ${index}: resourceNames`);
    if (rule.nonResourceURLs !== undefined) problems.push(`rule ${index}: nonResourceURLs`);
    for (const field of ['apiGroups', 'resources', 'verbs'] as const) {
      if ((rule[field] ?? []).includes('*')) problems.push(`rule ${index}: a wildcard in ${field}`);
    }
    for (const group of rule.apiGroups ?? [])
      for (const resource of rule.resources ?? []) for (const verb of rule.verbs) grants.add(`${resource}.${group}:${verb}`);
  }
  return { grants: [...grants].sort(), problems };
}

t.test('requests map to the RBAC attributes the API server authorizes', async (t) => {
  const cases: Array<[string, string, boolean, string]> = [
    ['GET', '/api/v1/namespaces', false, 'namespaces.:list'],
    ['GET', '/api/v1/namespaces', true, 'namespaces.:watch'],
    ['GET', '/api/v1/namespaces/shop', false, 'namespaces.:get'],
    ['GET', '/api/v1/serviceaccounts', true, 'serviceaccounts.:watch'],
    ['GET', '/api/v1/namespaces/shop/serviceaccounts', false, 'serviceaccounts.:list'],
    ['GET', '/api/v1/namespaces/shop/serviceaccounts/checkout', false, 'serviceaccounts.:get'],
    ['GET', '/api/v1/watch/namespaces', false, 'namespaces.:watch'],
    ['POST', '/api/v1/namespaces/shop/serviceaccounts/checkout/token', false, 'serviceaccounts/token.:create'],
    ['GET', `${SPC_PATH}/secretproviderclasses`, false, 'secretproviderclasses.secrets-store.csi.x-k8s.io:list'],
    ['GET', `${SPC_PATH}/namespaces/shop/secretproviderclasses/kv`, false, 'secretproviderclasses.secrets-store.csi.x-k8s.io:get'],
    ['PATCH', '/apis/apps/v1/namespaces/shop/deployments/checkout', false, 'deployments.apps:patch'],
    ['DELETE', '/api/v1/namespaces/shop/pods', false, 'pods.:deletecollection'],
    ['POST', '/apis/events.k8s.io/v1/namespaces/shop/events', false, 'events.events.k8s.io:create'],
  ];
  for (const [method, requestPath, watch, grant] of cases)
    t.equal(requestGrant({ method, path: requestPath, watch }), grant, `${method} ${requestPath}${watch ? '?watch=true' : ''}`);
  t.throws(() => requestGrant({ method: 'GET', path: '/healthz', watch: false }), /not a resource request/);
  t.throws(() => requestGrant({ method: 'GET', path: '/version', watch: false }), /not a resource request/);
});

// ---------------------------------------------------------------------------------------------------------
// A life of the webhook against an API server, and the role it needs

const SETTINGS: WebhookSettings = {
  image: 'ghcr.io/akv-injector/akv-injector:0.1.0',
  cloud: CLOUDS.AzurePublicCloud,
  namespace: 'akv-injector',
  tenantId: TENANT,
};

/** A realistic cluster: more namespaces than one list page, each with its default ServiceAccount. */
function seed(fake: FakeApiServer): void {
  for (let i = 0; i < 150; i++) {
    const name = `team-${String(i).padStart(3, '0')}`;
    fake.upsert('namespaces', { metadata: { name } });
    fake.upsert<V1ServiceAccount>('serviceaccounts', { metadata: { name: 'default', namespace: name } });
  }
  fake.upsert('namespaces', { metadata: { name: 'shop', labels: { 'akv-injector.io/inject': 'enabled' } } });
  fake.upsert<V1ServiceAccount>('serviceaccounts', {
    metadata: { name: 'checkout', namespace: 'shop', annotations: { 'azure.workload.identity/client-id': CLIENT } },
  });
}

/** The deployment-pod fixture in `namespace`, running as `serviceAccount`, configured by the SecretProviderClass `spc`. */
function podRequest(namespace: string, serviceAccount: string, spc: string): ReturnType<typeof loadReview>['request'] {
  const review = loadReview('deployment-pod');
  const pod = review.request.object;
  pod.metadata!.namespace = namespace;
  pod.spec!.serviceAccountName = serviceAccount;
  const annotations = pod.metadata!.annotations!;
  delete annotations['akv-injector.io/vault'];
  delete annotations['akv-injector.io/objects'];
  annotations['akv-injector.io/secret-provider-class'] = spc;
  return { ...review.request, namespace };
}

const spc = (namespace: string, name: string): Record<string, unknown> => ({
  metadata: { namespace, name },
  spec: {
    provider: 'azure',
    parameters: { keyvaultName: `kv-${namespace}`, tenantId: TENANT, objects: 'array:\n  - |\n    objectName: db-password\n    objectType: secret\n' },
  },
});

t.test('the ClusterRole grants exactly what the webhook uses through start, sync, misses, watch failures and a CRD that arrives late', async (t) => {
  const fake = await startFakeApiServer({ crdInstalled: false });
  seed(fake);
  const cache = createClusterCache(fake.kubeConfig(), {
    logger: createLogger('webhook', undefined, 'silent'),
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    crdRecheckMs: 100,
    resyncMs: 0,
  });
  t.teardown(async () => {
    await cache.stop();
    await fake.close();
  });
  const mutate = createMutator(SETTINGS, cache);
  const requestsTo = (match: (r: SeenRequest) => boolean): number => fake.requests.filter(match).length;
  const spcLists = (): number => requestsTo((r) => r.path === `${SPC_PATH}/secretproviderclasses` && !r.watch);

  // Start and sync, without the SecretProviderClass CRD: a pod that names one is denied, saying so.
  cache.start();
  await waitFor('synced', () => cache.synced(), BOUND_MS);
  t.equal((await mutate(podRequest('shop', 'checkout', 'kv'))).outcome, 'denied', 'no CRD: denied');

  // The CRD is re-checked, found once installed, and watched.
  await waitFor('a CRD re-check', () => spcLists() >= 2, BOUND_MS);
  fake.installCrd(true);
  fake.upsert('secretproviderclasses', spc('shop', 'kv'));
  await waitFor('the SecretProviderClass cache', () => cache.sizes().secretProviderClasses === 1, BOUND_MS);
  await waitFor('three watches', () => fake.openWatches() === 3, BOUND_MS);
  t.equal((await mutate(podRequest('shop', 'checkout', 'kv'))).outcome, 'injected', 'from the caches');

  // Misses: a namespace, ServiceAccount and SecretProviderClass created a moment before the pod, not yet seen by a watch.
  fake.upsert('namespaces', { metadata: { name: 'fresh' } }, { silent: true });
  fake.upsert<V1ServiceAccount>(
    'serviceaccounts',
    { metadata: { name: 'app', namespace: 'fresh', annotations: { 'azure.workload.identity/client-id': CLIENT } } },
    { silent: true },
  );
  fake.upsert('secretproviderclasses', spc('fresh', 'kv'), { silent: true });
  const missed = await mutate(podRequest('fresh', 'app', 'kv'));
  t.equal(missed.outcome, 'injected', `read directly: ${missed.reason}`);
  t.equal(
    requestsTo((r) => !r.watch && /\/namespaces\/fresh(\/|$)/.test(r.path)),
    3,
    'one read each',
  );

  // The API server ends the watches (its timeout): they resume. Then history is compacted: 410, a relist.
  const watches = requestsTo((r) => r.watch);
  fake.endWatches();
  await waitFor('watches resumed', () => requestsTo((r) => r.watch) >= watches + 3 && fake.openWatches() === 3, BOUND_MS);
  const lists = requestsTo((r) => !r.watch && r.path === '/api/v1/namespaces');
  fake.compact();
  fake.endWatches();
  await waitFor('relisted after 410', () => requestsTo((r) => !r.watch && r.path === '/api/v1/namespaces') > lists && fake.openWatches() === 3, BOUND_MS);
  await cache.stop();

  const used = [...new Set(fake.requests.map(requestGrant))].sort();
  const objects = renderKustomization(BASE);
  const role = objects.find((o) => o.kind === 'ClusterRole') as unknown as V1ClusterRole;
  const { grants, problems } = roleGrants(role);
  t.same(problems, [], 'no resourceNames, no nonResourceURLs, no wildcards');
  t.same(grants, used, 'the ClusterRole grants exactly the requests made');

  // Granted to the webhook's ServiceAccount, and only to it.
  const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as V1Deployment;
  const bindings = objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding') as unknown as V1ClusterRoleBinding[];
  t.equal(bindings.length, 1, 'one binding');
  t.same(bindings[0]?.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata?.name });
  t.same(bindings[0]?.subjects, [
    { kind: 'ServiceAccount', name: deployment.spec?.template.spec?.serviceAccountName, namespace: deployment.metadata?.namespace },
  ]);
  const account = objects.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === deployment.spec?.template.spec?.serviceAccountName) as
    KubeObject | undefined;
  t.equal(account?.metadata.namespace, deployment.metadata?.namespace);
  t.equal(objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').length, 1, 'one role');
});
