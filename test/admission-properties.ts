// Property-based tests of the admission path (issue 8): random pods, configurations and bodies through the
// real fastify app and mutator; every property seeded, bounded in runs and in time, every admission in CPU.
// Replay a failure: AKV_PROPERTY_SEED=<seed> npx tap test/admission-properties.ts (the report gives seed and path);
// search longer: AKV_PROPERTY_SCALE=10 multiplies every property's runs and time limit.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import t, { type Test } from 'tap';
import { parseDuration } from '../src/duration.js';
import { createLogger } from '../src/log.js';
import type { AdmissionResponse, AdmissionReview } from '../webhook/admission.js';
import type { Lookups } from '../webhook/lookups.js';
import { createMutator, type Mutator } from '../webhook/mutate.js';
import { isReadablePod, podShapeProblems, shapeProblems } from '../webhook/pod-shape.js';
import { buildApp } from '../webhook/server.js';
import { applyResponse, loadReview, podCreateReview } from './fixtures/admission-fixtures.js';
import {
  ANNOTATION,
  CONFIG_KEYS,
  INJECTED,
  INVALID_SPCS,
  HUGE_INVALID_VALUES,
  invalidValue,
  jsonType,
  NAMESPACE_LABEL,
  PROTECTED_NAMESPACES,
  SETTINGS,
  validScenario,
  WRONG_TYPES,
  type ConfigKey,
  type Expected,
  type Scenario,
} from './fixtures/arbitraries.js';
import { cpuMsSince } from './fixtures/cpu-time.js';
import { memoryLookups, type MemoryCluster } from './fixtures/memory-lookups.js';
import { podViolations } from './fixtures/pod-rules.js';
import { podSecurityViolations } from './fixtures/pod-security.js';

const SEED = Number(process.env.AKV_PROPERTY_SEED ?? 8_2026);
const SCALE = Number(process.env.AKV_PROPERTY_SCALE ?? 1);

/**
 * The time bound of one admission, in CPU time: the tests of other engineers share the two cores, and a
 * process waiting for one is not slow. Measured on Node 20 and 24 (mutate() alone / the whole HTTP round):
 * a typical pod 0.1–0.4 ms / ~0.5 ms (the first admission of the process, compiling, up to ~70 ms);
 * a 2 MiB annotation value 10–40 ms / 30–70 ms, most of it JSON.parse and copying the value; the
 * widest pods of the table below 20–45 ms. So mutate() gets 100 ms, more than twice those, while a walk
 * quadratic in a pod's size (40,000 init containers: 180–420 ms) or a million-item split of one
 * annotation (220–310 ms) fails it. The HTTP round adds what is linear in the bytes (parse, serialize):
 * 100 ms per MiB of request and response, 3–6 times the measured rate. A GC pause can still land in one
 * admission: over a bound by less than the bound itself, it is sent twice more and the least counts;
 * the tables of large pods collect garbage before each. (A list under 64 KiB is parsed by its first
 * run only, the object-list cache answers the retries.) Not covered: a valid object list near the
 * 64 KiB limit costs 50–160 ms of YAML parsing; none is generated.
 */
const MUTATE_CPU_BOUND_MS = 100;
const HTTP_CPU_BOUND_MS = 100;
const HTTP_CPU_MS_PER_MIB = 100;

/** Largest denial message: it goes back to kubectl, into events and the audit log. */
const MAX_MESSAGE_BYTES = 64 * 1024;

// A full collection on demand: the tables settle the heap before a large admission, so the GC debt of
// what came before (2 MiB strings, generated pods) is not billed to it; the memory test measures with it.
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// One app for the file; each run installs the cluster of its scenario behind the real mutator.
let cluster: Lookups = memoryLookups({});
const lookups: Lookups = {
  namespace: (name) => cluster.namespace(name),
  serviceAccount: (namespace, name) => cluster.serviceAccount(namespace, name),
  secretProviderClass: (namespace, name) => cluster.secretProviderClass(namespace, name),
};
// The real mutator, its CPU time taken for the bound.
const realMutator = createMutator(SETTINGS, lookups);
let mutateCpuMs = 0;
const timedMutator: Mutator = async (request) => {
  const start = process.cpuUsage();
  try {
    return await realMutator(request);
  } finally {
    mutateCpuMs = cpuMsSince(start);
  }
};
const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
const app = buildApp({ mutator: timedMutator, logger: createLogger('webhook', discard) });
t.teardown(() => app.close());

// ---------------------------------------------------------------------------------------------- harness

interface Answer {
  status: number;
  text: string;
  json: unknown;
}

let slowest = 0;
/** The (least) mutate() CPU time of the last admission, for the tables' reports. */
let lastMutateMs = 0;

/** POST /mutate, with the admission's CPU time held to the bounds; `settle` collects garbage first. */
async function post(payload: string | Buffer, settle = false): Promise<Answer> {
  let answer: Answer | undefined;
  let overMutate = Infinity;
  let overHttp = Infinity;
  let attempts = 0;
  // Retried only when over by less than the bound itself: a GC pause, not a blowup.
  const retry = (): boolean => (overMutate > 0 || overHttp > 0) && Math.max(overMutate, overHttp) < MUTATE_CPU_BOUND_MS;
  do {
    if (settle) gc();
    mutateCpuMs = 0;
    const start = process.cpuUsage();
    const res = await app.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload });
    const httpMs = cpuMsSince(start);
    const mib = (Buffer.byteLength(payload) + Buffer.byteLength(res.body)) / (1024 * 1024);
    overMutate = Math.min(overMutate, mutateCpuMs - MUTATE_CPU_BOUND_MS);
    overHttp = Math.min(overHttp, httpMs - HTTP_CPU_BOUND_MS - HTTP_CPU_MS_PER_MIB * mib);
    answer ??= { status: res.statusCode, text: res.body, json: parseJson(res.body) };
  } while (++attempts < 3 && retry());
  lastMutateMs = MUTATE_CPU_BOUND_MS + overMutate;
  slowest = Math.max(slowest, lastMutateMs);
  const tries = attempts === 1 ? '' : ` (least of ${attempts})`;
  assert.ok(overMutate <= 0, `mutate() took ${(MUTATE_CPU_BOUND_MS + overMutate).toFixed(1)} ms of CPU${tries}, over the bound of ${MUTATE_CPU_BOUND_MS} ms`);
  assert.ok(
    overHttp <= 0,
    `the HTTP round took ${overHttp.toFixed(1)} ms of CPU more than its bound (${HTTP_CPU_BOUND_MS} ms + ${HTTP_CPU_MS_PER_MIB} ms/MiB)${tries}`,
  );
  return answer as Answer;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

let uids = 0;
const nextUid = (): string => `00000000-0000-4000-8000-${String(++uids).padStart(12, '0')}`;

/** Admit `pod` as a CREATE in the scenario's cluster; the request's uid comes back with the answer. */
async function admit(
  s: { namespace: string; cluster: MemoryCluster },
  pod: unknown,
  edit: (review: AdmissionReview) => void = () => {},
  settle = false,
): Promise<{ answer: Answer; uid: string }> {
  cluster = memoryLookups(s.cluster);
  const uid = nextUid();
  const review = podCreateReview(uid, s.namespace, pod);
  edit(review);
  return { answer: await post(JSON.stringify(review), settle), uid };
}

/** The answer's AdmissionResponse, once it is shown to be a well-formed AdmissionReview for `uid`. */
function responseOf(answer: Answer, uid: string): AdmissionResponse {
  assert.equal(answer.status, 200, `HTTP ${answer.status}: ${answer.text.slice(0, 500)}`);
  const body = answer.json as AdmissionReview;
  assert.deepEqual(Object.keys(body).sort(), ['apiVersion', 'kind', 'response']);
  assert.equal(body.apiVersion, 'admission.k8s.io/v1');
  assert.equal(body.kind, 'AdmissionReview');
  const response = body.response as AdmissionResponse;
  assert.equal(response.uid, uid, 'the response echoes the request uid');
  assert.equal(typeof response.allowed, 'boolean');
  if (response.patch !== undefined) {
    assert.equal(response.patchType, 'JSONPatch');
    assert.ok(Array.isArray(patchOf(response)), 'the patch is a JSON array of operations');
  }
  if (!response.allowed) {
    assert.equal(response.patch, undefined, 'a denial carries no patch');
    assert.ok(Number.isInteger(response.status?.code), 'a denial has a status code');
    assert.equal(typeof response.status?.message, 'string');
  }
  if (response.warnings !== undefined)
    assert.ok(
      response.warnings.every((w) => typeof w === 'string'),
      'warnings are strings',
    );
  return response;
}

function patchOf(response: AdmissionResponse): Operation[] | undefined {
  return response.patch === undefined ? undefined : (JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[]);
}

/** A client error: 4xx with a JSON { error, message }. */
function assertClientError(answer: Answer): void {
  assert.ok(answer.status >= 400 && answer.status < 500, `HTTP ${answer.status}: ${answer.text.slice(0, 500)}`);
  const body = answer.json as { error?: unknown; message?: unknown };
  assert.equal(typeof body?.error, 'string', 'a JSON error body');
  assert.equal(typeof body?.message, 'string');
}

/** A denial of a configuration: 400 with a message naming `mentions`. */
function assertDenied(response: AdmissionResponse, ...mentions: string[]): void {
  assert.equal(response.allowed, false, 'denied');
  assert.equal(response.status?.code, 400);
  for (const mention of mentions) assert.ok(response.status?.message?.includes(mention), `the message names ${mention}: ${brief(response.status?.message)}`);
}

function assertAllowedUntouched(response: AdmissionResponse): void {
  assert.equal(response.allowed, true, `allowed: ${brief(response.status?.message)}`);
  assert.equal(response.patch, undefined, 'no patch');
}

const json = (value: unknown): string => JSON.stringify(value) ?? 'undefined';
const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const names = (list: Array<{ name: string }> | undefined): string[] => (list ?? []).map((x) => x.name);
const env = (c: V1Container | undefined): Map<string, string | undefined> => new Map((c?.env ?? []).map((e) => [e.name, e.value]));

/** A denial message for an assertion's text: its start, shortened (assertion texts are built every time). */
function brief(message: string | undefined): string {
  return elide((message ?? '').slice(0, 2000));
}

// Reports quote the counterexample: runs of one repeated piece (the huge values) are shortened.
function elide(text: string): string {
  return text.replace(/(.{1,2}?)\1{64,}/gs, (run, unit: string) => `${unit}…(×${run.length / unit.length})`);
}

// An interrupted property's run is not stopped (fast-check races it against the time limit): it is
// awaited before the next property starts, so no two admissions share the cluster or the CPU clock.
let running: Promise<unknown> = Promise.resolve();
function settled<A extends unknown[]>(predicate: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return (...args) => {
    const run = predicate(...args);
    running = run.catch(() => undefined);
    return run;
  };
}

/** What a table case's checks threw, or undefined when they all held. */
async function failure(check: () => Promise<void>): Promise<string | undefined> {
  try {
    await check();
    return undefined;
  } catch (error) {
    return elide((error as Error).message);
  }
}

interface Budget {
  numRuns: number;
  seconds: number;
}

/** Check a property under the file's seed; a failure is reported with its shrunk counterexample. */
async function holds<Ts>(t: Test, property: fc.IAsyncProperty<Ts>, budget: Budget): Promise<void> {
  slowest = 0;
  const numRuns = Math.ceil(budget.numRuns * SCALE);
  const details = await fc.check(property, { seed: SEED, numRuns, plugins: [fc.interruptAfterTimeLimit(budget.seconds * SCALE * 1000)] });
  await running;
  if (details.failed) {
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    t.fail(elide(`${error}\n${fc.defaultReportMessage(details) ?? 'the property failed'}`));
    return;
  }
  const runs = `${details.numRuns} of ${numRuns} runs${details.interrupted ? ', stopped by the time limit' : ''}`;
  t.ok(details.numRuns > 0, `${runs} (seed ${SEED}); slowest mutate() ${slowest.toFixed(1)} ms of CPU`);
}

// ---------------------------------------------------------------------------------------------- the injected pod

/** Every property of a successful injection of scenario `s` (DESIGN.md "What the webhook injects"). */
function checkInjection(s: Scenario, before: V1Pod, response: AdmissionResponse): V1Pod {
  const x = s.expected;
  assert.equal(response.allowed, true, `denied: ${brief(response.status?.message)}`);
  assert.ok(response.patch !== undefined, 'a patch');
  const after = applyResponse(before, response);
  assert.deepEqual(podViolations(after), [], "the injected pod passes the schema and the API server's rules");
  checkKept(before, after, x);

  const spec = after.spec as NonNullable<V1Pod['spec']>;
  const inits = spec.initContainers ?? [];
  const at = inits.findIndex((c) => c.name === INJECTED.initContainer);
  assert.equal(inits.filter((c) => c.name === INJECTED.initContainer).length, 1, 'one init container akv-injector');
  assert.equal(
    at,
    x.initFirst ? 0 : (before.spec?.initContainers ?? []).length,
    x.initFirst ? 'init-first: it runs first' : "it runs after the pod's own init containers",
  );
  const init = inits[at] as V1Container;
  assert.equal(init.image, x.windows ? SETTINGS.windowsImage : SETTINGS.image);
  assert.deepEqual(init.args, ['fetch']);
  assert.equal(init.terminationMessagePolicy, 'FallbackToLogsOnError');
  assert.ok(init.resources?.requests?.cpu !== undefined && init.resources.limits?.memory !== undefined, 'small requests and limits');
  checkFetchEnvironment(init, x);
  assert.deepEqual(
    [...(init.volumeMounts ?? [])].sort((a, b) => a.name.localeCompare(b.name)),
    [
      { name: INJECTED.secretsVolume, mountPath: x.mountPath },
      { name: INJECTED.tokenVolume, mountPath: INJECTED.tokenMountPath, readOnly: true },
    ],
    'the token read-only at its path, the secrets read-write at the mount path',
  );
  checkSecurityContext(init, x.windows);
  checkCanStart(init, after);
  for (const level of ['baseline', 'restricted'] as const) {
    if (podSecurityViolations(before, level).length > 0) continue;
    assert.deepEqual(podSecurityViolations(after, level), [], `a ${level} pod stays ${level} once injected`);
  }

  const refresh = inits.find((c) => c.name === INJECTED.refreshContainer);
  if (x.refreshInterval === undefined) assert.equal(refresh, undefined, 'no refresh sidecar without refresh-interval');
  else checkRefreshSidecar(inits, at, init, x);

  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  assert.deepEqual(volumes.get(INJECTED.tokenVolume)?.projected?.sources, [
    { serviceAccountToken: { audience: INJECTED.tokenAudience, expirationSeconds: x.tokenExpiration, path: INJECTED.tokenFile } },
  ]);
  const emptyDir = volumes.get(INJECTED.secretsVolume)?.emptyDir;
  assert.ok(emptyDir?.sizeLimit !== undefined, 'the secrets volume is an emptyDir with a size limit');
  assert.equal(emptyDir.medium, x.windows ? undefined : 'Memory', x.windows ? 'disk-backed on Windows' : 'tmpfs on Linux');

  const injected: string[] = [INJECTED.initContainer, INJECTED.refreshContainer];
  for (const c of [...inits, ...spec.containers]) {
    const mounts = c.volumeMounts ?? [];
    if (!injected.includes(c.name)) assert.ok(!mounts.some((m) => m.name === INJECTED.tokenVolume), `${c.name} does not mount the token`);
    const secrets = mounts.filter((m) => m.name === INJECTED.secretsVolume);
    if (injected.includes(c.name)) continue;
    const want = x.mounted.includes(c.name) ? [{ name: INJECTED.secretsVolume, mountPath: x.mountPath, readOnly: true }] : [];
    assert.deepEqual(secrets, want, `${c.name}: ${want.length > 0 ? 'the secrets read-only at the mount path' : 'no secrets mount'}`);
  }
  assert.equal(after.metadata?.annotations?.[ANNOTATION.status], 'injected');

  const warned = (response.warnings ?? []).some((w) => w.includes('secretObjects'));
  assert.equal(warned, x.secretObjectsWarning, x.secretObjectsWarning ? 'secretObjects: admitted with a warning' : 'no secretObjects warning');
  return after;
}

/** Nothing the pod had is removed, renamed, reordered or changed; only the injected parts are new. */
function checkKept(before: V1Pod, after: V1Pod, x: Expected): void {
  const was = before.spec as NonNullable<V1Pod['spec']>;
  const now = after.spec as NonNullable<V1Pod['spec']>;
  assert.deepEqual(names(now.containers), names(was.containers), 'the app containers, in order');
  assert.deepEqual(
    names(now.initContainers).filter((n) => n !== INJECTED.initContainer && n !== INJECTED.refreshContainer),
    names(was.initContainers),
    "the pod's init containers, in order",
  );
  for (const original of [...(was.initContainers ?? []), ...was.containers]) {
    const { volumeMounts: mounts, ...kept } = [...(now.initContainers ?? []), ...now.containers].find((c) => c.name === original.name) as V1Container;
    const { volumeMounts: originalMounts, ...rest } = original;
    assert.deepEqual(kept, rest, `${original.name}: unchanged but for its mounts`);
    const extra = x.mounted.includes(original.name) ? [{ name: INJECTED.secretsVolume, mountPath: x.mountPath, readOnly: true }] : [];
    assert.deepEqual(mounts ?? [], [...(originalMounts ?? []), ...extra], `${original.name}: its mounts kept, the secrets mount appended`);
  }
  const volumes = new Map((now.volumes ?? []).map((v) => [v.name, v]));
  for (const original of was.volumes ?? []) assert.deepEqual(volumes.get(original.name), original, `volume ${original.name} unchanged`);
  assert.deepEqual(
    names(now.volumes)
      .filter((n) => !names(was.volumes).includes(n))
      .sort(),
    [INJECTED.secretsVolume, INJECTED.tokenVolume],
  );
  const { containers: _c, initContainers: _i, volumes: _v, ...otherSpec } = now;
  const { containers: _wc, initContainers: _wi, volumes: _wv, ...otherSpecBefore } = was;
  assert.deepEqual(otherSpec, otherSpecBefore, 'every other spec field unchanged');
  const { annotations, ...metadata } = after.metadata ?? {};
  const { annotations: annotationsBefore, ...metadataBefore } = before.metadata ?? {};
  assert.deepEqual(metadata, metadataBefore, 'metadata unchanged but for the annotations');
  assert.deepEqual(annotations, { ...annotationsBefore, [ANNOTATION.status]: 'injected' }, "the pod's annotations kept, only the status added");
}

function checkFetchEnvironment(init: V1Container, x: Expected): void {
  const vars = env(init);
  assert.equal(vars.get('AZURE_CLIENT_ID')?.toLowerCase(), x.clientId.toLowerCase(), 'AZURE_CLIENT_ID by precedence');
  assert.equal(vars.get('AZURE_TENANT_ID')?.toLowerCase(), x.tenantId.toLowerCase(), 'AZURE_TENANT_ID by precedence');
  assert.equal(vars.get('AZURE_FEDERATED_TOKEN_FILE'), `${INJECTED.tokenMountPath}/${INJECTED.tokenFile}`);
  assert.equal(vars.get('AZURE_AUTHORITY_HOST'), x.authorityHost, 'the authority of the resolved cloud');
  assert.equal(vars.get('AKV_INJECTOR_VAULT_URL'), x.vaultUrl, 'the vault URL by precedence, normalized');
  assert.equal(vars.get('AKV_INJECTOR_OUTPUT_DIR'), x.mountPath);
  const objects = JSON.parse(vars.get('AKV_INJECTOR_OBJECTS') ?? 'null') as Array<{ objectName: string }>;
  assert.deepEqual(
    objects.map((o) => o.objectName),
    x.objectNames,
    'the object list by precedence',
  );
}

// The restricted Pod Security Standard on Linux; Windows rejects these fields.
function checkSecurityContext(c: V1Container, windows: boolean): void {
  if (windows) return;
  const sc = c.securityContext;
  assert.equal(sc?.runAsNonRoot, true);
  assert.equal(sc?.allowPrivilegeEscalation, false);
  assert.equal(sc?.readOnlyRootFilesystem, true);
  assert.deepEqual(sc?.capabilities?.drop, ['ALL']);
  assert.equal(sc?.seccompProfile?.type, 'RuntimeDefault');
}

// The kubelet refuses to start a container that must run as non-root with an effective user of 0.
function checkCanStart(c: V1Container, pod: V1Pod): void {
  const nonRoot = c.securityContext?.runAsNonRoot ?? pod.spec?.securityContext?.runAsNonRoot;
  const user = c.securityContext?.runAsUser ?? pod.spec?.securityContext?.runAsUser;
  if (nonRoot === true) assert.notEqual(user, 0, `${c.name} must run as non-root but would run as user 0`);
}

function checkRefreshSidecar(inits: V1Container[], at: number, init: V1Container, x: Expected): void {
  const sidecar = inits[at + 1];
  assert.equal(sidecar?.name, INJECTED.refreshContainer, 'the refresh sidecar right after akv-injector');
  assert.equal(sidecar.restartPolicy, 'Always', 'a native sidecar');
  assert.equal(sidecar.image, init.image);
  assert.deepEqual(sidecar.args, ['refresh']);
  const vars = env(sidecar);
  for (const [name, value] of env(init)) assert.equal(vars.get(name), value, `the sidecar has the fetch's ${name}`);
  const interval = vars.get('AKV_INJECTOR_REFRESH_INTERVAL');
  assert.equal(parseDuration(interval ?? ''), parseDuration(x.refreshInterval ?? ''), "AKV_INJECTOR_REFRESH_INTERVAL is the annotation's duration");
  assert.deepEqual(
    [...(sidecar.volumeMounts ?? [])].sort((a, b) => a.name.localeCompare(b.name)),
    [
      { name: INJECTED.secretsVolume, mountPath: x.mountPath },
      { name: INJECTED.tokenVolume, mountPath: INJECTED.tokenMountPath, readOnly: true },
    ],
  );
  assert.deepEqual(sidecar.securityContext, init.securityContext, 'the same security context');
}

// ---------------------------------------------------------------------------------------------- (a) any body

// Every path into a JSON tree, root first.
function jsonPaths(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  const out = [path];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...jsonPaths(v, [...path, i])));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...jsonPaths(v, [...path, k]));
  return out;
}

/** `root` with the value at `path` replaced (or deleted, for `undefined`); the root itself may be replaced. */
function setAt(root: unknown, path: ReadonlyArray<string | number>, value: unknown): unknown {
  if (path.length === 0) return value;
  const parent = path.slice(0, -1).reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], root) as Record<string | number, unknown>;
  const key = path[path.length - 1] as string | number;
  if (value === undefined && !Array.isArray(parent)) delete parent[key];
  else Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
  return root;
}

// Bodies an attacker or a broken client may send, beside random ones.
const SPECIAL_BODIES = [
  '{"__proto__": {"allowed": true}}',
  '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","__proto__":{"operation":"CREATE"}}}',
  '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2","operation":"CREATE","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"shop","object":{"constructor":{"prototype":{"polluted":true}},"spec":{"containers":[]}}}}',
  '[]',
  '""',
  'true',
  '0',
  '{}',
  '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}',
  '\ufeff{}',
  '{"a":1}{"b":2}',
  '{"a":"\\ud800"}',
  '1e999999',
  '-'.repeat(1000),
  '['.repeat(10_000),
];

const reviewWithWrongType = fc
  .tuple(validScenario(), fc.nat(), fc.oneof(fc.constantFrom(...WRONG_TYPES, undefined), fc.jsonValue({ maxDepth: 2 })))
  .map(([s, index, value]) => {
    const review = clone(podCreateReview('wrong-type-uid', s.namespace, s.pod));
    const paths = jsonPaths(review);
    return { s, body: JSON.stringify(setAt(review, paths[index % paths.length] as Array<string | number>, value)) ?? '' };
  });

const anyBody: fc.Arbitrary<{ s?: Scenario; body: string | Buffer }> = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((bytes) => ({ body: Buffer.from(bytes) })),
  fc.json({ maxDepth: 3 }).map((body) => ({ body })),
  fc.constantFrom(...SPECIAL_BODIES).map((body) => ({ body })),
  fc
    .tuple(validScenario(), fc.string({ minLength: 1, maxLength: 40 }))
    .map(([s, uid]) => ({ s, body: JSON.stringify(podCreateReview(uid, s.namespace, s.pod)) })),
  { weight: 4, arbitrary: reviewWithWrongType },
);

t.test('(a) any body: a valid AdmissionReview echoing the uid, or a JSON 4xx; never a 5xx, never a crash', async (t) => {
  await holds(
    t,
    fc.asyncProperty(
      anyBody,
      settled(async ({ s, body }) => {
        cluster = memoryLookups(s?.cluster ?? {});
        const answer = await post(body);
        if (answer.status !== 200) return assertClientError(answer);
        const sent = JSON.parse(body.toString()) as AdmissionReview;
        const uid = sent.request?.uid as string;
        assert.ok(typeof uid === 'string' && uid !== '', 'only a request with a uid gets an AdmissionReview');
        const response = responseOf(answer, uid);
        // The memory cluster never fails a read: a 500 here is the webhook's own failure.
        if (!response.allowed) assert.equal(response.status?.code, 400, `a denial is the pod's fault: ${brief(response.status?.message)}`);
        const operations = patchOf(response);
        if (operations !== undefined) fastJsonPatch.applyPatch(clone(sent.request?.object), operations, true, false);
      }),
    ),
    { numRuns: 300, seconds: 2 },
  );
});

// ---------------------------------------------------------------------------------------------- (b) valid pods

t.test('(b) valid pod × valid configuration: injected as DESIGN.md says, everything kept, idempotent', async (t) => {
  await holds(
    t,
    fc.asyncProperty(
      validScenario(),
      settled(async (s) => {
        const before = clone(s.pod);
        const { answer, uid } = await admit(s, before);
        const after = checkInjection(s, before, responseOf(answer, uid));

        // Sent again (reinvocation, a retried request): nothing to do.
        const again = await admit(s, after);
        assertAllowedUntouched(responseOf(again.answer, again.uid));
        // Its status annotation lost: only the annotation comes back.
        const lost = clone(after);
        delete lost.metadata?.annotations?.[ANNOTATION.status];
        const redo = await admit(s, lost);
        assert.deepEqual(applyResponse(lost, responseOf(redo.answer, redo.uid)), after, 'injecting an injected pod only restores its status');
      }),
    ),
    { numRuns: 100, seconds: 2.5 },
  );
});

t.test('(b) with refresh-interval: the refresh sidecar runs beside the fetch, with the token and the secrets', async (t) => {
  await holds(
    t,
    fc.asyncProperty(
      validScenario({ refresh: true }),
      settled(async (s) => {
        const before = clone(s.pod);
        const { answer, uid } = await admit(s, before);
        const after = checkInjection(s, before, responseOf(answer, uid));
        const again = await admit(s, after);
        assertAllowedUntouched(responseOf(again.answer, again.uid));
      }),
    ),
    { numRuns: 30, seconds: 1 },
  );
});

// ---------------------------------------------------------------------------------------------- (c) invalid values

/** Settings a SecretProviderClass can give: a namespace default for them only counts without one. */
const SPC_SETTINGS: readonly ConfigKey[] = ['vault', 'objects', 'cloud', 'clientId', 'tenantId'];

/** The scenario with `value` for `key` on the pod, or as the namespace's default (the pod saying nothing). */
function withValue(s: Scenario, key: ConfigKey, value: string, onNamespace: boolean): { s: Scenario; pod: V1Pod } {
  const pod = clone(s.pod);
  const annotations = pod.metadata?.annotations as Record<string, string>;
  const cluster = clone(s.cluster);
  if (!onNamespace) {
    annotations[ANNOTATION[key]] = value;
    return { s: { ...s, cluster }, pod };
  }
  const namespace = cluster.namespaces.find((n) => n.metadata?.name === s.namespace);
  const defaults = namespace?.metadata?.annotations as Record<string, string>;
  delete annotations[ANNOTATION[key]];
  if (SPC_SETTINGS.includes(key)) {
    delete annotations[ANNOTATION.secretProviderClass];
    delete defaults[ANNOTATION.secretProviderClass];
  }
  defaults[ANNOTATION[key]] = value;
  return { s: { ...s, cluster }, pod };
}

t.test('(c) one invalid annotation: denied with 400, the message naming the full annotation key', async (t) => {
  for (const key of CONFIG_KEYS) {
    // inject and containers are the pod's own; the others are namespace defaults too.
    const podOnly = key === 'inject' || key === 'containers';
    await t.test(ANNOTATION[key], async (t) => {
      await holds(
        t,
        fc.asyncProperty(
          validScenario(),
          invalidValue(key),
          fc.boolean(),
          settled(async (base, value, onNamespace) => {
            const { s, pod } = withValue(base, key, value, onNamespace && !podOnly);
            const { answer, uid } = await admit(s, pod);
            assertDenied(responseOf(answer, uid), ANNOTATION[key]);
          }),
        ),
        { numRuns: 30, seconds: 0.6 },
      );
    });
  }
});

t.test('(c) a mount path where a selected container already mounts a volume: denied naming the mount-path annotation', async (t) => {
  await holds(
    t,
    fc.asyncProperty(
      validScenario(),
      fc.nat(),
      settled(async (base, index) => {
        const taken = (base.pod.spec?.containers ?? []).filter((c) => base.expected.mounted.includes(c.name)).flatMap((c) => c.volumeMounts ?? []);
        fc.pre(taken.length > 0);
        const { s, pod } = withValue(base, 'mountPath', (taken[index % taken.length] as { mountPath: string }).mountPath, false);
        const { answer, uid } = await admit(s, pod);
        assertDenied(responseOf(answer, uid), ANNOTATION.mountPath);
      }),
    ),
    { numRuns: 40, seconds: 0.5 },
  );
});

t.test('(c) an invalid SecretProviderClass: denied naming the class and its parameter', async (t) => {
  await holds(
    t,
    fc.asyncProperty(
      validScenario(),
      fc.constantFrom(...INVALID_SPCS),
      settled(async (base, bad) => {
        const s = clone(base);
        const annotations = s.pod.metadata?.annotations as Record<string, string>;
        annotations[ANNOTATION.secretProviderClass] = 'bad-class';
        for (const key of bad.drop) delete annotations[ANNOTATION[key]];
        s.cluster.secretProviderClasses.push({
          metadata: { namespace: s.namespace, name: 'bad-class' },
          spec: { provider: bad.provider, parameters: bad.parameters },
        });
        const { answer, uid } = await admit(s, s.pod);
        assertDenied(responseOf(answer, uid), `SecretProviderClass ${s.namespace}/bad-class`, bad.names);
      }),
    ),
    { numRuns: 40, seconds: 0.5 },
  );
});

// A table, not a property: each huge value is a 2 MiB body, too costly to draw at random until all are seen.
t.test('(c) every huge value (up to 2 MiB): denied naming the annotation, within the time bound, with a small answer', async (t) => {
  const scenarios = fc.sample(validScenario(), { seed: SEED, numRuns: HUGE_INVALID_VALUES.length });
  for (const [i, { key, value }] of HUGE_INVALID_VALUES.entries()) {
    const { s, pod } = withValue(scenarios[i] as Scenario, key, value, false);
    const label = `${ANNOTATION[key]}: ${JSON.stringify(elide(value.slice(0, 300)).slice(0, 40))}… (${value.length} characters)`;
    let response: AdmissionResponse | undefined;
    const problem = await failure(async () => {
      const { answer, uid } = await admit(s, pod, undefined, true);
      response = responseOf(answer, uid);
      assertDenied(response, ANNOTATION[key]);
    });
    t.equal(problem, undefined, `${label}: denied naming the annotation, within the time bound (mutate() ${lastMutateMs.toFixed(1)} ms)`);
    if (response === undefined || response.allowed) continue;
    const bytes = Buffer.byteLength(response.status?.message ?? '');
    t.ok(bytes <= MAX_MESSAGE_BYTES, `${label}: the message is ${bytes} bytes (at most ${MAX_MESSAGE_BYTES}), the value is not echoed whole`);
  }
});

// ---------------------------------------------------------------------------------------------- wide pods

/**
 * Counts no real pod has, each within the body limit, sized so that the linear work of a correct webhook
 * stays under half the bound (measured with a settled heap) while a walk quadratic in them costs several
 * times the bound: the webhook may deny such a pod, but must answer in time.
 */
const many = <T>(count: number, make: (i: number) => T): T[] => Array.from({ length: count }, (_, i) => make(i));
const WIDE_PODS: ReadonlyArray<{ name: string; edit: (pod: V1Pod) => void }> = [
  { name: '40000 init containers', edit: (pod) => void (pod.spec!.initContainers = many(40_000, (i) => ({ name: `wide-${i}`, image: 'busybox:1.36' }))) },
  // Every app container gets a mount, 5–10 µs each in the patch: refused up front, or well over the bound.
  { name: '60000 app containers', edit: (pod) => void (pod.spec!.containers = many(60_000, (i) => ({ name: `wide-${i}`, image: 'busybox:1.36' }))) },
  {
    name: `30000 init containers, each named in ${ANNOTATION.containers}`,
    edit: (pod) => {
      pod.spec!.initContainers = many(30_000, (i) => ({ name: `wide-${i}`, image: 'busybox:1.36' }));
      pod.metadata!.annotations![ANNOTATION.containers] = many(30_000, (i) => `wide-${i}`).join(',');
    },
  },
  { name: '30000 volumes', edit: (pod) => void (pod.spec!.volumes = many(30_000, (i) => ({ name: `wide-${i}`, emptyDir: {} }))) },
  {
    name: '30000 mounts in one container',
    edit: (pod) => void (pod.spec!.containers[0]!.volumeMounts = many(30_000, (i) => ({ name: 'kube-api-access-7kq2x', mountPath: `/wide/${i}` }))),
  },
  { name: '30000 env vars in one container', edit: (pod) => void (pod.spec!.containers[0]!.env = many(30_000, (i) => ({ name: `WIDE_${i}`, value: 'x' }))) },
  // Maps cost 2–3 µs a key in object spreads and walks.
  {
    name: '10000 annotations',
    edit: (pod) => void Object.assign(pod.metadata!.annotations!, Object.fromEntries(many(10_000, (i) => [`example.com/wide-${i}`, 'x']))),
  },
  { name: '10000 labels', edit: (pod) => void Object.assign((pod.metadata!.labels ??= {}), Object.fromEntries(many(10_000, (i) => [`wide-${i}`, 'x']))) },
];

// A table, not a property: each body is up to a MiB, and a quadratic walk would stall the file, not fail it.
t.test('a pod with tens of thousands of containers, volumes, mounts or annotations: answered within the time bound', async (t) => {
  const fixture = loadReview('deployment-pod');
  const namespace = fixture.request.namespace as string;
  const serviceAccount = {
    namespace,
    name: fixture.request.object.spec?.serviceAccountName,
    annotations: { 'azure.workload.identity/client-id': '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01' },
  };
  const s = { namespace, cluster: { namespaces: [{ metadata: { name: namespace } }], serviceAccounts: [{ metadata: serviceAccount }] } };
  for (const c of WIDE_PODS) {
    const pod = clone(fixture.request.object);
    c.edit(pod);
    const problem = await failure(async () => {
      const { answer, uid } = await admit(s, pod, undefined, true);
      // The server may refuse the body itself (it bounds the JSON values of one): a 4xx is an answer too.
      if (answer.status !== 200) return assertClientError(answer);
      const response = responseOf(answer, uid);
      if (!response.allowed) assert.equal(response.status?.code, 400, brief(response.status?.message));
    });
    t.equal(problem, undefined, `${c.name}: injected, denied (400) or refused (4xx), within the time bound (mutate() ${lastMutateMs.toFixed(1)} ms)`);
  }
});

// ---------------------------------------------------------------------------------------------- (d) not injected

type Skip = 'not opted in' | 'opted out' | 'protected namespace' | 'already injected' | 'not a CREATE' | 'not a pod' | 'a subresource';
const SKIPS: readonly Skip[] = ['not opted in', 'opted out', 'protected namespace', 'already injected', 'not a CREATE', 'not a pod', 'a subresource'];

const skipCase = fc.record({
  s: validScenario(),
  skip: fc.constantFrom(...SKIPS),
  // Whatever else the pod says, valid or not, does not matter when it is not injected.
  junk: fc.option(
    fc.constantFrom(...CONFIG_KEYS.filter((k) => k !== 'inject')).chain((key) => fc.tuple(fc.constant(key), invalidValue(key))),
    { nil: undefined },
  ),
  label: fc.constantFrom(undefined, 'disabled', 'true', 'false', ''),
  protectedNamespace: fc.constantFrom(...PROTECTED_NAMESPACES),
  operation: fc.constantFrom('UPDATE', 'DELETE', 'CONNECT'),
  resource: fc.constantFrom({ group: 'apps', version: 'v1', resource: 'deployments' }, { group: '', version: 'v1', resource: 'services' }),
  subResource: fc.constantFrom('ephemeralcontainers', 'status', 'binding', 'eviction'),
});

t.test('(d) not opted in, opted out, protected or already injected: allowed, the pod untouched', async (t) => {
  await holds(
    t,
    fc.asyncProperty(
      skipCase,
      settled(async (c) => {
        const s = clone(c.s);
        const annotations = s.pod.metadata?.annotations as Record<string, string>;
        if (c.junk !== undefined) annotations[ANNOTATION[c.junk[0]]] = c.junk[1];
        const namespace = s.cluster.namespaces.find((n) => n.metadata?.name === s.namespace);
        const labels = namespace?.metadata?.labels as Record<string, string>;
        let edit: (review: AdmissionReview) => void = () => {};
        if (c.skip === 'not opted in') {
          delete annotations[ANNOTATION.inject];
          if (c.label === undefined) delete labels[NAMESPACE_LABEL];
          else labels[NAMESPACE_LABEL] = c.label;
        } else if (c.skip === 'opted out') {
          annotations[ANNOTATION.inject] = 'false';
        } else if (c.skip === 'protected namespace') {
          annotations[ANNOTATION.inject] = 'true';
          s.namespace = c.protectedNamespace;
          s.cluster.namespaces.push({ metadata: { name: c.protectedNamespace, labels: { [NAMESPACE_LABEL]: 'enabled' } } });
        } else if (c.skip === 'already injected') {
          annotations[ANNOTATION.status] = 'injected';
        } else if (c.skip === 'not a CREATE') {
          edit = (review) => void Object.assign(review.request ?? {}, { operation: c.operation });
        } else if (c.skip === 'not a pod') {
          edit = (review) => void Object.assign(review.request ?? {}, { resource: c.resource, requestResource: c.resource });
        } else {
          edit = (review) => void Object.assign(review.request ?? {}, { subResource: c.subResource });
        }
        const { answer, uid } = await admit(s, s.pod, edit);
        const response = responseOf(answer, uid);
        assertAllowedUntouched(response);
        assert.equal(response.status, undefined, 'a plain allow');
      }),
    ),
    { numRuns: 150, seconds: 1.5 },
  );
});

// ---------------------------------------------------------------------------------------------- (e) wrong types

/** A field the webhook reads or edits, the JSON type it must have, and whether null (absent) is fine. */
interface Slot {
  path: Array<string | number>;
  type: string;
  nullable: boolean;
}

function slotsOf(pod: V1Pod): Slot[] {
  const slots: Slot[] = [
    { path: ['metadata'], type: 'object', nullable: true },
    { path: ['metadata', 'annotations'], type: 'object', nullable: true },
    { path: ['spec'], type: 'object', nullable: false },
    { path: ['spec', 'containers'], type: 'array', nullable: false },
    { path: ['spec', 'initContainers'], type: 'array', nullable: true },
    { path: ['spec', 'volumes'], type: 'array', nullable: true },
    { path: ['spec', 'serviceAccountName'], type: 'string', nullable: true },
    { path: ['spec', 'os'], type: 'object', nullable: true },
    { path: ['spec', 'securityContext'], type: 'object', nullable: true },
  ];
  for (const key of Object.keys(pod.metadata?.annotations ?? {})) {
    if (key.startsWith('akv-injector.io/')) slots.push({ path: ['metadata', 'annotations', key], type: 'string', nullable: false });
  }
  for (const key of ['name', 'generateName', 'namespace'] as const)
    if (pod.metadata?.[key] !== undefined) slots.push({ path: ['metadata', key], type: 'string', nullable: true });
  if (pod.spec?.os !== undefined) slots.push({ path: ['spec', 'os', 'name'], type: 'string', nullable: true });
  if (pod.spec?.securityContext !== undefined) slots.push({ path: ['spec', 'securityContext', 'runAsUser'], type: 'number', nullable: true });
  for (const list of ['initContainers', 'containers'] as const) {
    (pod.spec?.[list] ?? []).forEach((c, i) => {
      slots.push({ path: ['spec', list, i], type: 'object', nullable: false }, { path: ['spec', list, i, 'name'], type: 'string', nullable: false });
      slots.push({ path: ['spec', list, i, 'volumeMounts'], type: 'array', nullable: true });
      (c.volumeMounts ?? []).forEach((_, j) => {
        const at = ['spec', list, i, 'volumeMounts', j];
        slots.push(
          { path: at, type: 'object', nullable: false },
          { path: [...at, 'name'], type: 'string', nullable: false },
          { path: [...at, 'mountPath'], type: 'string', nullable: false },
        );
      });
    });
  }
  (pod.spec?.volumes ?? []).forEach((_, k) => {
    slots.push({ path: ['spec', 'volumes', k], type: 'object', nullable: false }, { path: ['spec', 'volumes', k, 'name'], type: 'string', nullable: false });
  });
  return slots;
}

t.test('(e) a field the webhook reads has the wrong type: denied with 400 or allowed without a patch, never a 500', async (t) => {
  await holds(
    t,
    fc.asyncProperty(
      validScenario(),
      fc.nat(),
      fc.nat(),
      settled(async (s, slotIndex, valueIndex) => {
        const slots = slotsOf(s.pod);
        const slot = slots[slotIndex % slots.length] as Slot;
        const wrong = WRONG_TYPES.filter((v) => jsonType(v) !== slot.type && !(v === null && slot.nullable));
        const pod = setAt(clone(s.pod), slot.path, wrong[valueIndex % wrong.length]);
        const { answer, uid } = await admit(s, pod);
        const response = responseOf(answer, uid);
        const where = `${slot.path.join('.')} = ${json(wrong[valueIndex % wrong.length])}`;
        if (response.allowed) assert.equal(response.patch, undefined, `${where}: allowed with a patch`);
        else assert.equal(response.status?.code, 400, `${where}: ${brief(response.status?.message)}`);
      }),
    ),
    { numRuns: 200, seconds: 1.25 },
  );
});

t.test("(e) the pod shape check's quick answer agrees with the full one, on valid pods and on every wrong type", async (t) => {
  await holds(
    t,
    fc.asyncProperty(validScenario(), fc.nat(), fc.nat(), async (s, slotIndex, valueIndex) => {
      assert.equal(isReadablePod(s.pod), true, 'a valid pod');
      assert.deepEqual(shapeProblems(s.pod), []);
      const slots = slotsOf(s.pod);
      const slot = slots[slotIndex % slots.length] as Slot;
      const wrong = WRONG_TYPES.filter((v) => jsonType(v) !== slot.type && !(v === null && slot.nullable));
      const pod = setAt(clone(s.pod), slot.path, wrong[valueIndex % wrong.length]);
      const where = `${slot.path.join('.')} = ${json(wrong[valueIndex % wrong.length])}`;
      assert.equal(isReadablePod(pod), shapeProblems(pod).length === 0, where);
      assert.deepEqual(podShapeProblems(pod), shapeProblems(pod), where);
    }),
    { numRuns: 500, seconds: 1 },
  );
});

// ---------------------------------------------------------------------------------------------- reserved names

type Collision =
  | 'app container akv-injector'
  | 'init container akv-injector'
  | 'app container akv-injector-refresh'
  | 'sidecar akv-injector-refresh'
  | 'volume akv-injector-secrets'
  | 'volume akv-injector-token';
const COLLISIONS: readonly Collision[] = [
  'app container akv-injector',
  'init container akv-injector',
  'app container akv-injector-refresh',
  'sidecar akv-injector-refresh',
  'volume akv-injector-secrets',
  'volume akv-injector-token',
];
const FOREIGN_SOURCES = [
  { hostPath: { path: '/var/lib/secrets', type: 'DirectoryOrCreate' } },
  { configMap: { name: 'settings' } },
  { persistentVolumeClaim: { claimName: 'data' } },
  { emptyDir: {} },
  { projected: { sources: [{ serviceAccountToken: { audience: 'vault', path: 'token' } }] } },
];

function collide(pod: V1Pod, collision: Collision, source: object, mountIt: boolean): string {
  const spec = pod.spec as NonNullable<V1Pod['spec']>;
  const user = { image: 'busybox:1.36', args: ['sh', '-c', 'true'] };
  switch (collision) {
    case 'app container akv-injector':
      spec.containers.push({ name: INJECTED.initContainer, ...user });
      return INJECTED.initContainer;
    case 'init container akv-injector':
      spec.initContainers = [...(spec.initContainers ?? []), { name: INJECTED.initContainer, ...user }];
      return INJECTED.initContainer;
    case 'app container akv-injector-refresh':
      spec.containers.push({ name: INJECTED.refreshContainer, ...user });
      return INJECTED.refreshContainer;
    case 'sidecar akv-injector-refresh':
      spec.initContainers = [...(spec.initContainers ?? []), { name: INJECTED.refreshContainer, ...user, restartPolicy: 'Always' }];
      return INJECTED.refreshContainer;
    case 'volume akv-injector-secrets':
    case 'volume akv-injector-token': {
      const name = collision === 'volume akv-injector-secrets' ? INJECTED.secretsVolume : INJECTED.tokenVolume;
      spec.volumes = [...(spec.volumes ?? []), { name, ...source }];
      if (mountIt) (spec.containers[0] as V1Container).volumeMounts = [...(spec.containers[0]?.volumeMounts ?? []), { name, mountPath: '/app-reserved' }];
      return name;
    }
  }
}

t.test("a pod using a name akv-injector injects: denied naming it, or injected with akv-injector's own parts", async (t) => {
  await holds(
    t,
    fc.asyncProperty(
      validScenario(),
      fc.constantFrom(...COLLISIONS),
      fc.constantFrom(...FOREIGN_SOURCES),
      fc.boolean(),
      settled(async (s, collision, source, mountIt) => {
        const before = clone(s.pod);
        const name = collide(before, collision, source, mountIt);
        fc.pre(podViolations(before).length === 0);
        const { answer, uid } = await admit(s, before);
        const response = responseOf(answer, uid);
        if (!response.allowed) return assertDenied(response, name);
        const after = applyResponse(before, response);
        assert.deepEqual(podViolations(after), [], "the injected pod passes the API server's rules");
        const spec = after.spec as NonNullable<V1Pod['spec']>;
        const init = (spec.initContainers ?? []).find((c) => c.name === INJECTED.initContainer);
        assert.equal(init?.image, s.expected.windows ? SETTINGS.windowsImage : SETTINGS.image, "akv-injector is the webhook's init container");
        assert.deepEqual(init?.args, ['fetch']);
        const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
        assert.equal(
          volumes.get(INJECTED.tokenVolume)?.projected?.sources?.[0]?.serviceAccountToken?.audience,
          INJECTED.tokenAudience,
          "the token volume is the webhook's",
        );
        assert.deepEqual(
          Object.keys(volumes.get(INJECTED.secretsVolume) ?? {}).sort(),
          ['emptyDir', 'name'],
          "the secrets volume is an emptyDir, never the pod's disk",
        );
        for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
          if (c !== init) assert.ok(!(c.volumeMounts ?? []).some((m) => m.name === INJECTED.tokenVolume), `${c.name} does not mount the token`);
        }
      }),
    ),
    { numRuns: 80, seconds: 1.5 },
  );
});

t.test("an injected pod whose app container mounts the token: denied, the token stays the init container's", async (t) => {
  await holds(
    t,
    fc.asyncProperty(
      validScenario(),
      settled(async (s) => {
        const first = await admit(s, clone(s.pod));
        const injected = applyResponse(clone(s.pod), responseOf(first.answer, first.uid));
        delete injected.metadata?.annotations?.[ANNOTATION.status];
        const app = injected.spec?.containers[0] as V1Container;
        app.volumeMounts = [...(app.volumeMounts ?? []), { name: INJECTED.tokenVolume, mountPath: '/app-token', readOnly: true }];
        const { answer, uid } = await admit(s, injected);
        assertDenied(responseOf(answer, uid), INJECTED.tokenVolume);
      }),
    ),
    { numRuns: 25, seconds: 0.75 },
  );
});

// ---------------------------------------------------------------------------------------------- memory

t.test('huge object lists are refused without being kept: the memory one admission leaves behind is bounded', async (t) => {
  // Thirty distinct 2 MiB lists (each refused by its size) through the real mutator; whatever a cache
  // keeps of them shows as retained heap. Bounded caches keep at most a few MiB of refused input.
  const s = { namespace: 'shop', cluster: { namespaces: [{ metadata: { name: 'shop' } }] } };
  gc();
  const start = process.memoryUsage().heapUsed;
  for (let i = 0; i < 30; i++) {
    const pod = {
      metadata: { name: 'p', annotations: { [ANNOTATION.inject]: 'true', [ANNOTATION.objects]: `${i}`.padEnd(2 * 1024 * 1024, 'x') } },
      spec: { containers: [{ name: 'app', image: 'app:1' }] },
    };
    await realMutator(podCreateReview(nextUid(), s.namespace, pod).request);
  }
  gc();
  const retained = (process.memoryUsage().heapUsed - start) / (1024 * 1024);
  t.ok(retained < 16, `${retained.toFixed(0)} MiB retained after 30 distinct 2 MiB object lists (bound 16 MiB)`);
});
