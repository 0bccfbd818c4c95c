// POST /mutate over app.inject: the mutator's answer echoed with the uid, every bad request a JSON 4xx, one log line per admission.
import t, { type Test } from 'tap';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import { CLOUDS } from '../src/clouds.js';
import { createLogger } from '../src/log.js';
import type { AdmissionRequest, AdmissionResponse, AdmissionReview } from '../webhook/admission.js';
import { createMutator, type MutationResult, type Mutator } from '../webhook/mutate.js';
import type { WebhookSettings } from '../webhook/settings.js';
import { MAX_JSON_VALUES } from '../webhook/json-body.js';
import { createBodyBudget } from '../webhook/body-budget.js';
import { buildApp, DEFAULT_BODY_BUDGET, DEFAULT_BODY_LIMIT, MAX_CONNECTIONS, TIMEOUTS, type WebhookApp } from '../webhook/server.js';
import { applyResponse, loadReview, podCreateReview } from './fixtures/admission-fixtures.js';
import { memoryLookups } from './fixtures/memory-lookups.js';
import { waitFor } from './fixtures/wait-for.js';

const PLANTED_ENV = 'env-value-PLANTED-9c1f';
const PLANTED_ANNOTATION = 'annotation-value-PLANTED-4e7a';

/** A pod CREATE as the API server sends it for a Deployment's ReplicaSet. */
function podReview(uid = 'a6a7e5b4-0d6b-4e0c-9e1e-6c2f8f0f1a01'): AdmissionReview {
  return podCreateReview(uid, 'shop', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'checkout-7d9f8b6c5-',
      namespace: 'shop',
      labels: { app: 'checkout' },
      annotations: { 'akv-injector.io/inject': 'true', 'example.com/note': PLANTED_ANNOTATION },
    },
    spec: {
      containers: [{ name: 'app', image: 'example.com/checkout:1.2.3', env: [{ name: 'DB_PASSWORD', value: PLANTED_ENV }] }],
    },
  });
}

/** A hand-written mutator: records what it saw and answers as told. */
function recordingMutator(answer: (request: AdmissionRequest) => MutationResult | Promise<MutationResult> = allowAll): Mutator & { seen: AdmissionRequest[] } {
  const seen: AdmissionRequest[] = [];
  const mutator = async (request: AdmissionRequest): Promise<MutationResult> => {
    seen.push(request);
    return answer(request);
  };
  return Object.assign(mutator, { seen });
}

function allowAll(request: AdmissionRequest): MutationResult {
  return { outcome: 'skipped', reason: 'test: allow all', response: { uid: request.uid, allowed: true } };
}

function capture(): { lines: () => Array<Record<string, unknown>>; raw: () => string; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done): void {
      chunks.push(chunk.toString());
      done();
    },
  });
  const raw = (): string => chunks.join('');
  const lines = (): Array<Record<string, unknown>> =>
    raw()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { lines, raw, stream };
}

function setup(t: Test, mutator: Mutator = recordingMutator(), bodyLimit?: number): { app: WebhookApp; logs: ReturnType<typeof capture> } {
  const logs = capture();
  const app = buildApp({ mutator, logger: createLogger('webhook', logs.stream), ...(bodyLimit === undefined ? {} : { bodyLimit }) });
  t.teardown(() => app.close());
  return { app, logs };
}

/** POST /mutate; a `null` content type sends none. */
async function post(app: WebhookApp, payload: string | object, contentType: string | null = 'application/json') {
  return app.inject({
    method: 'POST',
    url: '/mutate',
    headers: contentType === null ? {} : { 'content-type': contentType },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
}

t.test('a valid review reaches the mutator and its response comes back with the uid', async (t) => {
  const patch = Buffer.from(JSON.stringify([{ op: 'add', path: '/metadata/annotations/akv-injector.io~1status', value: 'injected' }])).toString('base64');
  const mutator = recordingMutator((request) => ({
    outcome: 'injected',
    reason: 'pod annotation',
    response: { uid: request.uid, allowed: true, patchType: 'JSONPatch', patch, warnings: ['a warning'] },
  }));
  const { app } = setup(t, mutator);
  const review = podReview();
  const res = await post(app, review);

  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/json/);
  t.same(res.json(), {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: review.request?.uid, allowed: true, patchType: 'JSONPatch', patch, warnings: ['a warning'] },
  });
  t.equal(mutator.seen.length, 1);
  t.same(mutator.seen[0], review.request, 'the mutator gets the decoded request as sent');

  const withCharset = await post(app, review, 'application/json; charset=utf-8');
  t.equal(withCharset.statusCode, 200, 'application/json with a charset parameter');
});

t.test('the answer carries the request uid whatever the mutator put there', async (t) => {
  const { app } = setup(
    t,
    recordingMutator(() => ({ outcome: 'skipped', reason: 'x', response: { uid: 'something-else', allowed: true } })),
  );
  const res = await post(app, podReview('uid-from-the-api-server'));
  t.equal(res.statusCode, 200);
  t.equal((res.json() as AdmissionReview).response?.uid, 'uid-from-the-api-server');
});

t.test("any well-formed request goes to the mutator: the decision is not the server's", async (t) => {
  const mutator = recordingMutator();
  const { app } = setup(t, mutator);
  const base = podReview().request as AdmissionRequest;
  const requests: AdmissionRequest[] = [
    {
      ...base,
      uid: 'deployment',
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      resource: { group: 'apps', version: 'v1', resource: 'deployments' },
      object: { metadata: { name: 'web' } },
    },
    { ...base, uid: 'delete', operation: 'DELETE', object: undefined, oldObject: base.object },
    { ...base, uid: 'ephemeral', operation: 'UPDATE', subResource: 'ephemeralcontainers' },
    { ...base, uid: 'no-object', object: undefined },
  ];
  for (const request of requests) {
    const res = await post(app, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
    t.equal(res.statusCode, 200, request.uid);
    t.same(res.json(), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: request.uid, allowed: true } }, request.uid);
  }
  t.same(
    mutator.seen.map((r) => r.uid),
    requests.map((r) => r.uid),
  );
});

t.test('bad requests: a JSON 4xx naming the problem, the mutator untouched, the server still serving', async (t) => {
  const mutator = recordingMutator();
  const { app, logs } = setup(t, mutator);
  const valid = podReview();
  const withRequest = (request: unknown): object => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
  const fiveMiB = JSON.stringify({ ...valid, padding: 'x'.repeat(5 * 1024 * 1024) });
  const cases: Array<{ name: string; payload: string | object; contentType?: string | null; status: number; message: RegExp }> = [
    { name: 'not JSON', payload: '{"apiVersion": "admission.k8s.io/v1", ', status: 400, message: /^the body is not valid JSON$/ },
    {
      name: 'an object whose only key is __proto__',
      payload: '{"__proto__": {"allowed": true}}',
      status: 400,
      message: /^apiVersion must be admission\.k8s\.io\/v1, got null/,
    },
    { name: 'empty body', payload: '', status: 400, message: /the body is empty/ },
    { name: 'empty body without a content-type', payload: '', contentType: null, status: 400, message: /the body is empty/ },
    { name: 'JSON null', payload: 'null', status: 400, message: /the body is empty/ },
    { name: 'a JSON array', payload: [valid], status: 400, message: /must be a JSON AdmissionReview object/ },
    { name: 'a JSON string', payload: '"AdmissionReview"', status: 400, message: /must be a JSON AdmissionReview object/ },
    {
      name: 'apiVersion v1beta1',
      payload: { ...valid, apiVersion: 'admission.k8s.io/v1beta1' },
      status: 400,
      message: /apiVersion must be admission\.k8s\.io\/v1, got "admission\.k8s\.io\/v1beta1"/,
    },
    { name: 'wrong kind', payload: { ...valid, kind: 'TokenReview' }, status: 400, message: /kind must be AdmissionReview, got "TokenReview"/ },
    { name: 'no request', payload: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, status: 400, message: /request is missing/ },
    { name: 'request is an array', payload: withRequest([valid.request]), status: 400, message: /request is missing/ },
    { name: 'no uid', payload: withRequest({ ...valid.request, uid: undefined }), status: 400, message: /request\.uid is missing/ },
    { name: 'empty uid', payload: withRequest({ ...valid.request, uid: '' }), status: 400, message: /request\.uid is missing/ },
    { name: 'unknown operation', payload: withRequest({ ...valid.request, operation: 'PATCH' }), status: 400, message: /request\.operation must be one of/ },
    { name: 'text/plain', payload: valid, contentType: 'text/plain', status: 415, message: /content-type must be application\/json, got "text\/plain"/ },
    { name: 'a body without a content-type', payload: valid, contentType: null, status: 415, message: /content-type must be application\/json, got null/ },
    { name: 'application/json-seq', payload: valid, contentType: 'application/json-seq', status: 415, message: /got "application\/json-seq"/ },
    {
      name: 'application/yaml',
      payload: 'apiVersion: admission.k8s.io/v1',
      contentType: 'application/yaml',
      status: 415,
      message: /content-type must be application\/json/,
    },
    { name: 'a 5 MiB body', payload: fiveMiB, status: 413, message: new RegExp(`larger than the limit of ${DEFAULT_BODY_LIMIT} bytes`) },
    {
      name: 'more JSON values than any pod',
      payload: { ...valid, padding: new Array(MAX_JSON_VALUES).fill(0) },
      status: 413,
      message: new RegExp(`more than ${MAX_JSON_VALUES} JSON values`),
    },
  ];
  for (const c of cases) {
    const res = await post(app, c.payload, c.contentType === undefined ? 'application/json' : c.contentType);
    t.equal(res.statusCode, c.status, `${c.name}: status`);
    t.match(res.headers['content-type'], /^application\/json/, `${c.name}: JSON`);
    const body = res.json() as { error: string; message: string };
    t.same(Object.keys(body).sort(), ['error', 'message'], `${c.name}: { error, message }`);
    t.match(body.message, c.message, `${c.name}: message`);

    const next = await post(app, podReview(`after ${c.name}`));
    t.equal(next.statusCode, 200, `${c.name}: the next valid request succeeds`);
    t.equal((next.json() as AdmissionReview).response?.uid, `after ${c.name}`);
  }
  t.equal(mutator.seen.length, cases.length, 'the mutator saw only the valid requests');
  const rejected = logs.lines().filter((l) => l.msg === 'admission request rejected');
  t.equal(rejected.length, cases.length, 'one warning per rejected request');
  t.notOk(logs.raw().includes(PLANTED_ENV), "no body content in the rejections' logs");
});

t.test('anything but POST /mutate is a JSON 404', async (t) => {
  const { app } = setup(t);
  for (const [method, url] of [
    ['GET', '/mutate'],
    ['POST', '/validate'],
    ['GET', '/'],
  ] as const) {
    const res = await app.inject({ method, url });
    t.equal(res.statusCode, 404, `${method} ${url}`);
    t.match(res.json(), { error: 'Not Found', message: /POST \/mutate/ });
  }
});

t.test('a throwing mutator: 500 with a JSON error, logged, and the server keeps serving', async (t) => {
  let fail = true;
  const mutator = recordingMutator((request) => {
    if (fail) throw new Error('lookup exploded');
    return allowAll(request);
  });
  const { app, logs } = setup(t, mutator);
  const res = await post(app, podReview('uid-boom'));
  t.equal(res.statusCode, 500);
  t.match(res.json(), { error: 'Internal Server Error', message: /could not process admission request uid-boom/ });
  const line = logs.lines().find((l) => l.msg === 'admission failed');
  t.match(line, { level: 'error', uid: 'uid-boom', outcome: 'error', err: { message: 'lookup exploded' } });

  fail = false;
  const next = await post(app, podReview('uid-after-boom'));
  t.equal(next.statusCode, 200);
});

t.test("one log line per admission: who, what, outcome, time; never the pod's values", async (t) => {
  const { app, logs } = setup(
    t,
    recordingMutator((request) => ({
      outcome: 'denied',
      reason: 'annotation akv-injector.io/vault is missing',
      response: { uid: request.uid, allowed: false, status: { code: 400, message: 'denied' } },
    })),
  );
  await post(app, podReview('uid-logged'));
  await post(app, podReview('uid-logged-2'));
  const admissions = logs.lines().filter((l) => l.msg === 'admission');
  t.equal(admissions.length, 2);
  t.match(admissions[0], {
    level: 'info',
    role: 'webhook',
    uid: 'uid-logged',
    namespace: 'shop',
    pod: 'checkout-7d9f8b6c5-',
    operation: 'CREATE',
    resource: 'v1/pods',
    outcome: 'denied',
    reason: 'annotation akv-injector.io/vault is missing',
    ms: Number,
  });
  t.notOk(logs.raw().includes(PLANTED_ENV), 'no env value in any line');
  t.notOk(logs.raw().includes(PLANTED_ANNOTATION), 'no annotation value in any line');
});

t.test('body limit: large pods fit, a limit under 3 MiB is refused', async (t) => {
  const { app } = setup(t);
  const big = podReview('uid-big');
  const pod = big.request?.object as { metadata: { annotations: Record<string, string> } };
  // A pod near the API server's 3 MiB request limit (e.g. a large last-applied-configuration annotation).
  pod.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'] = 'y'.repeat(3 * 1024 * 1024 - 4096);
  const res = await post(app, big);
  t.equal(res.statusCode, 200);
  t.equal((res.json() as AdmissionReview).response?.uid, 'uid-big');

  t.throws(
    () => buildApp({ mutator: allowAllMutator, logger: createLogger('webhook', new Writable({ write: (_c, _e, d) => d() })), bodyLimit: 1024 * 1024 }),
    RangeError,
  );
});

const allowAllMutator: Mutator = async (request) => allowAll(request);

// ---------------------------------------------------------------------------------------------------------------
// "__proto__" and "constructor" keys are a pod's data: Kubernetes does not validate a CSI volume's volumeAttributes,
// and labels and annotations are maps. JSON.parse makes them own properties; they reach the mutator like any key.

const SHOP_CLUSTER = memoryLookups({
  namespaces: [{ metadata: { name: 'shop' } }],
  serviceAccounts: [
    {
      metadata: {
        namespace: 'shop',
        name: 'checkout',
        annotations: {
          'azure.workload.identity/client-id': '8f1c2b7a-3d4e-4f5a-9b6c-7d8e9f0a1b2c',
          'azure.workload.identity/tenant-id': '72f988bf-86f1-41af-91ab-2d7cd011db47',
        },
      },
    },
  ],
});
const SETTINGS: WebhookSettings = { image: 'ghcr.io/akv-injector/akv-injector:0.1.0', cloud: CLOUDS.AzurePublicCloud, namespace: 'akv-injector' };

/** Own "__proto__" and "constructor" keys, as JSON.parse makes them (an object literal would set the prototype instead). */
const hostileKeys = (value: unknown): Record<string, unknown> =>
  JSON.parse(`{"__proto__": ${JSON.stringify(value)}, "constructor": ${JSON.stringify({ prototype: value })}, "plain": "kept"}`) as Record<string, unknown>;
const stringKeys = (): Record<string, string> => JSON.parse('{"__proto__": "polluted", "constructor": "polluted", "plain": "kept"}') as Record<string, string>;

type Pod = V1Pod & { metadata: NonNullable<V1Pod['metadata']>; spec: NonNullable<V1Pod['spec']> };

t.test('__proto__ and constructor keys anywhere in a pod: a normal AdmissionReview, nothing polluted', async (t) => {
  const cases: Array<{ name: string; optIn: boolean; edit: (pod: Pod) => void }> = [
    { name: 'CSI volumeAttributes (strings, as the API server sends them)', optIn: true, edit: (pod) => addCsiVolume(pod, stringKeys()) },
    {
      name: 'CSI volumeAttributes (objects, as only a hostile client sends them)',
      optIn: true,
      edit: (pod) => addCsiVolume(pod, hostileKeys({ polluted: 'yes' })),
    },
    { name: 'labels', optIn: true, edit: (pod) => (pod.metadata.labels = { ...pod.metadata.labels, ...stringKeys() }) },
    { name: 'annotations', optIn: true, edit: (pod) => (pod.metadata.annotations = { ...pod.metadata.annotations, ...stringKeys() }) },
    { name: 'annotations of a pod that did not opt in', optIn: false, edit: (pod) => (pod.metadata.annotations = stringKeys()) },
    // Not Object.assign: it would set pod.spec's prototype through the "__proto__" key.
    { name: 'the pod spec itself', optIn: true, edit: (pod) => (pod.spec = { ...hostileKeys({ polluted: 'yes' }), ...pod.spec }) },
  ];
  const { app } = setup(t, createMutator(SETTINGS, SHOP_CLUSTER));
  for (const c of cases) {
    const review = loadReview('deployment-pod');
    const pod = review.request.object as Pod;
    if (!c.optIn) delete pod.metadata.annotations?.['akv-injector.io/inject'];
    c.edit(pod);
    const body = JSON.stringify(review);
    t.match(body, /"__proto__":/, `${c.name}: the body carries the key`);
    const res = await post(app, body);
    t.equal(res.statusCode, 200, `${c.name}: 200`);
    const response = (res.json() as AdmissionReview).response as AdmissionResponse;
    t.equal(response.uid, review.request.uid, `${c.name}: the request's uid`);
    t.equal(response.allowed, true, `${c.name}: allowed`);
    // The pod as the API server stores it: its own JSON, parsed the same way, with the patch applied.
    const patched = applyResponse(JSON.parse(body).request.object as V1Pod, response);
    const initNames = (patched.spec?.initContainers ?? []).map((container) => container.name);
    t.equal(initNames.includes('akv-injector'), c.optIn, `${c.name}: injected only when opted in`);
    t.match(JSON.stringify(patched), /"__proto__":/, `${c.name}: the keys are still the pod's`);
    t.equal(({} as Record<string, unknown>).polluted, undefined, `${c.name}: Object.prototype untouched`);
    t.equal(Object.getPrototypeOf(patched), Object.prototype);
  }

  const topLevel = JSON.parse(`{"__proto__": {"allowed": true}, ${JSON.stringify(loadReview('deployment-pod')).slice(1)}`) as AdmissionReview;
  const res = await post(app, JSON.stringify(topLevel));
  t.equal(res.statusCode, 200, 'a __proto__ key beside apiVersion and kind: still an AdmissionReview');
  t.match(res.json(), { response: { uid: topLevel.request?.uid, allowed: true, patchType: 'JSONPatch' } });
  t.equal(({} as Record<string, unknown>).allowed, undefined);
});

function addCsiVolume(pod: Pod, volumeAttributes: Record<string, unknown>): void {
  pod.spec.volumes = [
    ...(pod.spec.volumes ?? []),
    { name: 'vendor-secrets', csi: { driver: 'secrets.vendor.example.com', volumeAttributes: volumeAttributes as Record<string, string> } },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// The body budget, over a real (plain HTTP) listener: what waits, what is shed, what is never held up.

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function postOverHttp(port: number, body: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate',
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A review of about `bytes` bytes (an annotation pads it), with its own uid. */
function reviewOfSize(uid: string, bytes: number): string {
  const review = podReview(uid);
  const pod = review.request?.object as { metadata: { annotations: Record<string, string> } };
  pod.metadata.annotations['example.com/padding'] = 'p'.repeat(Math.max(0, bytes - JSON.stringify(review).length - 40));
  return JSON.stringify(review);
}

t.test('body budget: a large body waits while the large share is held, then is shed with a 503; ordinary pods never wait', async (t) => {
  let openGate: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const mutator = recordingMutator(async (request) => {
    if (request.uid === 'holder') await gate;
    return allowAll(request);
  });
  const logs = capture();
  const bodyBudget = createBodyBudget(DEFAULT_BODY_BUDGET);
  const app = buildApp({ mutator, logger: createLogger('webhook', logs.stream), bodyBudget, budgetWaitMs: 300 });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;

  const holder = postOverHttp(port, reviewOfSize('holder', 3 * 1024 * 1024));
  await waitFor('the holder in the mutator', () => mutator.seen.some((r) => r.uid === 'holder'));

  const ordinary = await Promise.all(Array.from({ length: 20 }, (_, i) => postOverHttp(port, reviewOfSize(`ordinary-${i}`, 50 * 1024))));
  t.same(
    ordinary.map((a) => a.status),
    Array<number>(20).fill(200),
    'twenty 50 KB pods answered while the large share is held',
  );

  const shed = await postOverHttp(port, reviewOfSize('second-large', 2 * 1024 * 1024));
  t.equal(shed.status, 503, 'a second large body is shed');
  t.equal(shed.headers.connection, 'close', 'and its connection closed: the unread body is not worth reading');
  t.equal(shed.headers['retry-after'], '1');
  t.match(JSON.parse(shed.body), {
    error: 'Service Unavailable',
    message: /^akv-injector is busy: \d+ more body bytes did not fit in its memory budget within 300 ms; retry$/,
  });
  t.notOk(
    mutator.seen.some((r) => r.uid === 'second-large'),
    'never parsed',
  );
  t.match(
    logs.lines().find((l) => l.msg === 'admission request shed: the body budget stayed full'),
    { level: 'warn', status: 503, waitedMs: Number },
  );

  const waiting = postOverHttp(port, reviewOfSize('third-large', 2 * 1024 * 1024));
  await waitFor('the third large body waiting', () => bodyBudget.usage().waiting === 1);
  openGate();
  t.equal((await holder).status, 200, 'the holder is answered');
  const third = await waiting;
  t.equal(third.status, 200, 'a large body waiting when room comes back goes through');
  t.equal(JSON.parse(third.body).response.uid, 'third-large');
  await waitFor('every byte given back', () => bodyBudget.usage().bytes === 0);
});

t.test('a content-length over the limit is refused before anything is read or waited for', async (t) => {
  const { app } = setup(t);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  const answer = await new Promise<Answer>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate',
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': DEFAULT_BODY_LIMIT + 1 },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    // Headers only: the answer must not wait for a body.
    req.flushHeaders();
  });
  t.equal(answer.status, 413);
  t.match(JSON.parse(answer.body), { message: new RegExp(`larger than the limit of ${DEFAULT_BODY_LIMIT} bytes`) });
});

t.test("the listener's bounds: timeouts set against the API server's, and a connection cap", async (t) => {
  const { app } = setup(t);
  const server = app.server;
  t.equal(server.headersTimeout, TIMEOUTS.headersMs);
  t.equal(server.requestTimeout, TIMEOUTS.requestMs);
  t.equal(server.keepAliveTimeout, TIMEOUTS.keepAliveMs);
  t.equal(server.timeout, TIMEOUTS.socketIdleMs);
  t.equal(server.maxConnections, MAX_CONNECTIONS);
  t.ok(TIMEOUTS.keepAliveMs > 90_000, "idle connections outlive the API server's 90 s, so the client closes them");
  t.ok(TIMEOUTS.budgetWaitMs < 5_000, "a request that waited still has time within the webhook's 5 s timeoutSeconds");
  t.ok(TIMEOUTS.headersMs <= TIMEOUTS.requestMs);
});

t.test("fastify's schema compilers (ajv, fast-json-stringify) are never loaded; a route with a schema fails saying why", async (t) => {
  const { app } = setup(t);
  t.equal((await post(app, podReview())).statusCode, 200, 'an admission answered');
  const loaded = Object.keys(createRequire(import.meta.url).cache);
  t.ok(
    loaded.some((path) => path.includes('/node_modules/fastify/')),
    'fastify is in the module cache (so an absence below means something)',
  );
  t.same(
    loaded.filter((path) =>
      /\/node_modules\/(ajv\/|@fastify\/ajv-compiler\/|@fastify\/fast-json-stringify-compiler\/|fast-json-stringify\/index\.js)/.test(path),
    ),
    [],
    "no schema compiler loaded (fast-json-stringify's runtime serializer, which fastify's error serializer uses, may be)",
  );
  const fresh = setup(t).app;
  fresh.post('/with-schema', { schema: { body: { type: 'object' } } }, async () => ({}));
  await t.rejects(async () => {
    await fresh.ready();
  }, /load no schema compiler \(webhook\/fastify-options\.ts\)/);
});
