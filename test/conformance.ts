// Conformance with the Secrets Store CSI driver's Azure provider, admission side (issue 9): every SecretProviderClass
// of spc-cases.json and unit-spc-cases.json is stored in the API server and referenced by a pod sent to the running
// webhook over HTTPS, and the same documents go through the bundled `akv-injector render`; both must admit with the
// provider's objects and identity, or deny naming what the provider would fail on.
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import type { V1Pod } from '@kubernetes/client-node';
import t from 'tap';
import type { AdmissionResponse, AdmissionReview } from '../webhook/admission.js';
import { runWebhook } from '../webhook/main.js';
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
import { buildDist } from './fixtures/dist.js';
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
  const ready = (): Promise<boolean> => fetch(`http://127.0.0.1:${ports.healthPort}/readyz`).then((r) => r.status === 200, () => false);
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
