// The structural diff: applying its patch with fast-json-patch (an independent implementation of
// RFC 6902) must give exactly the target, on hand-made cases and on every injected fixture pod.
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import t from 'tap';
import { CLOUDS } from '../src/clouds.js';
import { diff } from '../webhook/diff.js';
import { injectPod } from '../webhook/inject.js';
import { resolveConfig } from '../webhook/resolve.js';
import { FIXTURES, loadReview } from './fixtures/admission-fixtures.js';
import { memoryLookups } from './fixtures/memory-lookups.js';

const apply = (before: unknown, operations: unknown[]): unknown =>
  fastJsonPatch.applyPatch(structuredClone(before), structuredClone(operations) as Operation[], true, false).newDocument;

t.test('hand-made cases', async (t) => {
  const cases: Array<[string, unknown, unknown]> = [
    ['equal', { a: 1 }, { a: 1 }],
    ['add a key', { a: 1 }, { a: 1, b: { c: [1] } }],
    ['remove a key', { a: 1, b: 2 }, { a: 1 }],
    ['replace a value', { a: 1 }, { a: 'one' }],
    ['object to array', { a: { x: 1 } }, { a: [1] }],
    ['null', { a: null }, { a: { b: null } }],
    ['grow an array', [1, 2], [1, 2, 3, 4]],
    ['shrink an array', [1, 2, 3, 4], [1]],
    ['prepend to an array', [{ n: 'a' }, { n: 'b' }], [{ n: 'new' }, { n: 'a' }, { n: 'b' }]],
    [
      'nested edit',
      { spec: { containers: [{ name: 'a', volumeMounts: [{ name: 'x' }] }] } },
      { spec: { containers: [{ name: 'a', volumeMounts: [{ name: 'x' }, { name: 'y' }] }] } },
    ],
    ['keys needing escapes', { 'a/b': 1, 'c~d': 2 }, { 'a/b': 3, 'c~d': 2, 'akv-injector.io/status': 'injected' }],
    ['undefined is absent', { a: 1, b: undefined }, { a: 1, c: undefined }],
    ['root replace', 1, 2],
    ['keys named like Object.prototype members', { a: { b: 1 } }, { a: { b: 1, toString: 'x', constructor: 'y', __defineGetter__: 'z' } }],
  ];
  for (const [name, before, after] of cases) {
    const operations = diff(before, after);
    t.same(apply(before, operations), JSON.parse(JSON.stringify(after) ?? 'null'), name);
    if (name === 'equal') t.same(operations, [], 'no operation for equal trees');
  }
  t.same(
    diff({ metadata: { annotations: { 'a/b': 'x' } } }, { metadata: { annotations: { 'a/b': 'x', 'akv-injector.io/status': 'injected' } } }),
    [{ op: 'add', path: '/metadata/annotations/akv-injector.io~1status', value: 'injected' }],
    'RFC 6901 escaping',
  );
  const shared = { big: { deep: [1, 2, 3] } };
  t.same(diff({ shared, a: 1 }, { shared, a: 2 }), [{ op: 'replace', path: '/a', value: 2 }], 'shared subtrees are skipped');
});

t.test('every fixture pod, every way of injecting it: the patch gives exactly the injected pod', async (t) => {
  const settings = {
    image: 'i',
    windowsImage: 'w',
    cloud: CLOUDS.AzurePublicCloud,
    namespace: 'akv-injector',
    tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  };
  const variants: Array<Record<string, string>> = [{}, { 'akv-injector.io/init-first': 'true' }, { 'akv-injector.io/mount-path': '/etc/x' }];
  for (const name of FIXTURES) {
    for (const extra of variants) {
      const review = loadReview(name);
      const pod = review.request.object;
      Object.assign(pod.metadata!.annotations!, extra, { 'akv-injector.io/client-id': '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01' });
      delete pod.metadata!.annotations!['akv-injector.io/containers'];
      const before = structuredClone(pod);
      const { config, problems } = await resolveConfig({ pod, namespace: 'shop', namespaceObject: undefined, lookups: memoryLookups({}), settings });
      t.same(problems, [], `${name}: resolves`);
      const injected = injectPod(pod, config!);
      t.same(pod, before, `${name}: injectPod leaves its input alone`);
      const operations = diff(pod, injected);
      t.same(apply(pod, operations), JSON.parse(JSON.stringify(injected)), `${name} ${JSON.stringify(extra)}: applied patch = injected pod`);
      t.same(apply(pod, fastJsonPatch.compare(pod, injected)), apply(pod, operations), `${name}: same result as fast-json-patch's compare`);
    }
  }
});
