// Replicas of one template share one admission (webhook/replicas.ts): every replica's answer must be the answer a
// webhook that shares nothing gives it, byte for byte; a change of the template or of a cluster object it read must
// be seen at once; and the cache stays within its bounds whatever pods arrive.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { V1Namespace, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import fc from 'fast-check';
import t from 'tap';
import type { AdmissionRequest } from '../webhook/admission.js';
import type { Lookups } from '../webhook/lookups.js';
import { createMutator, type MutationResult } from '../webhook/mutate.js';
import { createReplicaCache, type ReplicaCache } from '../webhook/replicas.js';
import type { KubeVersion } from '../webhook/server-version.js';
import { applyResponse, loadReview, podCreateReview, type FixtureName } from './fixtures/admission-fixtures.js';
import { SETTINGS, validScenario } from './fixtures/arbitraries.js';
import { memoryLookups } from './fixtures/memory-lookups.js';
import { FIXTURE_CLIENT_ID, fixtureNamespaces, fixtureServiceAccounts, generatedSuffix, serviceAccount } from './fixtures/replica-cluster.js';

const CLIENT = FIXTURE_CLIENT_ID;
const OTHER_CLIENT = '5d0c7e9a-2b4f-4e61-8a3d-9c1b2e3f4a5b';

/** A cluster whose objects the test replaces, as an informer does on a watch event: a new object each time. */
class Cluster implements Lookups {
  readonly namespaces = new Map<string, V1Namespace>();
  readonly serviceAccounts = new Map<string, V1ServiceAccount>();
  reads = 0;

  constructor() {
    for (const namespace of fixtureNamespaces()) this.namespaces.set(namespace.metadata?.name ?? '', namespace);
    for (const sa of fixtureServiceAccounts()) this.serviceAccounts.set(`${sa.metadata?.namespace}/${sa.metadata?.name}`, sa);
  }

  setServiceAccount(namespace: string, name: string, clientId: string): void {
    this.serviceAccounts.set(`${namespace}/${name}`, serviceAccount(namespace, name, clientId));
  }

  async namespace(name: string): Promise<V1Namespace | undefined> {
    return this.namespaces.get(name);
  }
  async serviceAccount(namespace: string, name: string): Promise<V1ServiceAccount | undefined> {
    this.reads++;
    return this.serviceAccounts.get(`${namespace}/${name}`);
  }
  async secretProviderClass(): Promise<undefined> {
    return undefined;
  }
}

/** The next pod a controller makes from `template`: its own uid, name, owner, pod-template hash and token volume name. */
function replica(template: AdmissionRequest & { object: V1Pod }): AdmissionRequest & { object: V1Pod } {
  const request = structuredClone(template);
  const pod = request.object;
  request.uid = randomUUID();
  const metadata = pod.metadata ?? {};
  metadata.name = `${metadata.generateName ?? 'pod-'}${generatedSuffix(5)}`;
  metadata.labels = { ...metadata.labels, 'pod-template-hash': generatedSuffix(10) };
  for (const owner of metadata.ownerReferences ?? []) owner.uid = randomUUID();
  const old = pod.spec?.volumes?.find((v) => v.name.startsWith('kube-api-access-'))?.name;
  if (old !== undefined) {
    const fresh = `kube-api-access-${generatedSuffix(5)}`;
    for (const volume of pod.spec?.volumes ?? []) if (volume.name === old) volume.name = fresh;
    for (const container of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
      for (const mount of container.volumeMounts ?? []) if (mount.name === old) mount.name = fresh;
    }
  }
  return request;
}

/** The answer of a webhook that shares nothing: a fresh cache for this one request. */
const unshared = (cluster: Lookups, request: AdmissionRequest, settings = SETTINGS): Promise<MutationResult> =>
  createMutator(settings, cluster, createReplicaCache())(request);

/** What the API server and the logs get of a result, but whether it was shared. */
const answer = ({ shared: _, ...rest }: MutationResult): Omit<MutationResult, 'shared'> => rest;

interface Case {
  name: string;
  fixture: FixtureName;
  edit?: (pod: V1Pod) => void;
  /** Whether replicas share (false: the patch names the pod's own token volume). */
  shared: boolean;
  /** The vault URL's host the injection must carry, where the case is about it. */
  vaultHost?: RegExp;
}

const annotate = (pod: V1Pod, annotations: Record<string, string>): void => {
  pod.metadata = { ...pod.metadata, annotations: { ...pod.metadata?.annotations, ...annotations } };
};

const CASES: Case[] = [
  { name: 'a Deployment pod', fixture: 'deployment-pod', shared: true },
  { name: 'a StatefulSet pod (another cloud, from its namespace)', fixture: 'statefulset-pod', shared: true, vaultHost: /kv-shop\.vault\.usgovcloudapi\.net/ },
  { name: 'a Job pod', fixture: 'job-pod', shared: true },
  { name: 'a pod with a mesh init container, injected last', fixture: 'istio-pod', shared: true },
  { name: 'a pod of several containers, some named', fixture: 'multi-container-pod', shared: true },
  { name: 'a Windows pod', fixture: 'windows-pod', shared: true },
  { name: 'a pod with a refresh sidecar', fixture: 'deployment-pod', edit: (pod) => annotate(pod, { 'akv-injector.io/refresh-interval': '5m' }), shared: true },
  {
    name: 'a pod whose init container goes first, shifting its own (whose mounts name the token volume)',
    fixture: 'istio-pod',
    edit: (pod) => annotate(pod, { 'akv-injector.io/init-first': 'true' }),
    shared: false,
  },
  {
    name: 'a pod without a token volume (automountServiceAccountToken: false)',
    fixture: 'deployment-pod',
    edit: (pod) => {
      const spec = pod.spec as NonNullable<V1Pod['spec']>;
      spec.automountServiceAccountToken = false;
      spec.volumes = spec.volumes?.filter((v) => !v.name.startsWith('kube-api-access-'));
      for (const c of spec.containers) c.volumeMounts = c.volumeMounts?.filter((m) => !m.name.startsWith('kube-api-access-'));
    },
    shared: true,
  },
];

for (const c of CASES) {
  t.test(`replicas of ${c.name} get, each, the answer a webhook sharing nothing gives`, async (t) => {
    const cluster = new Cluster();
    const cache = createReplicaCache();
    const mutate = createMutator(SETTINGS, cluster, cache);
    const template = loadReview(c.fixture).request;
    c.edit?.(template.object);
    for (let i = 0; i < 4; i++) {
      const request = replica(template);
      const result = await mutate(request);
      if (c.vaultHost !== undefined) t.match(JSON.stringify(applyResponse(request.object, result.response)), c.vaultHost, `replica ${i}: the vault`);
      t.equal(result.outcome, 'injected', `replica ${i}: ${result.reason}`);
      t.same(answer(result), await unshared(cluster, request), `replica ${i}: the same answer, patch and warnings`);
      t.equal(result.shared, c.shared && i > 0 ? true : undefined, c.shared && i > 0 ? 'shared' : 'worked out');
      // The outcome, on the replica itself: its own token volume is still its own, and still mounted.
      const pod = applyResponse(request.object, result.response);
      const own = request.object.spec?.volumes?.find((v) => v.name.startsWith('kube-api-access-'))?.name;
      if (own !== undefined) {
        t.ok(pod.spec?.volumes?.some((v) => v.name === own));
        for (const container of pod.spec?.containers ?? [])
          t.ok(
            container.volumeMounts?.some((m) => m.name === own),
            `${container.name} mounts ${own}`,
          );
      }
      t.ok(pod.spec?.initContainers?.some((ic) => ic.name === 'akv-injector'));
    }
    t.equal(cache.size().templates, c.shared ? 1 : 0, c.shared ? 'one template kept' : 'nothing kept');
  });
}

t.test('a replica whose fields come in another order gets the same pod', async (t) => {
  const cluster = new Cluster();
  const mutate = createMutator(SETTINGS, cluster, createReplicaCache());
  const template = loadReview('multi-container-pod').request;
  await mutate(replica(template));
  const request = replica(template);
  request.object.spec = Object.fromEntries(Object.entries(request.object.spec ?? {}).reverse()) as unknown as V1Pod['spec'];
  const shared = await mutate(request);
  const own = await unshared(cluster, request);
  t.same(applyResponse(request.object, shared.response), applyResponse(request.object, own.response));
});

t.test('what the patch depends on is seen at once', async (t) => {
  const template = loadReview('deployment-pod').request;
  const clientIdOf = (result: MutationResult, request: AdmissionRequest & { object: V1Pod }): string | undefined =>
    applyResponse(request.object, result.response)
      .spec?.initContainers?.find((c) => c.name === 'akv-injector')
      ?.env?.find((e) => e.name === 'AZURE_CLIENT_ID')?.value;

  await t.test('a changed ServiceAccount', async (t) => {
    const cluster = new Cluster();
    const mutate = createMutator(SETTINGS, cluster, createReplicaCache());
    let request = replica(template);
    t.equal(clientIdOf(await mutate(request), request), CLIENT);
    cluster.setServiceAccount('shop', 'checkout', OTHER_CLIENT);
    request = replica(template);
    t.equal(clientIdOf(await mutate(request), request), OTHER_CLIENT);
  });

  await t.test('a changed namespace', async (t) => {
    const cluster = new Cluster();
    const mutate = createMutator(SETTINGS, cluster, createReplicaCache());
    const first = replica(template);
    await mutate(first);
    cluster.namespaces.set('shop', { metadata: { name: 'shop', annotations: { 'akv-injector.io/mount-path': '/etc/shop' } } });
    const request = replica(template);
    const result = await mutate(request);
    t.same(answer(result), await unshared(cluster, request));
    const mounts = applyResponse(request.object, result.response).spec?.containers[0]?.volumeMounts ?? [];
    t.ok(mounts.some((m) => m.name === 'akv-injector-secrets' && m.mountPath === '/etc/shop'));
  });

  await t.test("the API server's version, once known", async (t) => {
    const cluster = new Cluster();
    let version: KubeVersion = { major: 1, minor: 30, gitVersion: 'v1.30.4' };
    const settings = { ...SETTINGS, serverVersion: () => version };
    const mutate = createMutator(settings, cluster, createReplicaCache());
    const sidecar = structuredClone(template);
    sidecar.object.metadata = {
      ...sidecar.object.metadata,
      annotations: { ...sidecar.object.metadata?.annotations, 'akv-injector.io/refresh-interval': '5m' },
    };
    t.equal((await mutate(replica(sidecar))).outcome, 'injected');
    version = { major: 1, minor: 28, gitVersion: 'v1.28.9' };
    const request = replica(sidecar);
    const result = await mutate(request);
    t.same(answer(result), await unshared(cluster, request, settings));
    t.equal(result.outcome, 'denied', 'Kubernetes 1.28 has no native sidecars');
  });

  await t.test('another annotation, another template', async (t) => {
    const cluster = new Cluster();
    const mutate = createMutator(SETTINGS, cluster, createReplicaCache());
    await mutate(replica(template));
    const changed = structuredClone(template);
    changed.object.metadata = { ...changed.object.metadata, annotations: { ...changed.object.metadata?.annotations, 'akv-injector.io/vault': 'kv-other' } };
    const request = replica(changed);
    const result = await mutate(request);
    t.same(answer(result), await unshared(cluster, request));
    t.match(JSON.stringify(applyResponse(request.object, result.response)), /kv-other\.vault\.azure\.net/);
  });

  await t.test('an environment value naming the token volume: that pod is its own', async (t) => {
    const cluster = new Cluster();
    const cache = createReplicaCache();
    const mutate = createMutator(SETTINGS, cluster, cache);
    for (let i = 0; i < 3; i++) {
      const request = replica(template);
      const own = request.object.spec?.volumes?.find((v) => v.name.startsWith('kube-api-access-'))?.name ?? '';
      request.object.spec?.containers[0]?.env?.push({ name: 'TOKEN_VOLUME', value: own });
      t.same(answer(await mutate(request)), await unshared(cluster, request));
    }
  });
});

t.test('a hit reads the cluster objects again, and only those', async (t) => {
  const cluster = new Cluster();
  const mutate = createMutator(SETTINGS, cluster, createReplicaCache());
  const template = loadReview('deployment-pod').request;
  await mutate(replica(template));
  const before = cluster.reads;
  await mutate(replica(template));
  t.equal(cluster.reads - before, 1, 'the ServiceAccount, compared by identity');
});

t.test('the cache stays within its bounds', async (t) => {
  const cluster = new Cluster();
  const fill = async (cache: ReplicaCache, count: number): Promise<void> => {
    const mutate = createMutator(SETTINGS, cluster, cache);
    for (let i = 0; i < count; i++) {
      const template = loadReview('deployment-pod').request;
      template.object.metadata = {
        ...template.object.metadata,
        annotations: { ...template.object.metadata?.annotations, 'app.kubernetes.io/version': `v${i}` },
      };
      t.equal((await mutate(replica(template))).outcome, 'injected');
    }
  };
  const byCount = createReplicaCache({ maxTemplates: 3, maxValues: 1_000_000, maxValuesPerTemplate: 10_000, maxBodyBytes: 1 << 30 });
  await fill(byCount, 10);
  t.equal(byCount.size().templates, 3);
  const one = createReplicaCache();
  await fill(one, 1);
  const perTemplateValues = one.size().values;
  const byValues = createReplicaCache({
    maxTemplates: 1000,
    maxValues: Math.floor(2.5 * perTemplateValues),
    maxValuesPerTemplate: 10_000,
    maxBodyBytes: 1 << 30,
  });
  await fill(byValues, 10);
  t.same(byValues.size(), { templates: 2, values: 2 * perTemplateValues });
  const perTemplate = createReplicaCache({ maxTemplates: 1000, maxValues: 1_000_000, maxValuesPerTemplate: 20, maxBodyBytes: 1 << 30 });
  await fill(perTemplate, 2);
  t.same(perTemplate.size(), { templates: 0, values: 0 });
});

t.test('a pod nested a million levels deep is answered, and not kept', async (t) => {
  const cluster = new Cluster();
  const cache = createReplicaCache();
  const mutate = createMutator(SETTINGS, cluster, cache);
  const request = replica(loadReview('deployment-pod').request);
  const deep = JSON.parse(`${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`) as unknown;
  (request.object.spec as unknown as Record<string, unknown>).affinity = { nodeAffinity: { deep } };
  t.equal((await mutate(request)).outcome, 'injected');
  const next = replica(loadReview('deployment-pod').request);
  (next.object.spec as unknown as Record<string, unknown>).affinity = { nodeAffinity: { deep } };
  t.equal((await mutate(next)).outcome, 'injected');
  t.same(cache.size(), { templates: 0, values: 0 });
});

t.test('any valid pod and configuration: every replica gets the answer a webhook sharing nothing gives', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(validScenario(), validScenario({ refresh: true })), async (s) => {
      const lookups = memoryLookups(s.cluster);
      const settings = SETTINGS;
      const mutate = createMutator(settings, lookups, createReplicaCache());
      const template = podCreateReview(randomUUID(), s.namespace, withTokenVolume(s.pod)).request as AdmissionRequest & { object: V1Pod };
      for (let i = 0; i < 3; i++) {
        const request = replica(template);
        assert.deepEqual(answer(await mutate(request)), await unshared(lookups, request, settings), `replica ${i}`);
      }
    }),
    { numRuns: 100, seed: 11_2026 },
  );
  t.pass('held for 100 scenarios');
});

/** `pod` as the ServiceAccount admission plugin leaves it: a kube-api-access volume, mounted into every container. */
function withTokenVolume(pod: V1Pod): V1Pod {
  const copy = structuredClone(pod);
  const spec = copy.spec as NonNullable<V1Pod['spec']>;
  const name = `kube-api-access-${generatedSuffix(5)}`;
  spec.volumes = [...(spec.volumes ?? []), { name, projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } }];
  for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
    container.volumeMounts = [...(container.volumeMounts ?? []), { name, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }];
  }
  return copy;
}
