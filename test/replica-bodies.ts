// Replicas told by their bytes (webhook/imprint.ts, replicas.ts): a body equal to a kept template's but where the API
// server gives each replica its own values is answered without being parsed, and that answer must be, byte for byte,
// the one a webhook that shares nothing gives it; every other body must go the whole way.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import t from 'tap';
import { createLogger } from '../src/log.js';
import { decodeReview, serializeReview, summarize, type AdmissionRequest, type AdmissionReview, type AdmissionSummary } from '../webhook/admission.js';
import { hintOf, imprint, matchImprint, MAX_IMPRINT_BYTES, MAX_PLACE_BYTES } from '../webhook/imprint.js';
import type { Lookups } from '../webhook/lookups.js';
import { createMetrics } from '../webhook/metrics.js';
import { createMutator, type MutationResult, type Mutator } from '../webhook/mutate.js';
import { createReplicaCache, DEFAULT_REPLICA_CACHE } from '../webhook/replicas.js';
import { buildApp } from '../webhook/server.js';
import { FIXTURES, loadReview, type FixtureName } from './fixtures/admission-fixtures.js';
import { SETTINGS } from './fixtures/arbitraries.js';
import { memoryLookups, type MemoryCluster } from './fixtures/memory-lookups.js';
import { FIXTURE_CLIENT_ID, fixtureNamespaces, fixtureServiceAccounts, generatedSuffix, serviceAccount } from './fixtures/replica-cluster.js';

type Review = AdmissionReview & { request: AdmissionRequest & { object: V1Pod } };

const CLIENT = FIXTURE_CLIENT_ID;

/** The fixtures' namespaces and ServiceAccounts; tests replace objects, as an informer does on a watch event. */
function cluster(): MemoryCluster & Required<Pick<MemoryCluster, 'namespaces' | 'serviceAccounts'>> {
  return { namespaces: fixtureNamespaces(), serviceAccounts: fixtureServiceAccounts() };
}

/**
 * The next pod a controller makes from `template`, as the API server sends it: every value it gives each pod fresh
 * (uids, names, labels, owner, timestamps, the token volume's name), every key where it was.
 */
function replicaOf(template: Review): Review {
  const review = structuredClone(template);
  const { request } = review;
  request.uid = randomUUID();
  if (request.userInfo?.uid !== undefined) request.userInfo.uid = randomUUID();
  const metadata = request.object.metadata ?? {};
  if (metadata.generateName !== undefined) metadata.generateName = `app-${generatedSuffix(9)}-`;
  if (metadata.name !== undefined) metadata.name = `app-${generatedSuffix(2)}`;
  if (typeof request.name === 'string') request.name = metadata.name ?? `app-${generatedSuffix(2)}`;
  for (const key of Object.keys(metadata.labels ?? {})) (metadata.labels as Record<string, string>)[key] = generatedSuffix(10);
  for (const owner of metadata.ownerReferences ?? []) {
    owner.uid = randomUUID();
    owner.name = `app-${generatedSuffix(9)}`;
  }
  for (const entry of metadata.managedFields ?? []) if (entry.time !== undefined) (entry as { time: unknown }).time = new Date().toISOString();
  const spec = request.object.spec as NonNullable<V1Pod['spec']>;
  const old = spec.volumes?.find((v) => v.name.startsWith('kube-api-access-'))?.name;
  const fresh = `kube-api-access-${generatedSuffix(5)}`;
  for (const volume of spec.volumes ?? []) if (volume.name === old) volume.name = fresh;
  for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
    for (const mount of container.volumeMounts ?? []) if (mount.name === old) mount.name = fresh;
  }
  return review;
}

const bodyOf = (review: AdmissionReview): Buffer => Buffer.from(JSON.stringify(review));

/** What a webhook sharing nothing answers a body with: the AdmissionReview it sends, the log line's names, the result. */
async function unshared(lookups: Lookups, body: Buffer): Promise<{ review: string; summary: AdmissionSummary; result: MutationResult }> {
  const decoded = decodeReview(JSON.parse(body.toString('utf8')));
  if (!decoded.ok) throw new Error(decoded.message);
  const { request } = decoded;
  const result = await createMutator(SETTINGS, lookups, createReplicaCache())(request);
  return { review: serializeReview({ ...result.response, uid: request.uid }), summary: summarize(request), result };
}

/** The whole way, as server.ts goes it: parsed, then the mutator, which keeps the template with its body. */
async function admitParsed(mutate: Mutator, body: Buffer): Promise<MutationResult> {
  const decoded = decodeReview(JSON.parse(body.toString('utf8')));
  if (!decoded.ok) throw new Error(decoded.message);
  return mutate(decoded.request, body);
}

for (const fixture of FIXTURES) {
  t.test(`replicas of the ${fixture} fixture, told by their bytes, get the answer a webhook sharing nothing gives`, async (t) => {
    const lookups = memoryLookups(cluster());
    const mutate = createMutator(SETTINGS, lookups, createReplicaCache());
    const template = loadReview(fixture);
    const first = bodyOf(replicaOf(template));
    t.equal(await mutate.replica?.(first), undefined, 'nothing kept yet');
    t.equal((await admitParsed(mutate, first)).outcome, 'injected');
    for (let i = 0; i < 5; i++) {
      const body = bodyOf(replicaOf(template));
      const replica = await mutate.replica?.(body);
      const own = await unshared(lookups, body);
      if (replica === undefined) return void t.fail(`replica ${i} not recognized`);
      t.equal(replica.review, own.review, `replica ${i}: the same AdmissionReview, byte for byte`);
      t.same(replica.summary, own.summary, `replica ${i}: the log line names its own uid and pod`);
      t.same(replica.result, { ...own.result, shared: true }, `replica ${i}: outcome, reason and response, shared`);
    }
  });
}

/** A body that must go the whole way: what is edited, on the replica or on its bytes. */
interface Edit {
  name: string;
  review?: (review: Review) => void;
  bytes?: (text: string) => string;
}

const spec = (review: Review): NonNullable<V1Pod['spec']> => review.request.object.spec as NonNullable<V1Pod['spec']>;
const annotations = (review: Review): Record<string, string> => review.request.object.metadata?.annotations as Record<string, string>;
const labels = (review: Review): Record<string, string> => review.request.object.metadata?.labels as Record<string, string>;

const EDITS: Edit[] = [
  { name: 'an annotation value', review: (r) => void (annotations(r)['akv-injector.io/vault'] = 'kv-other') },
  { name: 'an annotation more', review: (r) => void (annotations(r)['akv-injector.io/mount-path'] = '/etc/other') },
  { name: 'a container image', review: (r) => void ((spec(r).containers[0] as { image: string }).image = 'example.com/other:1') },
  { name: "the pod's ServiceAccount", review: (r) => void (spec(r).serviceAccountName = 'reports') },
  { name: "the request's namespace", review: (r) => void (r.request.namespace = r.request.namespace === 'finance' ? 'shop' : 'finance') },
  { name: 'the operation', review: (r) => void (r.request.operation = 'UPDATE') },
  { name: 'dryRun', review: (r) => void (r.request.dryRun = true) },
  { name: 'a label more', review: (r) => void (labels(r)['team'] = 'payments') },
  { name: 'a label value with a quote', review: (r) => void (labels(r)['app'] = 'say "hi"') },
  { name: 'a label value with a non-ASCII letter', review: (r) => void (labels(r)['app'] = 'café') },
  { name: 'a label value longer than a place holds', review: (r) => void (labels(r)['app'] = 'x'.repeat(300)) },
  { name: 'the username', review: (r) => void ((r.request.userInfo as { username: string }).username = 'system:admin') },
  {
    name: 'the token volume renamed in one place only',
    review: (r) => {
      const volume = spec(r).volumes?.find((v) => v.name.startsWith('kube-api-access-'));
      if (volume) volume.name = 'kube-api-access-zzzzz';
    },
  },
  {
    name: 'a token volume name off its pattern',
    bytes: (text) => text.replace(/kube-api-access-[a-z0-9]{5}/g, 'kube-api-access-ABCDE'),
  },
  { name: 'an empty uid', bytes: (text) => text.replace(/"uid":"[^"]*"/, '"uid":""') },
  { name: 'a uid with an escape', bytes: (text) => text.replace(/"uid":"([^"]*)"/, '"uid":"\\u0061$1"') },
  { name: 'a space after the first colon', bytes: (text) => text.replace(':', ': ') },
  { name: 'a newline at the end', bytes: (text) => `${text}\n` },
  { name: 'the last byte gone', bytes: (text) => text.slice(0, -1) },
  { name: 'a second uid at the end of the request', bytes: (text) => text.replace(/"options":/, '"uid":"d9a6b0c2-0000-4000-8000-000000000000","options":') },
  { name: "an annotation's key written with an escape (the same key)", bytes: (text) => text.replace('akv-injector.io/inject', 'akv-injector.io\\/inject') },
];

t.test('a body that differs from its template anywhere else goes the whole way, and gets its own answer', async (t) => {
  for (const fixture of ['deployment-pod', 'statefulset-pod', 'istio-pod'] as const satisfies readonly FixtureName[]) {
    const lookups = memoryLookups(cluster());
    const template = loadReview(fixture);
    for (const edit of EDITS) {
      const mutate = createMutator(SETTINGS, lookups, createReplicaCache());
      await admitParsed(mutate, bodyOf(replicaOf(template)));
      const review = replicaOf(template);
      edit.review?.(review);
      const text = JSON.stringify(review);
      const body = Buffer.from(edit.bytes?.(text) ?? text);
      t.equal(await mutate.replica?.(body), undefined, `${fixture}, ${edit.name}: not recognized`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        continue;
      }
      const decoded = decodeReview(parsed);
      if (!decoded.ok) continue;
      const answer = await mutate(decoded.request, body);
      t.equal(
        serializeReview({ ...answer.response, uid: decoded.request.uid }),
        (await unshared(lookups, body)).review,
        `${fixture}, ${edit.name}: its own answer`,
      );
    }
  }
});

t.test("the pod's own namespace, where the request names none, is not a place replicas may differ in", async (t) => {
  const lookups = memoryLookups(cluster());
  const mutate = createMutator(SETTINGS, lookups, createReplicaCache());
  const template = loadReview('deployment-pod');
  template.request.namespace = '';
  template.request.object.metadata = { namespace: 'shop', ...template.request.object.metadata };
  await admitParsed(mutate, bodyOf(replicaOf(template)));
  t.ok(await mutate.replica?.(bodyOf(replicaOf(template))), 'a replica in the same namespace is recognized');
  const elsewhere = replicaOf(template);
  (elsewhere.request.object.metadata as { namespace: string }).namespace = 'finance';
  const body = bodyOf(elsewhere);
  t.equal(await mutate.replica?.(body), undefined, 'one in another namespace is not');
  const result = await admitParsed(mutate, body);
  t.equal(serializeReview({ ...result.response, uid: elsewhere.request.uid }), (await unshared(lookups, body)).review);
});

t.test('any byte of a replica changed, added or taken out: recognized only as the same admission', async (t) => {
  const lookups = memoryLookups(cluster());
  const template = loadReview('multi-container-pod');
  const mutate = createMutator(SETTINGS, lookups, createReplicaCache());
  await admitParsed(mutate, bodyOf(replicaOf(template)));
  const base = bodyOf(replicaOf(template));
  // Anywhere, and more often at the places replicas differ in and the bytes around them.
  const parsed = JSON.parse(base.toString()) as Review;
  const token = spec(parsed).volumes?.find((v) => v.name.startsWith('kube-api-access-'))?.name;
  const spans = imprint(base, parsed.request.uid, token)?.spans ?? [];
  const edges: number[] = [];
  for (let i = 0; i < spans.length; i += 3) for (const at of [spans[i] as number, spans[i + 1] as number]) edges.push(at - 2, at - 1, at, at + 1);
  t.equal(edges.length / 8, 10, "the places: two uids, generateName, a label, the owner's name and uid, the token volume's name in four places");
  let recognized = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.nat({ max: base.length - 1 }), fc.constantFrom(...edges)),
      fc.integer({ min: 0x20, max: 0xff }),
      fc.constantFrom('replace', 'insert', 'delete'),
      async (at, byte, how) => {
        const body =
          how === 'replace'
            ? Buffer.concat([base.subarray(0, at), Buffer.of(byte), base.subarray(at + 1)])
            : how === 'insert'
              ? Buffer.concat([base.subarray(0, at), Buffer.of(byte), base.subarray(at)])
              : Buffer.concat([base.subarray(0, at), base.subarray(at + 1)]);
        const replica = await mutate.replica?.(body);
        if (replica === undefined) return;
        recognized++;
        // Recognized: then it parses, and it is the same admission for its own uid and names.
        const own = await unshared(lookups, body);
        t.equal(replica.review, own.review);
        t.same(replica.summary, own.summary);
      },
    ),
    { numRuns: 1000, seed: 30_11_2026 },
  );
  t.ok(recognized > 0, `${recognized} of 1000 edited bodies were still replicas (a letter of a uid, a name or a label)`);
});

t.test('a template its replicas cannot be told from is not imprinted, and they go the whole way', async (t) => {
  const template = loadReview('deployment-pod');
  const tokenVolume = spec(template).volumes?.find((v) => v.name.startsWith('kube-api-access-'))?.name;
  const { uid } = template.request;
  const text = JSON.stringify(template);
  const cases: Array<[string, string]> = [
    ['a key with an escape', text.replace('"generateName"', '"generate\\u004eame"')],
    ['a key twice in one object', text.replace('"namespace":"shop"', '"namespace":"shop","namespace":"shop"')],
    ['a uid with an escape', text.replace(`"uid":"${uid}"`, `"uid":"\\u00${uid.charCodeAt(0).toString(16)}${uid.slice(1)}"`)],
    [
      'a body over the size bound',
      text.replace('"akv-injector.io/inject":"true"', `"akv-injector.io/inject":"true","note":"${'n'.repeat(MAX_IMPRINT_BYTES)}"`),
    ],
    ['a body nested too deep', text.replace('"options":', `"deep":${'['.repeat(100)}${']'.repeat(100)},"options":`)],
  ];
  for (const [name, edited] of cases) {
    const parsed = JSON.parse(edited) as Review;
    t.equal(imprint(Buffer.from(edited), parsed.request.uid, tokenVolume), undefined, name);
  }
  const kept = imprint(Buffer.from(text), uid, tokenVolume);
  t.ok(kept, 'the fixture itself is imprinted');
  if (kept !== undefined)
    t.same(
      matchImprint(kept, Buffer.from(text)),
      { uid, names: [undefined, undefined, template.request.object.metadata?.generateName] },
      'and its own body matches it',
    );
  t.equal(imprint(Buffer.from(text), 'another-uid', tokenVolume), undefined, 'a uid not the one parsed: not imprinted');
  const longLabel = Buffer.from(text.replace('"app":"checkout"', `"app":"${'c'.repeat(MAX_PLACE_BYTES + 1)}"`));
  const withLong = imprint(longLabel, uid, tokenVolume);
  t.equal((withLong?.spans.length ?? 0) / 3, (kept?.spans.length ?? 0) / 3 - 1, 'a value longer than a place holds is fixed bytes');
  if (withLong !== undefined) t.ok(matchImprint(withLong, longLabel), 'and a body with the same value matches');

  // Through the mutator: the structural cache still shares the patch, and every answer is a sharing-nothing one.
  const lookups = memoryLookups(cluster());
  const mutate = createMutator(SETTINGS, lookups, createReplicaCache());
  const escaped = (review: Review): Buffer => Buffer.from(JSON.stringify(review).replace('"generateName"', '"generate\\u004eame"'));
  await admitParsed(mutate, escaped(replicaOf(template)));
  const body = escaped(replicaOf(template));
  t.equal(await mutate.replica?.(body), undefined);
  const result = await admitParsed(mutate, body);
  t.equal(result.shared, true, 'shared by the parsed pod');
  t.equal(serializeReview({ ...result.response, uid: (JSON.parse(body.toString()) as Review).request.uid }), (await unshared(lookups, body)).review);
});

t.test('what the patch depends on is seen at once by a recognized replica too', async (t) => {
  const template = loadReview('deployment-pod');
  const clientIdOf = (review: string): string | undefined => {
    const patch = (JSON.parse(review) as AdmissionReview).response?.patch ?? '';
    return /"AZURE_CLIENT_ID","value":"([^"]+)"/.exec(Buffer.from(patch, 'base64').toString())?.[1];
  };
  const objects = cluster();
  const lookups = memoryLookups(objects);
  const mutate = createMutator(SETTINGS, lookups, createReplicaCache());
  await admitParsed(mutate, bodyOf(replicaOf(template)));
  const before = await mutate.replica?.(bodyOf(replicaOf(template)));
  t.equal(before && clientIdOf(before.review), CLIENT);

  const other = '5d0c7e9a-2b4f-4e61-8a3d-9c1b2e3f4a5b';
  objects.serviceAccounts = objects.serviceAccounts.map((sa) => (sa.metadata?.name === 'checkout' ? serviceAccount('shop', 'checkout', other) : sa));
  const body = bodyOf(replicaOf(template));
  t.equal(await mutate.replica?.(body), undefined, 'a changed ServiceAccount: not answered from the cache');
  const result = await admitParsed(mutate, body);
  t.equal(clientIdOf(serializeReview(result.response)), other);
  const after = await mutate.replica?.(bodyOf(replicaOf(template)));
  t.equal(after && clientIdOf(after.review), other, 'and the new answer is kept');

  objects.namespaces = objects.namespaces.map((ns) =>
    ns.metadata?.name === 'shop' ? { metadata: { name: 'shop', annotations: { 'akv-injector.io/mount-path': '/etc/shop' } } } : ns,
  );
  const moved = bodyOf(replicaOf(template));
  t.equal(await mutate.replica?.(moved), undefined, 'a changed namespace: not answered from the cache');

  const failing = createMutator(SETTINGS, memoryLookups({ ...cluster(), failing: true }), createReplicaCache());
  t.equal(await failing.replica?.(body), undefined, 'nothing kept, nothing read');
});

t.test('through the server: the replica answered from its bytes, logged under its own names, counted as shared', async (t) => {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done): void {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const lookups = memoryLookups(cluster());
  const metrics = createMetrics({ defaultMetrics: false });
  const app = buildApp({ mutator: createMutator(SETTINGS, lookups, createReplicaCache()), logger: createLogger('webhook', stream), metrics });
  t.teardown(() => app.close());
  const template = loadReview('statefulset-pod');
  const post = (body: Buffer) => app.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload: body });
  await post(bodyOf(replicaOf(template)));
  const review = replicaOf(template);
  const body = bodyOf(review);
  const res = await post(body);
  t.equal(res.statusCode, 200);
  t.equal(res.payload, (await unshared(lookups, body)).review, 'the answer, byte for byte');
  const line = JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown>;
  t.match(line, { msg: 'admission', uid: review.request.uid, pod: review.request.name, namespace: 'finance', outcome: 'injected', shared: true });
  t.match(await metrics.registry.getSingleMetricAsString('akv_injector_admissions_shared_total'), /akv_injector_admissions_shared_total 1$/m);
});

t.test("kept bodies stay within the cache's byte bound", async (t) => {
  const lookups = memoryLookups(cluster());
  const template = loadReview('deployment-pod');
  const size = bodyOf(template).length;
  const cache = createReplicaCache({ ...DEFAULT_REPLICA_CACHE, maxBodyBytes: Math.floor(2.5 * size) });
  const mutate = createMutator(SETTINGS, lookups, cache);
  const versions = Array.from({ length: 4 }, (_, i) => {
    const review = structuredClone(template);
    annotations(review)['app.kubernetes.io/version'] = `v${i}`;
    return review;
  });
  for (const review of versions) await admitParsed(mutate, bodyOf(replicaOf(review)));
  t.equal(cache.size().templates, 2, 'the least recently used went');
  t.ok(await mutate.replica?.(bodyOf(replicaOf(versions[3] as Review))), 'the newest is recognized');
  t.equal(await mutate.replica?.(bodyOf(replicaOf(versions[0] as Review))), undefined, 'the oldest is not');
});

t.test('templates alike in annotations and image: the newest eight are told by their bytes, every one still shared', async (t) => {
  const objects = cluster();
  // Ten templates, each its own ServiceAccount: the template cache keeps eight per namespace, ServiceAccount and image.
  objects.serviceAccounts.push(...Array.from({ length: 10 }, (_, i) => serviceAccount('shop', `worker-${i}`)));
  const lookups = memoryLookups(objects);
  const cache = createReplicaCache();
  const mutate = createMutator(SETTINGS, lookups, cache);
  const template = loadReview('deployment-pod');
  const versions = Array.from({ length: 10 }, (_, i) => {
    const review = structuredClone(template);
    spec(review).serviceAccountName = `worker-${i}`;
    return review;
  });
  for (const review of versions) await admitParsed(mutate, bodyOf(replicaOf(review)));
  t.equal(cache.size().templates, 10, 'all ten kept');
  for (const [i, review] of versions.entries()) {
    const body = bodyOf(replicaOf(review));
    const replica = await mutate.replica?.(body);
    if (i < 2) {
      t.equal(replica, undefined, `version ${i}: its body was let go`);
      t.equal((await admitParsed(mutate, body)).shared, true, `version ${i}: shared once parsed`);
    } else {
      t.ok(replica, `version ${i}: told by its bytes`);
    }
  }
});

t.test("a body's hint: its pod's annotations, or its first image when it has none", async (t) => {
  const pod = (annotations: Record<string, string> | undefined, image: string): Buffer => {
    const review = loadReview('deployment-pod');
    const metadata = review.request.object.metadata as Record<string, unknown>;
    if (annotations === undefined) delete metadata.annotations;
    else metadata.annotations = annotations;
    (spec(review).containers[0] as { image: string }).image = image;
    return bodyOf(replicaOf(review));
  };
  const annotated = { 'akv-injector.io/inject': 'true' };
  t.equal(hintOf(pod(annotated, 'a:1')), '"annotations":{"akv-injector.io/inject":"true"}');
  t.equal(hintOf(pod(annotated, 'a:1')), hintOf(pod(annotated, 'b:2')), 'annotations first');
  t.equal(hintOf(pod(undefined, 'a:1')), '"image":"a:1"');
  t.equal(hintOf(pod({}, 'a:1')), '"image":"a:1"', 'empty annotations count as none');
  t.not(hintOf(pod(undefined, 'a:1')), hintOf(pod(undefined, 'b:2')));
  t.equal(hintOf(Buffer.from('{"kind":"AdmissionReview"}')), '');
});
