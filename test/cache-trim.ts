// The caches keep only what the webhook reads: every admission decides the same over trimmed objects
// as over the objects the API server sent.
import type { V1Namespace, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import t from 'tap';
import { CLOUDS } from '../src/clouds.js';
import { trimNamespace, trimSecretProviderClass, trimServiceAccount } from '../webhook/cache-trim.js';
import type { SecretProviderClass } from '../webhook/lookups.js';
import { createMutator } from '../webhook/mutate.js';
import type { WebhookSettings } from '../webhook/settings.js';
import { loadReview } from './fixtures/admission-fixtures.js';
import { memoryLookups, type MemoryCluster } from './fixtures/memory-lookups.js';

const CLIENT = '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01';
const SETTINGS: WebhookSettings = { image: 'ghcr.io/akv-injector/akv-injector:0.1.0', cloud: CLOUDS.AzurePublicCloud, namespace: 'akv-injector' };
const noise = { 'kubectl.kubernetes.io/last-applied-configuration': '{"a":1}', 'example.com/owner': 'team' };
const list = '[{"objectName": "db-password", "objectType": "secret"}]';

const namespaces: V1Namespace[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', uid: 'u1', labels: { 'kubernetes.io/metadata.name': 'shop' }, annotations: noise } },
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: 'team',
      labels: { 'akv-injector.io/inject': 'enabled', env: 'prod' },
      annotations: {
        ...noise,
        'akv-injector.io/vault': 'kv-team',
        'akv-injector.io/objects': list,
        'akv-injector.io/cloud': 'AzureChinaCloud',
        'akv-injector.io/mount-path': '/etc/team',
      },
    },
  },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'legacy', annotations: { 'akv-injector.io/tenant-id': 'contoso.onmicrosoft.com' } } },
];
const serviceAccounts: V1ServiceAccount[] = ['shop', 'team', 'legacy'].flatMap((namespace) => [
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { namespace, name: 'default', annotations: { ...noise } }, secrets: [{ name: 'token' }] },
  {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      namespace,
      name: 'checkout',
      labels: { 'azure.workload.identity/use': 'true' },
      annotations: { ...noise, 'azure.workload.identity/client-id': CLIENT, 'azure.workload.identity/tenant-id': '72f988bf-86f1-41af-91ab-2d7cd011db47' },
    },
  },
]);
const secretProviderClasses: SecretProviderClass[] = [
  {
    apiVersion: 'secrets-store.csi.x-k8s.io/v1',
    kind: 'SecretProviderClass',
    metadata: { namespace: 'legacy', name: 'csi', resourceVersion: '7' },
    spec: {
      provider: ' azure ',
      parameters: {
        keyvaultName: ' kv-legacy ',
        clientID: CLIENT,
        tenantId: 'legacy.onmicrosoft.com',
        tenantID: '',
        cloudName: 'AzureCloud',
        usePodIdentity: 'false',
        useVMManagedIdentity: 'False',
        objects: 'array:\n  - |\n    objectName: legacy\n    objectType: secret\n',
        cloudEnvFileName: '/etc/x',
        resourceGroup: 'rg',
      },
      secretObjects: [{ secretName: 'synced', type: 'Opaque' }],
    },
  },
  {
    metadata: { namespace: 'legacy', name: 'pod-identity' },
    spec: { provider: 'azure', parameters: { keyvaultName: 'kv', usePodIdentity: 'true', objects: list } },
  },
  {
    metadata: { namespace: 'legacy', name: 'token-proxy' },
    spec: { provider: 'azure', parameters: { keyvaultName: 'kv', useAzureTokenProxy: 'yes', objects: list } },
  },
  { metadata: { namespace: 'legacy', name: 'gcp' }, spec: { provider: 'gcp', parameters: { secrets: 'x' } } },
  {
    metadata: { namespace: 'legacy', name: 'too-long' },
    spec: { provider: 'azure', parameters: { keyvaultName: 'kv', objects: `# ${'x'.repeat(200_000)}\n${list}` } },
  },
];

const full: MemoryCluster = { namespaces, serviceAccounts, secretProviderClasses };
const trimmed: MemoryCluster = {
  namespaces: namespaces.map(trimNamespace),
  serviceAccounts: serviceAccounts.map(trimServiceAccount),
  secretProviderClasses: secretProviderClasses.map(trimSecretProviderClass),
};

const pods: Array<{ name: string; namespace: string; annotations: Record<string, string>; serviceAccountName?: string }> = [
  {
    name: 'annotated',
    namespace: 'shop',
    serviceAccountName: 'checkout',
    annotations: { 'akv-injector.io/inject': 'true', 'akv-injector.io/vault': 'kv-shop', 'akv-injector.io/objects': list },
  },
  {
    name: 'no identity',
    namespace: 'shop',
    annotations: { 'akv-injector.io/inject': 'true', 'akv-injector.io/vault': 'kv-shop', 'akv-injector.io/objects': list },
  },
  { name: 'namespace defaults', namespace: 'team', serviceAccountName: 'checkout', annotations: {} },
  { name: 'namespace defaults, pod opts out', namespace: 'team', serviceAccountName: 'checkout', annotations: { 'akv-injector.io/inject': 'false' } },
  ...['csi', 'pod-identity', 'token-proxy', 'gcp', 'too-long', 'missing'].map((spc) => ({
    name: `SPC ${spc}`,
    namespace: 'legacy',
    annotations: { 'akv-injector.io/inject': 'true', 'akv-injector.io/secret-provider-class': spc },
  })),
];

t.test('every admission decides the same over the trimmed caches', async (t) => {
  const overFull = createMutator(SETTINGS, memoryLookups(full));
  const overTrimmed = createMutator(SETTINGS, memoryLookups(trimmed));
  for (const pod of pods) {
    const review = loadReview('deployment-pod');
    review.request.namespace = pod.namespace;
    const object: V1Pod = review.request.object;
    object.metadata = { ...object.metadata, namespace: pod.namespace, annotations: pod.annotations };
    object.spec!.serviceAccountName = pod.serviceAccountName;
    const expected = await overFull(review.request);
    t.same(await overTrimmed(review.request), expected, `${pod.name}: ${expected.outcome} (${expected.reason})`);
  }
});

t.test('what is kept', async (t) => {
  t.same(trimmed.namespaces?.[1], {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: 'team',
      labels: { 'akv-injector.io/inject': 'enabled' },
      annotations: {
        'akv-injector.io/vault': 'kv-team',
        'akv-injector.io/objects': list,
        'akv-injector.io/cloud': 'AzureChinaCloud',
        'akv-injector.io/mount-path': '/etc/team',
      },
    },
  });
  t.same(trimmed.serviceAccounts?.[0], { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { namespace: 'shop', name: 'default' } });
  const spc = (trimmed.secretProviderClasses as SecretProviderClass[])[0];
  t.same(spc?.spec?.parameters && Object.keys(spc.spec.parameters), [
    'keyvaultName',
    'clientID',
    'tenantId',
    'tenantID',
    'cloudName',
    'usePodIdentity',
    'useVMManagedIdentity',
    'objects',
  ]);
  t.equal(
    (trimmed.secretProviderClasses as SecretProviderClass[])[4]?.spec?.parameters?.objects?.length,
    64 * 1024 + 1,
    'a value over the limit is cut one past it',
  );
  t.same(
    trimSecretProviderClass({ metadata: { name: 'odd' }, spec: { provider: 7, parameters: 'x', secretObjects: 'y' } as never }),
    { metadata: { name: 'odd' }, spec: {} },
    'odd types are dropped, not kept',
  );
});
