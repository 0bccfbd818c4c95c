// Conformance with the Secrets Store CSI driver's Azure provider (issue 9), on the provider's own test material.
// Admission side: every SecretProviderClass of spc-cases.json and unit-spc-cases.json is stored in the API server and
// referenced by a pod sent to the running webhook over HTTPS, and the same documents go through the bundled
// `akv-injector render`; both must admit with the provider's objects and identity, or deny naming what the provider
// would fail on. Fetch side: below.
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import type { AdmissionResponse, AdmissionReview } from '../webhook/admission.js';
import { runWebhook } from '../webhook/main.js';
import { readJob } from '../src/fetch/job.js';
import { runFetch } from '../src/fetch/run.js';
import { createLogger } from '../src/log.js';
import { applyResponse, podCreateReview } from './fixtures/admission-fixtures.js';
import {
  caseNamespaces,
  casePod,
  CONFORMANCE_DIR,
  loadAdmissionCases,
  parseRenderStderr,
  renderLabel,
  renderStream,
  runRender,
  WEBHOOK_TENANT_ID,
  type AdmissionCase,
  type RenderReport,
  type RenderRun,
} from './fixtures/conformance.js';
import { differences, loadConformance, storeLoader, type Expect } from './fixtures/conformance-fetch.js';
import { buildDist, runCliBounded } from './fixtures/dist.js';
import { captureLogger, startFetchWorld } from './fixtures/fetch-world.js';
import { startFakeApiServer, type FakeApiServer } from './fixtures/fake-apiserver.js';
import { parseManifests } from './fixtures/kustomize.js';
import { makeTestPki } from './fixtures/tls.js';
import { waitFor } from './fixtures/wait-for.js';
import { postMutate } from './fixtures/webhook-process.js';

/** What a path did with a case, in the terms the data states its expectations. */
interface Outcome {
  allowed: boolean | undefined;
  /** The webhook's status.code of a denial (render has none). */
  status?: number | undefined;
  injected?: boolean;
  target?: Record<string, string | undefined>;
  objects?: unknown;
  /** Each string the case names: found in the denial (deny) or in the warnings (accept). */
  mentions: Record<string, boolean>;
}

const TARGET_VARIABLES = ['AKV_INJECTOR_VAULT_URL', 'AZURE_AUTHORITY_HOST', 'AZURE_TENANT_ID', 'AZURE_CLIENT_ID'];
const IMAGE = 'registry.example/akv-injector:conformance';

const cases = loadAdmissionCases();
const pki = makeTestPki(['localhost', '127.0.0.1']);
const dir = t.testdir({ 'tls.crt': pki.certPem, 'tls.key': pki.keyPem, dist: {} });

const fake = await startFakeApiServer();
t.teardown(() => fake.close());
seedCluster(fake, cases);
// Built while the webhook starts: the two are the slow parts.
const [cli, webhookPort] = await Promise.all([buildDist(`${dir}/dist`), startWebhook(fake)]);
const rendered = await renderAll(cli, cases);

t.test('every case and every SecretProviderClass file of the data is run', async (t) => {
  // The counts: a loader that dropped cases would otherwise pass with fewer.
  t.equal(cases.filter((c) => c.data === 'spc-cases.json').length, 47, 'spc-cases.json');
  t.equal(cases.filter((c) => c.data === 'unit-spc-cases.json').length, 90, 'unit-spc-cases.json');
  t.same(unusedSpcFiles(cases), [], 'no file of spc/ left out');
});

for (const data of ['spc-cases.json', 'unit-spc-cases.json'] as const) {
  t.test(data, async (t) => {
    for (const c of cases.filter((c) => c.data === data)) {
      t.test(c.id, async (t) => {
        const what = `${c.id} (${c.source})`;
        const extra = c.remark === undefined ? {} : { remark: c.remark };
        const viaWebhook = await admit(c);
        t.same(viaWebhook.outcome, expected(c, 'webhook'), `${what} via the webhook`, { ...extra, said: viaWebhook.said });
        const viaRender = rendered(c);
        t.same(viaRender.outcome, expected(c, 'render'), `${what} via render`, { ...extra, said: viaRender.said });
      });
    }
  });
}

// The namespaces, their default ServiceAccounts and the SecretProviderClasses, as the API server serves them at v1
// (a v1alpha1 document is stored and served as v1: the two versions have one schema).
function seedCluster(fake: FakeApiServer, cases: AdmissionCase[]): void {
  const { namespaces, serviceAccounts } = caseNamespaces(cases);
  for (const namespace of namespaces) fake.upsert('namespaces', namespace);
  for (const serviceAccount of serviceAccounts) fake.upsert('serviceaccounts', serviceAccount);
  for (const spc of cases.flatMap((c) => c.spcs)) fake.upsert('secretproviderclasses', { ...spc, apiVersion: 'secrets-store.csi.x-k8s.io/v1' });
}

// The webhook role in this process, on a free port with the test PKI, ready (caches synced) before it resolves; stopped
// at the end, before the API server closes (teardowns run last registered first).
async function startWebhook(fake: FakeApiServer): Promise<number> {
  const controller = new AbortController();
  let stderr = '';
  let onListening: (ports: { port: number; healthPort: number }) => void = () => undefined;
  const listening = new Promise<{ port: number; healthPort: number }>((resolve) => (onListening = resolve));
  const args = ['--port', '0', '--health-port', '0', '--namespace', 'akv-injector', '--image', IMAGE, '--tenant-id', WEBHOOK_TENANT_ID];
  const done = runWebhook([...args, '--tls-cert-file', `${dir}/tls.crt`, '--tls-key-file', `${dir}/tls.key`], {
    env: {},
    logger: createLogger('webhook', { write: () => undefined }),
    kubeConfig: fake.kubeConfig(),
    stop: controller.signal,
    stderr: (text) => (stderr += text),
    onListening,
  });
  t.teardown(() => {
    controller.abort();
    return done;
  });
  const ports = await Promise.race([listening, done.then((code) => Promise.reject(new Error(`the webhook ended with ${code}: ${stderr}`)))]);
  const ready = (): Promise<boolean> =>
    fetch(`http://127.0.0.1:${ports.healthPort}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
  await waitFor('the webhook ready (caches synced)', ready, 30_000);
  return ports.port;
}

/** The case's pod CREATE sent to the webhook over HTTPS, and the patch applied. */
async function admit(c: AdmissionCase): Promise<{ outcome: Outcome; said: unknown }> {
  const pod = casePod(c);
  const review = podCreateReview(randomUUID(), c.namespace, pod);
  const answer = await postMutate(webhookPort, pki.caCertPem, JSON.stringify(review));
  const response = answer.status === 200 ? (JSON.parse(answer.body) as AdmissionReview).response : undefined;
  if (response === undefined) return { outcome: { allowed: undefined, mentions: mentions(c, '') }, said: `HTTP ${answer.status}: ${answer.body}` };
  const warnings = (response.warnings ?? []).join('\n');
  if (!response.allowed) {
    const message = response.status?.message ?? '';
    return { outcome: { allowed: false, status: response.status?.code, mentions: mentions(c, message) }, said: { message, warnings } };
  }
  return { outcome: { allowed: true, ...injectedParts(patched(pod, response)), mentions: mentions(c, warnings) }, said: { warnings } };
}

function patched(pod: V1Pod, response: AdmissionResponse): V1Pod | undefined {
  try {
    return applyResponse(pod, response);
  } catch {
    return undefined;
  }
}

/**
 * Every case through render in one stream. A denial makes render print nothing on stdout, so the cases it denies are
 * read from stderr, and the others are rendered again without them.
 */
async function renderAll(cli: string, cases: AdmissionCase[]): Promise<(c: AdmissionCase) => { outcome: Outcome; said: unknown }> {
  const args = ['--tenant-id', WEBHOOK_TENANT_ID, '--image', IMAGE];
  const first = await runRender(cli, args, renderStream(cases));
  const firstReport = parseRenderStderr(first.stderr);
  const admitted = cases.filter((c) => !firstReport.problems.has(renderLabel(c)));
  const second = first.code === 0 || admitted.length === 0 ? first : await runRender(cli, args, renderStream(admitted));
  const secondReport = second === first ? firstReport : parseRenderStderr(second.stderr);
  const pods = second.code === 0 ? parseManifests(second.stdout, 'render output').filter((doc) => doc.kind === 'Pod') : [];
  return (c) => {
    const label = renderLabel(c);
    const denial = firstReport.problems.get(label);
    if (denial !== undefined) return { outcome: { allowed: false, mentions: mentions(c, denial) }, said: { denial, warnings: warningsOf(firstReport, label) } };
    if (second.code !== 0) return { outcome: { allowed: undefined, mentions: mentions(c, '') }, said: renderFailure(second) };
    const warnings = warningsOf(secondReport, label);
    const pod = pods.find((p) => p.metadata.namespace === c.namespace) as V1Pod | undefined;
    return { outcome: { allowed: true, ...injectedParts(pod), mentions: mentions(c, warnings) }, said: { warnings } };
  };
}

function unusedSpcFiles(cases: AdmissionCase[]): string[] {
  const used = new Set(cases.map((c) => c.file));
  return readdirSync(new URL('spc/', CONFORMANCE_DIR)).filter((file) => !used.has(file));
}

function warningsOf(report: RenderReport, label: string): string {
  return (report.warnings.get(label) ?? []).join('\n');
}

function renderFailure(run: RenderRun): string {
  return `render exited ${run.code}: ${run.stderr}`;
}

/** The injected init container's target and objects; injected false when the pod has none. */
function injectedParts(pod: V1Pod | undefined): Pick<Outcome, 'injected' | 'target' | 'objects'> {
  const init = pod?.spec?.initContainers?.find((container) => container.name === 'akv-injector');
  if (init === undefined) return { injected: false };
  const env = new Map((init.env ?? []).map((variable) => [variable.name, variable.value]));
  return {
    injected: pod?.metadata?.annotations?.['akv-injector.io/status'] === 'injected',
    target: Object.fromEntries(TARGET_VARIABLES.map((name) => [name, env.get(name)])),
    objects: parseJson(env.get('AKV_INJECTOR_OBJECTS')),
  };
}

function parseJson(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? '');
  } catch {
    return `not JSON: ${String(text)}`;
  }
}

function mentions(c: AdmissionCase, text: string): Record<string, boolean> {
  const wanted = c.expect.allowed ? c.expect.warnMentions : c.expect.denyMentions;
  return Object.fromEntries(wanted.map((mention) => [mention, text.includes(mention)]));
}

function expected(c: AdmissionCase, path: 'webhook' | 'render'): Outcome {
  const everyMention = (list: string[]): Record<string, boolean> => Object.fromEntries(list.map((mention) => [mention, true]));
  if (!c.expect.allowed) {
    return { allowed: false, ...(path === 'webhook' ? { status: 400 } : {}), mentions: everyMention(c.expect.denyMentions) };
  }
  return { allowed: true, injected: true, target: { ...c.expect.target }, objects: c.expect.objects, mentions: everyMention(c.expect.warnMentions) };
}

// ---------------------------------------------------------------------------------------------- fetch side
// Each case of fetch-cases.json (a Key Vault store, the objects asked for) and of spc-fetch-cases.json (an
// accepted SPC's objects, as the webhook injects them) runs against the Entra ID and Key Vault emulators; the
// published files are compared byte for byte, with their modes and the exact set of entries. A failure names the
// case, its source and each difference. Every case runs the fetch in this process as the CLI does (the job read
// from the child's environment by readJob, then runFetch, with the real SDK); the cases of BUNDLED also run the
// bundled `fetch` in a process of its own, one for each path the bundle takes (its chunks, its exit codes, the
// DNS and CA of a child), since a process costs half a second of CPU and the bytes are the same code's.

const data = loadConformance();
// One emulator pair for every case: object names are unique across the stores (the loader checks).
const world = await startFetchWorld();
t.teardown(() => world.close());
const load = storeLoader(world.vault, data);
for (const c of data.fetchCases) load(c.store);
load(data.spcFetch.store);

/** Cases run at once. */
const JOBS = 4;
/** A run still going after this is a hang: killed (or abandoned, in this process), and the case fails. */
const BOUND_MS = 60_000;
/** `fetch --timeout 30s`, as both paths run it. */
const TIMEOUT = '30s';
/**
 * Also run through the bundled CLI: an invalid object list (exit 2 before the SDKs load), a failing read (exit 1),
 * a secret, a PFX made PEM (the PKCS#12 chunk), a certificate, a key, the list given as text, and an SPC's
 * objects from the vault it names (spc-fetch-cases.json). versions-latest-5 runs bundled in the comparison test below.
 */
const BUNDLED = new Set([
  'getcontentbytes-invalid-encoding',
  'getsecreterror-value-nil',
  'getsecret-plain',
  'getsecret-pfx-format-pem',
  'getcertificate-real',
  'getkey-ec521',
  'usage-file-permission-unquoted',
  'provider-e2e-certificates',
]);
// world.job checks the objects it is given; some cases' lists are invalid on purpose, so the job (token file,
// output folder) is made for this stand-in and the fetch gets the case's own list.
const STAND_IN = [{ objectName: 'stand-in', objectType: 'secret' }];

interface Run {
  /** AKV_INJECTOR_OBJECTS as the fetch gets it. */
  objects: string;
  expect: Expect;
  /** Names the case in every assertion: its id and its source. */
  label: string;
  env?: Record<string, string>;
  /** Also through the bundled CLI. */
  bundled: boolean;
}

/** Run the bundled fetch for `objects`; returns the folder it published into. */
async function runFetchProcess(t: Test, objects: string, expect: Expect, label: string, extraEnv: Record<string, string> = {}): Promise<string> {
  const job = await world.job(STAND_IN);
  const env = world.childEnv(job, [], { AKV_INJECTOR_OBJECTS: objects, ...extraEnv });
  const result = await runCliBounded(cli, ['fetch', '--timeout', TIMEOUT], env, { boundMs: BOUND_MS, cwd: world.dir });
  t.notOk(result.killed, `${label}: ends within ${BOUND_MS} ms`);
  if (expect.fail) t.not(result.code, 0, `${label}: exits non-zero`, { stdout: result.stdout });
  else t.equal(result.code, 0, `${label}: exits 0`, { stderr: result.stderr });
  return job.outputDir;
}

/**
 * The fetch in this process, as the CLI runs it: the job read from the environment a child would get (exit 2 when
 * invalid), then runFetch with the world's agent (the child's DNS preload and CA); returns the output folder.
 */
async function runFetchHere(t: Test, objects: string, expect: Expect, label: string, extraEnv: Record<string, string> = {}): Promise<string> {
  const stand = await world.job(STAND_IN);
  const env = world.childEnv(stand, [], { AKV_INJECTOR_OBJECTS: objects, ...extraEnv });
  let stderr = '';
  const writeStderr = (text: string): void => void (stderr += text);
  const fetched = async (): Promise<number> => {
    const { job, problems } = readJob(env, { timeout: TIMEOUT });
    if (job === undefined) {
      writeStderr(problems.join('\n'));
      return 2;
    }
    const terminationLogPath = join(world.dir, `termination-${randomUUID()}`);
    return (await runFetch(job, { logger: captureLogger().logger, agent: world.agent, terminationLogPath, writeStderr })).exitCode;
  };
  let bound: NodeJS.Timeout | undefined;
  const code = await Promise.race([fetched(), new Promise<'hung'>((resolve) => (bound = setTimeout(() => resolve('hung'), BOUND_MS)))]);
  clearTimeout(bound);
  t.not(code, 'hung', `${label}: ends within ${BOUND_MS} ms (in this process)`);
  if (expect.fail) t.not(code, 0, `${label}: exits non-zero (in this process)`, { stderr });
  else t.equal(code, 0, `${label}: exits 0 (in this process)`, { stderr });
  return stand.outputDir;
}

async function fetchAndCompare(t: Test, run: Run): Promise<void> {
  const here = await runFetchHere(t, run.objects, run.expect, run.label, run.env);
  t.same(await differences(here, run.expect, data), [], `${run.label}: the published files (in this process)`);
  if (!run.bundled) return;
  const outputDir = await runFetchProcess(t, run.objects, run.expect, run.label, run.env);
  t.same(await differences(outputDir, run.expect, data), [], `${run.label}: the published files`);
}

t.test('the bundled cases name cases of the data', async (t) => {
  const ids = new Set([...data.fetchCases.map((c) => c.id), ...data.spcFetch.cases.map((c) => c.spc)]);
  t.same(
    [...BUNDLED].filter((id) => !ids.has(id)),
    [],
    'every id of BUNDLED is a case',
  );
});

t.test('the comparison sees each kind of difference', async (t) => {
  const c = data.fetchCases.find((fc) => fc.id === 'versions-latest-5');
  if (c === undefined || c.expect.files === undefined) throw new Error('fetch-cases.json has no case versions-latest-5 with files');
  const outputDir = await runFetchProcess(t, JSON.stringify(c.objects), c.expect, c.id);
  const files = c.expect.files;
  const { 'lv-latest/4': _last, ...lessFiles } = files;
  const variants: Array<{ name: string; expect: Expect; difference: RegExp }> = [
    {
      name: 'one byte',
      expect: { ...c.expect, files: { ...files, 'lv-latest/0': { parts: [{ text: 'lv-latest-value-A' }] } } },
      difference: /^lv-latest\/0: expected 17 bytes, got 17; they differ from byte 16: expected …"est-value-A", got …"est-value-a"$/,
    },
    {
      name: 'a mode',
      expect: { ...c.expect, files: { ...files, 'lv-latest/0': { parts: [{ text: 'lv-latest-value-a' }], mode: '0640' } } },
      difference: /^lv-latest\/0: mode expected 0640, got 0644$/,
    },
    {
      name: 'a missing file',
      expect: { ...c.expect, files: { ...files, 'lv-latest/5': { parts: [] } } },
      difference: /^lv-latest\/5: missing$/m,
    },
    { name: 'a file too many', expect: { ...c.expect, files: lessFiles }, difference: /^files: expected \[.*"lv-latest\/3"\], got \[.*"lv-latest\/4"\]$/ },
    {
      name: 'a top-level entry',
      expect: { ...c.expect, only: ['lv-latest', 'other'] },
      difference: /^top-level entries: expected \["lv-latest","other"\], got \["lv-latest"\]$/,
    },
    {
      name: 'a folder entry',
      expect: { ...c.expect, dirExactly: { 'lv-latest': ['0', '1'] } },
      difference: /^entries of lv-latest\/: expected \["0","1"\], got \["0","1","2","3","4"\]$/,
    },
    { name: 'a failure', expect: { fail: true }, difference: /^nothing written expected, got \["\.\..*","\.\.data","lv-latest"\]$/ },
  ];
  t.same(await differences(outputDir, c.expect, data), [], 'as expected: no difference');
  for (const variant of variants) {
    t.match((await differences(outputDir, variant.expect, data)).join('\n'), variant.difference, variant.name);
  }
});

t.test('fetch-cases.json', { jobs: JOBS }, async (t) => {
  for (const c of data.fetchCases) {
    const objects = typeof c.objects === 'string' ? c.objects : JSON.stringify(c.objects);
    t.test(c.id, (t) => fetchAndCompare(t, { objects, expect: c.expect, label: `${c.id} (${c.source})`, bundled: BUNDLED.has(c.id) }));
  }
});

// The admission half (conformance.ts) asserts the webhook injects exactly these objects and this vault and
// authority; the same expectation run here makes the files: together, SPC → files. The identity stays the world's.
t.test('spc-fetch-cases.json', { jobs: JOBS }, async (t) => {
  const admissions = new Map(loadAdmissionCases().map((c) => [`${c.data} ${c.id}`, c]));
  for (const c of data.spcFetch.cases) {
    const admitted = admissions.get(`spc-cases.json ${c.spc}`)?.expect;
    if (admitted === undefined) throw new Error(`spc-fetch case ${c.spc} is not in spc-cases.json`);
    if (!admitted.allowed) throw new Error(`spc-fetch case ${c.spc}: the SPC is denied, and a denied case names no objects to fetch`);
    const vaultUrl = new URL(admitted.target.AKV_INJECTOR_VAULT_URL);
    vaultUrl.port = String(world.vault.port);
    const env = {
      AKV_INJECTOR_VAULT_URL: vaultUrl.href,
      AZURE_AUTHORITY_HOST: world.entra.authorityHostFor(new URL(admitted.target.AZURE_AUTHORITY_HOST).hostname),
    };
    const objects = JSON.stringify(admitted.objects);
    t.test(c.spc, (t) => fetchAndCompare(t, { objects, expect: c.expect, label: `${c.spc} (${c.source})`, env, bundled: BUNDLED.has(c.spc) }));
  }
});
