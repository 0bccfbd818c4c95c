// What a pod author or a namespace owner can make the webhook do: every input bounded and checked
// before the work, reserved names kept ours, odd shapes and keys answered with a reason, never a crash.
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { CLOUDS } from '../src/clouds.js';
import { MAX_OBJECT_LIST_BYTES } from '../src/object-list.js';
import { MAX_FILES, MAX_OBJECTS, MAX_VERSION_HISTORY } from '../src/objects.js';
import { decodeReview, type AdmissionRequest } from '../webhook/admission.js';
import type { SecretProviderClass } from '../webhook/lookups.js';
import { createMutator, type MutationResult } from '../webhook/mutate.js';
import { MAX_ANNOTATIONS, MAX_CONTAINERS, MAX_OBJECTS_ENV_BYTES } from '../webhook/resolve.js';
import type { WebhookSettings } from '../webhook/settings.js';
import { applyResponse, loadReview } from './fixtures/admission-fixtures.js';
import { cpuMsSince } from './fixtures/cpu-time.js';
import { memoryLookups } from './fixtures/memory-lookups.js';
import { podViolations } from './fixtures/pod-rules.js';

const CLIENT = '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SETTINGS: WebhookSettings = {
  image: 'ghcr.io/akv-injector/akv-injector:0.1.0',
  cloud: CLOUDS.AzurePublicCloud,
  namespace: 'akv-injector',
  tenantId: TENANT,
};
const OBJECTS_KEY = 'akv-injector.io/objects';

/**
 * The longest one admission may take here, in CPU time (a process waiting for a core is not slow). Its cost is
 * bounded by the largest object list the webhook parses (64 KiB of YAML, about 60 ms on an idle core); the rest
 * leaves room for GC. Before these limits, objectVersionHistory "100000000" held the event loop for minutes.
 */
const ADMISSION_BOUND_MS = 1000;

const spcs: SecretProviderClass[] = [];
const mutator = createMutator(
  SETTINGS,
  memoryLookups({
    namespaces: [{ metadata: { name: 'shop' } }],
    serviceAccounts: [{ metadata: { namespace: 'shop', name: 'checkout', annotations: { 'azure.workload.identity/client-id': CLIENT } } }],
    secretProviderClasses: spcs,
  }),
);

interface Admitted {
  result: MutationResult;
  before: V1Pod;
  after: V1Pod;
  /** CPU time of the admission. */
  ms: number;
}

async function admit(edit: (pod: V1Pod) => void, request: Partial<AdmissionRequest> = {}): Promise<Admitted> {
  const review = loadReview('deployment-pod');
  edit(review.request.object);
  const before = structuredClone(review.request.object);
  const started = process.cpuUsage();
  const result = await mutator({ ...review.request, ...request });
  const ms = cpuMsSince(started);
  return { result, before, after: result.response.allowed ? applyResponse(before, result.response) : before, ms };
}

const annotate =
  (values: Record<string, string>) =>
  (pod: V1Pod): void => {
    Object.assign(pod.metadata!.annotations!, values);
  };
const objectsAnnotation = (objects: unknown[]): ((pod: V1Pod) => void) => annotate({ [OBJECTS_KEY]: JSON.stringify(objects) });
const secret = (name: string, fields: Record<string, string> = {}): Record<string, string> => ({ objectName: name, objectType: 'secret', ...fields });
const many = (n: number, fields: (i: number) => Record<string, string> = () => ({})): Array<Record<string, string>> =>
  Array.from({ length: n }, (_, i) => secret(`s${i}`, fields(i)));
const env = (pod: V1Pod, name: string): string | undefined =>
  pod.spec?.initContainers?.find((c) => c.name === 'akv-injector')?.env?.find((e) => e.name === name)?.value;

interface Case {
  name: string;
  edit: (pod: V1Pod) => void;
  /** Denied with a message matching every pattern; absent: injected. */
  denied?: RegExp[];
  check?: (t: Test, admitted: Admitted) => void;
}

function runCases(t: Test, cases: Case[]): Promise<void> {
  return cases.reduce(async (previous, c) => {
    await previous;
    const admitted = await admit(c.edit);
    const { result, after, ms } = admitted;
    t.ok(ms < ADMISSION_BOUND_MS, `${c.name}: answered in ${Math.round(ms)} ms of CPU (bound ${ADMISSION_BOUND_MS} ms)`);
    if (c.denied !== undefined) {
      t.match(result, { outcome: 'denied', response: { allowed: false, status: { code: 400 } } }, `${c.name}: denied with 400`);
      for (const pattern of c.denied) t.match(result.response.status?.message, pattern, `${c.name}: ${pattern}`);
      t.equal(result.response.patch, undefined, `${c.name}: no patch`);
    } else {
      t.equal(result.outcome, 'injected', `${c.name}: ${result.reason} ${result.response.status?.message ?? ''}`);
      t.same(podViolations(after), [], `${c.name}: the resulting pod is valid`);
    }
    c.check?.(t, admitted);
  }, Promise.resolve());
}

t.test('object lists: counts, versions and sizes bounded, checked in linear time', async (t) => {
  const nested = many(MAX_OBJECTS, (i) => ({ objectAlias: `team/${i % 16}/s${i}`, objectVersionHistory: '4' }));
  await runCases(t, [
    {
      name: 'objectVersionHistory 100000000',
      edit: objectsAnnotation([secret('a', { objectVersionHistory: '100000000' })]),
      denied: [
        /annotation akv-injector\.io\/objects on the pod: object 0 "a": objectVersionHistory "100000000" must be a whole number of versions from 0 to 1024/,
      ],
    },
    {
      name: 'objectVersionHistory 4294967296',
      edit: objectsAnnotation([secret('a', { objectVersionHistory: '4294967296' })]),
      denied: [/objectVersionHistory "4294967296"/],
    },
    { name: 'objectVersionHistory 50000', edit: objectsAnnotation([secret('a', { objectVersionHistory: '50000' })]), denied: [/objectVersionHistory "50000"/] },
    {
      name: 'objectVersionHistory 0 is one version',
      edit: objectsAnnotation([secret('a', { objectVersionHistory: '0' })]),
      check: (t, { after }) => t.match(JSON.parse(env(after, 'AKV_INJECTOR_OBJECTS') ?? '[]'), [{ objectVersionHistory: 1, objectAlias: 'a' }]),
    },
    { name: 'objectVersionHistory at its limit', edit: objectsAnnotation([secret('a', { objectVersionHistory: String(MAX_VERSION_HISTORY) })]) },
    {
      name: `${MAX_OBJECTS} objects with history, nested aliases`,
      edit: objectsAnnotation(nested),
      check: (t, { after }) => t.equal(JSON.parse(env(after, 'AKV_INJECTOR_OBJECTS') ?? '[]').length, MAX_OBJECTS),
    },
    {
      name: `${MAX_OBJECTS + 1} objects`,
      edit: objectsAnnotation(many(MAX_OBJECTS + 1)),
      denied: [new RegExp(`the object list has ${MAX_OBJECTS + 1} objects; at most ${MAX_OBJECTS}`)],
    },
    {
      name: 'more files than allowed',
      edit: objectsAnnotation(many(3, () => ({ objectVersionHistory: '400' }))),
      denied: [new RegExp(`the objects ask for 1200 files \\(objectVersionHistory counts each version\\); at most ${MAX_FILES}`)],
    },
    {
      name: 'a list over 64 KiB',
      edit: annotate({ [OBJECTS_KEY]: `# ${'x'.repeat(MAX_OBJECT_LIST_BYTES)}\n- objectName: a\n  objectType: secret\n` }),
      denied: [/annotation akv-injector\.io\/objects on the pod: is larger than 65536 bytes \(64 KiB\)/],
    },
    {
      name: 'multi-byte characters count as bytes',
      edit: annotate({ [OBJECTS_KEY]: `# ${'é'.repeat(MAX_OBJECT_LIST_BYTES / 2 + 1)}\n[]` }),
      denied: [/is larger than 65536 bytes/],
    },
    {
      name: 'names too long for the init container environment',
      // Each alias defaults to the name and is written out beside it: 44 KiB of list, 116 KiB of environment.
      edit: objectsAnnotation(Array.from({ length: MAX_OBJECTS }, (_, i) => ({ objectName: `${i}-`.padEnd(127, 'n'), objectType: 'key' }))),
      denied: [new RegExp(`the ${MAX_OBJECTS} objects take \\d+ bytes as the init container's AKV_INJECTOR_OBJECTS, more than the ${MAX_OBJECTS_ENV_BYTES}`)],
    },
    {
      name: 'a YAML alias bomb',
      edit: annotate({
        [OBJECTS_KEY]: `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n`,
      }),
      denied: [/annotation akv-injector\.io\/objects on the pod: is not valid YAML or JSON/],
    },
    // 10,000 levels used to abort the whole webhook process (V8: "RegExpCompiler Allocation failed").
    {
      name: 'deeply nested brackets',
      edit: annotate({ [OBJECTS_KEY]: `${'['.repeat(20_000)}${']'.repeat(20_000)}` }),
      denied: [/annotation akv-injector\.io\/objects on the pod: nests lists or maps more than 64 deep; an object list needs three levels/],
    },
    {
      name: 'deeply nested brackets spelled by escapes in an "array:" item',
      edit: annotate({ [OBJECTS_KEY]: `array:\n  - "${'\\x5b'.repeat(12_000)}"\n` }),
      denied: [/has an "array:" item 0 that nests lists or maps more than 64 deep/],
    },
    { name: 'brackets in aliases are fine', edit: objectsAnnotation([secret('a', { objectAlias: 'a[0]{x}' })]) },
  ]);
});

t.test('output clashes are found without listing the version files', async (t) => {
  await runCases(t, [
    {
      name: 'two objects, one file',
      edit: objectsAnnotation([secret('a'), secret('b', { objectAlias: 'a' })]),
      denied: [/objects "a" and "b" both write "a"/],
    },
    {
      name: 'two histories, one folder',
      edit: objectsAnnotation([secret('a', { objectVersionHistory: '3' }), secret('b', { objectAlias: 'a', objectVersionHistory: '900' })]),
      denied: [/objects "a" and "b" both write "a\/0"/],
    },
    {
      name: 'a file where a history needs its folder',
      edit: objectsAnnotation([secret('a', { objectVersionHistory: '2' }), secret('b', { objectAlias: 'a' })]),
      denied: [/object "b" writes the file "a" but object "a" needs it as a folder for "a\/0"/],
    },
    {
      name: 'a file that is a version of a history',
      edit: objectsAnnotation([secret('a', { objectVersionHistory: '1000' }), secret('b', { objectAlias: 'a/999' })]),
      denied: [/objects "a" and "b" both write "a\/999"/],
    },
    {
      name: 'a version file needed as a folder',
      edit: objectsAnnotation([secret('a', { objectVersionHistory: '5' }), secret('b', { objectAlias: 'a/3/x' })]),
      denied: [/object "a" writes the file "a\/3" but object "b" needs it as a folder for "a\/3\/x"/],
    },
    {
      name: 'a file needed as a folder, deep',
      edit: objectsAnnotation([secret('a', { objectAlias: 'x/y' }), secret('b', { objectAlias: 'x/y/z/w', objectVersionHistory: '2' })]),
      denied: [/object "a" writes the file "x\/y" but object "b" needs it as a folder for "x\/y\/z\/w\/0"/],
    },
    {
      name: 'beside a history, past its last version',
      edit: objectsAnnotation([
        secret('a', { objectVersionHistory: '5' }),
        secret('b', { objectAlias: 'a/5' }),
        secret('c', { objectAlias: 'a/05' }),
        secret('d', { objectAlias: 'a/readme' }),
      ]),
    },
    { name: 'siblings', edit: objectsAnnotation([secret('a', { objectAlias: 'x/a' }), secret('b', { objectAlias: 'x/b', objectVersionHistory: '3' })]) },
  ]);
});

t.test("a namespace owner's huge SecretProviderClass costs one bounded check, never a parse", async (t) => {
  const objects = `array:\n${Array.from({ length: 20_000 }, (_, i) => `  - |\n    objectName: s${i}\n    objectType: secret\n`).join('')}`;
  spcs.push({ metadata: { namespace: 'shop', name: 'huge' }, spec: { provider: 'azure', parameters: { keyvaultName: 'kv-shop', objects } } });
  t.ok(objects.length > 1_000_000, `the SPC's objects are ${objects.length} bytes`);
  for (let i = 0; i < 3; i++) {
    const { result, ms } = await admit(annotate({ 'akv-injector.io/secret-provider-class': 'huge', [OBJECTS_KEY]: '' }));
    t.match(
      result.response.status?.message,
      /SecretProviderClass shop\/huge parameter objects: is larger than 65536 bytes/,
      `admission ${i}: denied naming the SPC parameter`,
    );
    t.ok(ms < 50, `admission ${i}: ${ms.toFixed(1)} ms (a size check, not a parse)`);
  }
});

t.test("reserved names: the injected containers and volumes are akv-injector's alone", async (t) => {
  const container = (name: string, extra: Partial<V1Container> = {}): V1Container => ({ name, image: 'contoso.azurecr.io/app:1', ...extra });
  const addVolume =
    (volume: V1Volume) =>
    (pod: V1Pod): void =>
      void (pod.spec!.volumes = [...(pod.spec!.volumes ?? []), volume]);
  await runCases(t, [
    {
      name: 'an app container named akv-injector',
      edit: (pod) => void pod.spec!.containers.push(container('akv-injector')),
      denied: [/container name "akv-injector" is reserved for the init container akv-injector adds: rename the pod's container/],
    },
    {
      name: 'an app container named akv-injector-refresh',
      edit: (pod) => void pod.spec!.containers.push(container('akv-injector-refresh')),
      denied: [/container name "akv-injector-refresh" is reserved/],
    },
    {
      name: 'a hostPath named akv-injector-secrets',
      edit: addVolume({ name: 'akv-injector-secrets', hostPath: { path: '/var/lib/leak' } }),
      denied: [/volume name "akv-injector-secrets" is reserved for the in-memory volume akv-injector adds, and the pod's is another kind/],
    },
    {
      name: 'a disk emptyDir named akv-injector-secrets',
      edit: addVolume({ name: 'akv-injector-secrets', emptyDir: {} }),
      denied: [/volume name "akv-injector-secrets" is reserved/],
    },
    {
      name: 'a Secret volume named akv-injector-token',
      edit: addVolume({ name: 'akv-injector-token', secret: { secretName: 'planted-token' } }),
      denied: [/volume name "akv-injector-token" is reserved for the service-account token volume/],
    },
    {
      name: 'a token of another audience named akv-injector-token',
      edit: addVolume({ name: 'akv-injector-token', projected: { sources: [{ serviceAccountToken: { audience: 'https://attacker.example', path: 't' } }] } }),
      denied: [/volume name "akv-injector-token" is reserved/],
    },
    {
      name: 'an app container mounting the token',
      edit: (pod) => {
        addVolume({
          name: 'akv-injector-token',
          projected: { sources: [{ serviceAccountToken: { audience: 'api://AzureADTokenExchange', path: 'azure-identity-token' } }] },
        })(pod);
        pod.spec!.containers[0]!.volumeMounts = [...(pod.spec!.containers[0]!.volumeMounts ?? []), { name: 'akv-injector-token', mountPath: '/token' }];
      },
      denied: [/container checkout mounts volume akv-injector-token: that token is mounted only into akv-injector's own init container/],
    },
    // Otherwise the webhook would take it for its own, add none, and the app would find an empty volume.
    {
      name: "an init container named akv-injector that is not akv-injector's",
      edit: (pod) => void (pod.spec!.initContainers = [container('akv-injector', { args: ['sh', '-c', 'true'] })]),
      denied: [/init container name "akv-injector" is reserved for the init container akv-injector adds, and the pod's is not akv-injector's/],
    },
    {
      name: 'one that fetches, but into no akv-injector volume',
      edit: (pod) => void (pod.spec!.initContainers = [container('akv-injector', { args: ['fetch'] })]),
      denied: [/init container name "akv-injector" is reserved/],
    },
  ]);
});

t.test('mount paths: normalized as the runtime sees them, never over the token or the system', async (t) => {
  const mountPath = (path: string) => annotate({ 'akv-injector.io/mount-path': path });
  const mountedAt =
    (expected: string) =>
    (t: Test, { after }: Admitted): void => {
      t.equal(env(after, 'AKV_INJECTOR_OUTPUT_DIR'), expected);
      t.same(
        after.spec?.containers[0]?.volumeMounts?.find((m) => m.name === 'akv-injector-secrets'),
        { name: 'akv-injector-secrets', mountPath: expected, readOnly: true },
      );
    };
  await runCases(t, [
    {
      name: 'double slashes into the token folder',
      edit: mountPath('/var//run/secrets/akv-injector'),
      denied: [/"\/var\/\/run\/secrets\/akv-injector" must not overlap \/var\/run\/secrets\/akv-injector/],
    },
    { name: 'a parent of the token folder', edit: mountPath('/var/run//secrets/'), denied: [/must not overlap/] },
    { name: 'inside the token folder', edit: mountPath('/var/run/secrets/akv-injector/x'), denied: [/must not overlap/] },
    { name: 'the root', edit: mountPath('/'), denied: [/"\/" must not be \/: pick a folder/] },
    { name: 'slashes only', edit: mountPath('///'), denied: [/must not be \//] },
    { name: 'relative', edit: mountPath('secrets'), denied: [/"secrets" must be an absolute path/] },
    { name: 'dot-dot', edit: mountPath('/mnt/../var/run/secrets/akv-injector'), denied: [/must not contain "\." or "\.\." segments/] },
    { name: 'dot', edit: mountPath('/mnt/./secrets'), denied: [/must not contain "\." or "\.\." segments/] },
    { name: '/dev', edit: mountPath('/dev/shm/secrets'), denied: [/must not be in \/dev, which the container runtime provides/] },
    { name: '/proc', edit: mountPath('/proc'), denied: [/must not be in \/proc/] },
    { name: '/sys', edit: mountPath('/sys//fs'), denied: [/must not be in \/sys/] },
    { name: 'a line break', edit: mountPath('/mnt/a\nb'), denied: [/must not contain NUL or line breaks/] },
    { name: 'very long', edit: mountPath(`/${'a'.repeat(2000)}`), denied: [/is too long/] },
    { name: 'repeated and trailing slashes are dropped', edit: mountPath('//etc//akv///'), check: mountedAt('/etc/akv') },
    {
      name: 'a clash written with other slashes is still a clash',
      edit: (pod) => {
        mountPath('/etc/app-config/')(pod);
        pod.spec!.volumes = [...(pod.spec!.volumes ?? []), { name: 'config', configMap: { name: 'app' } }];
        pod.spec!.containers[0]!.volumeMounts = [...(pod.spec!.containers[0]!.volumeMounts ?? []), { name: 'config', mountPath: '/etc//app-config' }];
      },
      denied: [/container checkout already mounts volume config at \/etc\/app-config/],
    },
  ]);
});

t.test('the authority: a pod picks one of the known clouds, never a host', async (t) => {
  const authorities = new Set(Object.values(CLOUDS).map((c) => c.authorityHost));
  const cloudCases: Array<{ cloud: string; authority?: string; suffix?: string }> = [
    { cloud: 'AzurePublicCloud', authority: 'https://login.microsoftonline.com/', suffix: 'vault.azure.net' },
    { cloud: 'azureusgovernment', authority: 'https://login.microsoftonline.us/', suffix: 'vault.usgovcloudapi.net' },
    { cloud: ' AZURECHINACLOUD ', authority: 'https://login.chinacloudapi.cn/', suffix: 'vault.azure.cn' },
    { cloud: 'https://login.attacker.example/' },
    { cloud: 'login.microsoftonline.com.attacker.example' },
    { cloud: 'constructor' },
    { cloud: '__proto__' },
    { cloud: 'toString' },
  ];
  for (const c of cloudCases) {
    const { result, after } = await admit(annotate({ 'akv-injector.io/cloud': c.cloud }));
    if (c.authority === undefined) {
      t.match(
        result.response.status?.message,
        new RegExp(`annotation akv-injector\\.io/cloud on the pod: ${JSON.stringify(c.cloud).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not a known cloud`),
        `${c.cloud}: denied`,
      );
      continue;
    }
    t.equal(env(after, 'AZURE_AUTHORITY_HOST'), c.authority, `${c.cloud}: the cloud's fixed authority`);
    t.ok(authorities.has(env(after, 'AZURE_AUTHORITY_HOST') ?? ''), `${c.cloud}: one of the known authorities`);
    t.equal(env(after, 'AKV_INJECTOR_VAULT_URL'), `https://kv-shop.${c.suffix}/`, `${c.cloud}: the vault in the same cloud`);
  }
});

t.test("keys named like Object.prototype's are plain keys", async (t) => {
  spcs.push({
    metadata: { namespace: 'shop', name: 'odd-keys' },
    spec: {
      provider: 'azure',
      parameters: JSON.parse(
        '{"__proto__": "x", "constructor": "y", "toString": "z", "keyvaultName": "kv-odd", "objects": "[{\\"objectName\\": \\"a\\", \\"objectType\\": \\"secret\\"}]"}',
      ) as Record<string, string>,
    },
  });
  const edit = (pod: V1Pod): void => {
    annotate({ 'akv-injector.io/secret-provider-class': 'odd-keys', [OBJECTS_KEY]: '', 'akv-injector.io/vault': '' })(pod);
    // Spread, not Object.assign: assigning "__proto__" would set the prototype instead of adding the key.
    pod.metadata!.annotations = {
      ...pod.metadata!.annotations,
      ...(JSON.parse('{"__proto__": "a", "constructor": "b", "hasOwnProperty": "c"}') as Record<string, string>),
    };
    pod.spec!.volumes = [
      ...(pod.spec!.volumes ?? []),
      {
        name: 'csi',
        csi: {
          driver: 'example.com',
          volumeAttributes: JSON.parse('{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}}') as Record<string, string>,
        },
      },
    ];
  };
  const { result, before, after } = await admit(edit);
  t.ok(Object.hasOwn(before.metadata?.annotations ?? {}, '__proto__'), 'the pod does carry an annotation named __proto__');
  t.equal(result.outcome, 'injected', result.response.status?.message ?? result.reason);
  t.equal(after.metadata?.annotations?.['__proto__'], 'a', 'and keeps it as an annotation');
  t.equal(env(after, 'AKV_INJECTOR_VAULT_URL'), 'https://kv-odd.vault.azure.net/', 'the SPC parameters were read');
  t.same(
    after.spec?.volumes?.find((v) => v.name === 'csi'),
    before.spec?.volumes?.find((v) => v.name === 'csi'),
    'the CSI volume is untouched',
  );
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted');
});

t.test('fields of the wrong type: a 400 naming the field, never a 500', async (t) => {
  const set =
    (path: string[], value: unknown) =>
    (pod: V1Pod): void => {
      let target = pod as unknown as Record<string, unknown>;
      for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
      target[path[path.length - 1] as string] = value;
    };
  await runCases(t, [
    {
      name: 'annotations a number',
      edit: set(['metadata', 'annotations'], 7),
      denied: [/request\.object\.metadata\.annotations must be a map of strings, got a number/],
    },
    {
      name: 'an annotation value a list',
      edit: set(['metadata', 'annotations', 'akv-injector.io/vault'], ['kv']),
      denied: [/request\.object\.metadata\.annotations\["akv-injector\.io\/vault"\] must be a string, got a list/],
    },
    {
      name: 'containers an object',
      edit: set(['spec', 'containers'], { name: 'app' }),
      denied: [/request\.object\.spec\.containers must be a list, got an object/],
    },
    { name: 'no containers', edit: set(['spec', 'containers'], null), denied: [/request\.object\.spec\.containers is missing/] },
    {
      name: 'a container name a number',
      edit: set(['spec', 'containers', '0', 'name'], 42),
      denied: [/request\.object\.spec\.containers\[0\]\.name must be a string, got a number/],
    },
    {
      name: 'volumeMounts a string',
      edit: set(['spec', 'containers', '0', 'volumeMounts'], '/mnt'),
      denied: [/request\.object\.spec\.containers\[0\]\.volumeMounts must be a list, got a string/],
    },
    {
      name: 'a mountPath missing',
      edit: set(['spec', 'containers', '0', 'volumeMounts'], [{ name: 'x' }]),
      denied: [/volumeMounts\[0\]\.mountPath must be a string, got a undefined/],
    },
    { name: 'volumes an object', edit: set(['spec', 'volumes'], {}), denied: [/request\.object\.spec\.volumes must be a list, got an object/] },
    { name: 'serviceAccountName a boolean', edit: set(['spec', 'serviceAccountName'], true), denied: [/serviceAccountName must be a string, got a boolean/] },
    { name: 'os a string', edit: set(['spec', 'os'], 'windows'), denied: [/request\.object\.spec\.os must be an object, got a string/] },
    {
      name: 'runAsUser a string',
      edit: set(['spec', 'securityContext'], { runAsUser: '0' }),
      denied: [/securityContext\.runAsUser must be a number, got a string/],
    },
    { name: 'spec a list', edit: set(['spec'], []), denied: [/request\.object\.spec must be an object, got a list/] },
    {
      name: 'many problems listed, not all',
      edit: set(
        ['spec', 'containers'],
        Array.from({ length: 5000 }, () => 1),
      ),
      denied: [/containers\[9\] must be an object, got a number\n- … and more problems, not listed$/],
    },
  ]);
  for (const field of ['namespace', 'name', 'subResource']) {
    const review = loadReview('deployment-pod') as unknown as Record<string, Record<string, unknown>>;
    review.request![field] = 7;
    t.same(decodeReview(review), { ok: false, message: `request.${field} must be a string` }, `a request whose ${field} is not a string is refused`);
  }
});

t.test('messages list a few names, not all of them', async (t) => {
  const names = Array.from({ length: 500 }, (_, i) => `c${i}`).join(',');
  const { result } = await admit(annotate({ 'akv-injector.io/containers': names }));
  t.match(result.response.status?.message, /"c0", "c1", .*"c9" and 490 more are not containers of this pod; its containers are checkout$/m);
  t.ok((result.response.status?.message ?? '').length < 1000, 'the message stays short');
});

t.test('wide pods and long values: refused before the work they would cost', async (t) => {
  const app = (i: number): V1Container => ({ name: `c${i}`, image: 'contoso.azurecr.io/app:1' });
  await runCases(t, [
    {
      name: `${MAX_CONTAINERS} containers`,
      edit: (pod) => void (pod.spec!.containers = Array.from({ length: MAX_CONTAINERS }, (_, i) => app(i))),
      check: (t, { after }) =>
        t.equal(after.spec?.containers.filter((c) => c.volumeMounts?.some((m) => m.name === 'akv-injector-secrets')).length, MAX_CONTAINERS),
    },
    {
      name: 'one container more',
      edit: (pod) => void (pod.spec!.initContainers = Array.from({ length: MAX_CONTAINERS }, (_, i) => app(i + 1))),
      denied: [new RegExp(`the pod has ${MAX_CONTAINERS + 1} containers; akv-injector injects pods of at most ${MAX_CONTAINERS}`)],
    },
    {
      name: '60,000 containers',
      edit: (pod) => void (pod.spec!.containers = Array.from({ length: 60_000 }, (_, i) => app(i))),
      denied: [/the pod has 60000 containers/],
    },
    {
      name: `${MAX_ANNOTATIONS} annotations`,
      edit: (pod) =>
        void (pod.metadata!.annotations = {
          ...pod.metadata!.annotations,
          ...Object.fromEntries(Array.from({ length: MAX_ANNOTATIONS - 4 }, (_, i) => [`example.com/a${i}`, 'v'])),
        }),
    },
    {
      name: '200,000 annotations',
      edit: (pod) =>
        void (pod.metadata!.annotations = { ...pod.metadata!.annotations, ...Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [`a${i}`, ''])) }),
      denied: [new RegExp(`the pod has 200004 annotations; akv-injector injects pods of at most ${MAX_ANNOTATIONS}`)],
    },
    {
      name: 'a containers annotation of a million names',
      edit: annotate({ 'akv-injector.io/containers': 'checkout,'.repeat(250_000) }),
      denied: [/annotation akv-injector\.io\/containers on the pod: is 2250000 characters long; at most 64000/],
    },
  ]);
  const long = 'x'.repeat(2 * 1024 * 1024);
  for (const key of [
    'akv-injector.io/vault',
    'akv-injector.io/cloud',
    'akv-injector.io/client-id',
    'akv-injector.io/tenant-id',
    'akv-injector.io/mount-path',
    'akv-injector.io/token-expiration',
    'akv-injector.io/init-first',
    'akv-injector.io/inject',
    'akv-injector.io/secret-provider-class',
  ]) {
    const { result, ms } = await admit(annotate({ [key]: long }));
    t.equal(result.response.allowed, false, `${key} of 2 MiB: denied`);
    t.match(result.response.status?.message, new RegExp(`${key.replace(/[./]/g, '\\$&')}`), `${key}: named`);
    t.ok(
      (result.response.status?.message ?? '').length < 2000,
      `${key}: the message quotes the start of the value only (${result.response.status?.message?.length} characters)`,
    );
    t.ok(ms < ADMISSION_BOUND_MS, `${key}: ${Math.round(ms)} ms of CPU`);
  }
});
