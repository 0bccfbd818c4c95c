// The refresh sidecar on the webhook's side (issue 12): the annotation checked, the API server's version read once at
// start through the real client against the fake API server, the injected pod valid, idempotent, and refusals that say why.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { createLogger } from '../src/log.js';
import type { AdmissionResponse } from '../webhook/admission.js';
import { createClusterCache } from '../webhook/cluster-cache.js';
import { createMutator, type Mutator } from '../webhook/mutate.js';
import { renderManifests } from '../webhook/render.js';
import { parseKubeVersion, readServerVersion, supportsNativeSidecars } from '../webhook/server-version.js';
import { applyResponse, loadReview } from './fixtures/admission-fixtures.js';
import { SETTINGS } from './fixtures/arbitraries.js';
import { startFakeApiServer, type FakeApiServer } from './fixtures/fake-apiserver.js';
import { podViolations } from './fixtures/pod-rules.js';
import { podSecurityViolations } from './fixtures/pod-security.js';
import { waitFor } from './fixtures/wait-for.js';
import { seedShop } from './fixtures/webhook-process.js';

const quiet = createLogger('webhook', undefined, 'silent');
const REFRESH = 'akv-injector.io/refresh-interval';

/** The real cache and version reader against a fake API server of `version`, ready: what the webhook's main wires. */
async function webhookAgainst(t: Test, version?: { major: string; minor: string; gitVersion: string }): Promise<{ mutate: Mutator; fake: FakeApiServer }> {
  const fake = await startFakeApiServer(version ? { version } : {});
  seedShop(fake);
  const cache = createClusterCache(fake.kubeConfig(), { logger: quiet });
  const serverVersion = readServerVersion(fake.kubeConfig(), { logger: quiet });
  t.teardown(async () => {
    serverVersion.stop();
    await cache.stop();
    await fake.close();
  });
  cache.start();
  await waitFor('synced and the version read', () => cache.synced() && serverVersion.current() !== undefined);
  return { mutate: createMutator({ ...SETTINGS, serverVersion: serverVersion.current }, cache), fake };
}

function withInterval(value: string | undefined): ReturnType<typeof loadReview>['request'] {
  const review = loadReview('deployment-pod');
  const annotations = review.request.object.metadata?.annotations as Record<string, string>;
  if (value !== undefined) annotations[REFRESH] = value;
  return review.request;
}

function injected(pod: V1Pod, response: AdmissionResponse): V1Pod {
  if (!response.allowed) throw new Error(`denied: ${response.status?.message}`);
  return applyResponse(pod, response);
}

t.test('the sidecar runs right after the fetch, valid for the schema, the API server and restricted pod security; once', async (t) => {
  const { mutate, fake } = await webhookAgainst(t);
  const request = withInterval('90s');
  const pod = request.object as V1Pod;
  const after = injected(pod, (await mutate(request)).response);
  const inits = after.spec?.initContainers ?? [];
  const at = inits.findIndex((c) => c.name === 'akv-injector');
  const fetch = inits[at] as V1Container;
  const sidecar = inits[at + 1] as V1Container;
  t.equal(sidecar.name, 'akv-injector-refresh');
  t.equal(sidecar.restartPolicy, 'Always');
  t.same(sidecar.args, ['refresh']);
  t.equal(sidecar.image, fetch.image);
  t.same(sidecar.env, [...(fetch.env ?? []), { name: 'AKV_INJECTOR_REFRESH_INTERVAL', value: '90s' }]);
  t.same(sidecar.securityContext, fetch.securityContext);
  t.same(sidecar.volumeMounts, fetch.volumeMounts, 'the token read-only, the secrets read-write');
  t.match(sidecar.resources, { requests: { cpu: String, memory: String }, limits: { memory: String } });
  t.equal(fetch.restartPolicy, undefined, 'the fetch stays a plain init container: it completes before the apps start');
  t.same(podViolations(after), []);
  // The fixture's app container is not restricted; what akv-injector adds is.
  t.same(
    podSecurityViolations(after, 'restricted').filter((v) => v.includes('akv-injector')),
    [],
  );
  const tokenMounts = [...inits, ...(after.spec?.containers ?? [])].filter((c) => (c.volumeMounts ?? []).some((m) => m.name === 'akv-injector-token'));
  t.same(
    tokenMounts.map((c) => c.name),
    ['akv-injector', 'akv-injector-refresh'],
    'the token is mounted only into the fetch and the sidecar',
  );

  const again = await mutate({ ...request, object: after });
  t.same(again.response.patch, undefined, 'an injected pod is left as it is');
  t.equal(fake.requests.filter((r) => r.path === '/version').length, 1, 'the version was read once');
});

t.test('an interval out of range, from the pod or the namespace: denied with 400, naming the annotation and the range', async (t) => {
  const { mutate, fake } = await webhookAgainst(t);
  for (const value of ['10s', '29s', '25h', '0', 'soon', '1d', '9'.repeat(5000)]) {
    const result = await mutate(withInterval(value));
    t.equal(result.response.allowed, false, value.slice(0, 10));
    t.equal(result.response.status?.code, 400);
    t.match(result.response.status?.message, `annotation ${REFRESH} on the pod: `);
    t.match(result.response.status?.message, 'must be a duration from 30s to 24h, such as 90s, 2m or 1h');
    t.ok((result.response.status?.message?.length ?? 0) < 1000, 'the value is not echoed whole');
  }
  fake.upsert('namespaces', { metadata: { name: 'shop', annotations: { [REFRESH]: '5s' } } });
  await waitFor('the namespace default seen', async () => (await mutate(withInterval(undefined))).response.allowed === false);
  t.match((await mutate(withInterval(undefined))).response.status?.message, `annotation ${REFRESH} on namespace shop: "5s" must be a duration from 30s`);
  t.equal((await mutate(withInterval('30s'))).response.allowed, true, 'the pod wins');
  t.equal((await mutate(withInterval('24h'))).response.allowed, true);
});

t.test('an API server older than 1.29: refresh denied saying why; pods without it are injected as before', async (t) => {
  const { mutate } = await webhookAgainst(t, { major: '1', minor: '28+', gitVersion: 'v1.28.9-eks-036c24b' });
  const denied = await mutate(withInterval('2m'));
  t.equal(denied.response.allowed, false);
  t.equal(denied.response.status?.code, 400);
  t.match(
    denied.response.status?.message,
    `annotation ${REFRESH} on the pod: the refresh sidecar is a native sidecar (an init container with restartPolicy: Always), which needs Kubernetes 1.29 or later; this API server is v1.28.9-eks-036c24b: remove the annotation, or upgrade the cluster`,
  );
  t.equal((await mutate(withInterval(undefined))).outcome, 'injected');
});

t.test('the API server version as managed clusters report it', async (t) => {
  t.same(parseKubeVersion({ major: '1', minor: '29+', gitVersion: 'v1.29.3-gke.1' }), { major: 1, minor: 29, gitVersion: 'v1.29.3-gke.1' });
  t.same(parseKubeVersion({ major: '', minor: '', gitVersion: 'v1.30.0' }), { major: 1, minor: 30, gitVersion: 'v1.30.0' });
  t.equal(parseKubeVersion({ major: 1, minor: {}, gitVersion: 'nonsense' }), undefined);
  t.equal(parseKubeVersion({}), undefined);
  t.ok(supportsNativeSidecars({ major: 1, minor: 29, gitVersion: '' }));
  t.ok(supportsNativeSidecars({ major: 2, minor: 0, gitVersion: '' }));
  t.notOk(supportsNativeSidecars({ major: 1, minor: 28, gitVersion: '' }));
});

t.test('render shows the sidecar (offline, with no API server to ask)', async (t) => {
  const { metadata, spec } = loadReview('deployment-pod').request.object;
  (metadata?.annotations as Record<string, string>)[REFRESH] = '1h';
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...metadata, name: 'checkout', namespace: 'shop' }, spec };
  const result = await renderManifests(JSON.stringify(pod), {
    settings: SETTINGS,
    namespace: 'shop',
    serviceAccountAnnotations: { 'azure.workload.identity/client-id': '8f1c2b7a-3d4e-4f5a-9b6c-7d8e9f0a1b2c' },
  });
  t.same(result.problems, []);
  const rendered = parse(result.output) as V1Pod;
  const sidecar = rendered.spec?.initContainers?.find((c) => c.name === 'akv-injector-refresh');
  t.match(sidecar, { restartPolicy: 'Always', args: ['refresh'], env: [{ name: 'AZURE_CLIENT_ID' }] });
  t.match(sidecar?.env?.at(-1), { name: 'AKV_INJECTOR_REFRESH_INTERVAL', value: '3600s' });
});
