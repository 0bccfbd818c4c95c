// The webhook role as the CLI runs it: every flag problem at once, then caches, HTTPS, health port, and a clean stop.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { publishFiles } from '../src/atomic-writer.js';
import { generateCa, generateServingCert } from '../src/certs.js';
import { CLOUDS } from '../src/clouds.js';
import { createLogger } from '../src/log.js';
import { IMAGE } from '../src/version.js';
import { contextNamespace, findKubeAccess } from '../webhook/kube-access.js';
import { limitYoungGeneration, parseWebhookFlags, runWebhook, type FlagSources } from '../webhook/main.js';
import { startFakeApiServer, unreachableKubeConfig } from './fixtures/fake-apiserver.js';
import { loadReview } from './fixtures/admission-fixtures.js';
import { captureLog, type LogCapture, type LogLine } from './fixtures/log-capture.js';
import { makeTestPki } from './fixtures/tls.js';
import { deploymentRuntime, seedShop } from './fixtures/webhook-process.js';

const noCluster: FlagSources = { env: {}, readNamespaceFile: () => undefined };

t.test('flags: defaults, and where the namespace comes from', async (t) => {
  const parsed = parseWebhookFlags(
    ['--image', 'akv-injector:1', '--tls-cert-file', '/c/tls.crt', '--tls-key-file', '/c/tls.key', '--namespace', 'akv'],
    noCluster,
  );
  t.same(parsed, {
    ok: true,
    config: {
      port: 8443,
      healthPort: 8080,
      tls: { kind: 'files', certFile: '/c/tls.crt', keyFile: '/c/tls.key' },
      settings: { image: 'akv-injector:1', cloud: CLOUDS.AzurePublicCloud, namespace: 'akv' },
    },
  });
  const base = ['--image', 'i', '--dev'];
  const namespaceOf = (args: string[], sources: FlagSources): string | undefined => {
    const result = parseWebhookFlags([...base, ...args], sources);
    return result.ok ? result.config.settings.namespace : undefined;
  };
  const everywhere: FlagSources = { env: { POD_NAMESPACE: 'from-env' }, readNamespaceFile: () => 'from-file\n' };
  t.equal(namespaceOf(['--namespace', 'from-flag'], everywhere), 'from-flag');
  t.equal(namespaceOf([], everywhere), 'from-env');
  t.equal(namespaceOf([], { env: {}, readNamespaceFile: () => 'from-file\n' }), 'from-file');

  const all = parseWebhookFlags(
    [
      '--image',
      'i',
      '--dev',
      '--namespace=n',
      '--port=9443',
      '--health-port',
      '9090',
      '--cloud',
      'azureusgovernment',
      '--tenant-id',
      'contoso.onmicrosoft.com',
      '--windows-image',
      'w:1',
    ],
    noCluster,
  );
  t.match(all, {
    ok: true,
    config: {
      port: 9443,
      healthPort: 9090,
      tls: { kind: 'dev' },
      settings: { cloud: { name: 'AzureUSGovernmentCloud' }, tenantId: 'contoso.onmicrosoft.com', windowsImage: 'w:1' },
    },
  });
});

t.test('flags: every problem at once', async (t) => {
  const parsed = parseWebhookFlags(
    ['--port', '99999', '--health-port', 'x', '--cloud', 'mars', '--tenant-id', 'not a tenant', '--dev', '--tls-cert-file', 'a', '--bogus', 'stray', '--image'],
    { env: { POD_NAMESPACE: 'Not_A_Namespace' }, readNamespaceFile: () => undefined },
  );
  t.equal(parsed.ok, false);
  const problems = parsed.ok ? [] : parsed.problems;
  const expected = [
    /unknown flag --bogus/,
    /unexpected argument "stray"/,
    /--image needs a value/,
    /--port "99999" is not a port/,
    /--health-port "x" is not a port/,
    /--tenant-id "not a tenant" is not a tenant ID/,
    /--cloud "mars" is not one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud/,
    /POD_NAMESPACE "Not_A_Namespace" is not a namespace name/,
    /--dev generates its own certificate/,
  ];
  t.equal(problems.length, expected.length, problems.join('\n'));
  for (const pattern of expected)
    t.ok(
      problems.some((p) => pattern.test(p)),
      String(pattern),
    );

  const missing = parseWebhookFlags([], noCluster);
  t.match(missing, {
    ok: false,
    problems: [/--image is required/, /--namespace is required outside a cluster/, /--tls-cert-file is required/, /--tls-key-file is required/],
  });
  t.match(parseWebhookFlags(['--image', 'i', '--dev', '--namespace', 'n', '--port', '8080'], noCluster), {
    ok: false,
    problems: [/--port and --health-port must differ/],
  });
});

t.test('invalid flags: exit code 2 and the problems on stderr', async (t) => {
  let stderr = '';
  const code = await runWebhook(['--image'], { env: {}, stderr: (text) => (stderr += text) });
  t.equal(code, 2);
  t.match(stderr, /^akv-injector webhook: invalid flags:\n- --image needs a value\n/);
});

interface Running {
  ports: { port: number; healthPort: number };
  stop: () => Promise<number>;
  stderr: () => string;
  logs: () => string;
  lines: LogCapture['lines'];
  logged: LogCapture['logged'];
}

async function start(
  args: string[],
  kubeConfig: Awaited<ReturnType<typeof unreachableKubeConfig>> | undefined,
  more: { home?: string; defaults?: false } = {},
): Promise<Running> {
  const controller = new AbortController();
  let stderr = '';
  const { logger, text, lines, logged } = captureLog('webhook');
  let resolveListening: (ports: Running['ports']) => void = () => undefined;
  const listening = new Promise<Running['ports']>((resolve) => (resolveListening = resolve));
  const defaults = more.defaults === false ? [] : ['--namespace', 'akv-injector', '--image', 'akv-injector:test'];
  const done = runWebhook(['--port', '0', '--health-port', '0', ...defaults, ...args], {
    env: {},
    logger,
    ...(kubeConfig ? { kubeConfig } : {}),
    ...(more.home !== undefined ? { home: more.home } : {}),
    stop: controller.signal,
    stderr: (text) => (stderr += text),
    onListening: resolveListening,
  });
  const ports = await Promise.race([listening, done.then((code) => Promise.reject(new Error(`runWebhook ended early with ${code}: ${stderr}`)))]);
  return {
    ports,
    stop: () => {
      controller.abort();
      return done;
    },
    stderr: () => stderr,
    logs: text,
    lines,
    logged,
  };
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

function postReview(port: number, caPem: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca: caPem, servername: 'localhost', headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, boundMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > boundMs) throw new Error(`not within ${boundMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const EXPIRY_GAUGE = 'akv_injector_serving_certificate_expiry_timestamp_seconds';

/** The value of a sample without labels in a /metrics text, or undefined when it has none. */
function sample(metrics: string, name: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/** A line of the certificate expiry warnings (expires in…, has expired). */
const expiryWarning = (line: LogLine): boolean => line.level === 'warn' && /^the TLS certificate in .* (expires in|has expired)/.test(String(line.msg));

/** A CA and a serving certificate for localhost and 127.0.0.1, both valid `validityDays` from now. */
async function servingPair(validityDays: number): Promise<{ caCertPem: string; certPem: string; keyPem: string }> {
  const ca = await generateCa({ commonName: `akv-injector test CA, ${validityDays} days`, validityDays });
  const serving = await generateServingCert(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays });
  return { caCertPem: ca.certPem, certPem: serving.certPem, keyPem: serving.keyPem };
}

/** The certificate a TLS client is shown on 127.0.0.1:port for localhost, verified against `caPem`. */
function servedCertificate(port: number, caPem: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: caPem, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.on('error', reject);
  });
}

t.test('--dev against an API server: ready once synced, injects over HTTPS, stops cleanly', async (t) => {
  const fake = await startFakeApiServer();
  t.teardown(() => fake.close());
  seedShop(fake);
  const running = await start(['--dev'], fake.kubeConfig());
  const caPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(running.stderr())?.[0] ?? '';
  t.match(running.stderr(), /--dev: serving a generated certificate for localhost, 127\.0\.0\.1, ::1/);

  t.equal((await get(running.ports.healthPort, '/healthz')).status, 200);
  await waitFor('ready', async () => (await get(running.ports.healthPort, '/readyz')).status === 200);

  const review = loadReview('deployment-pod');
  const res = await postReview(running.ports.port, caPem, JSON.stringify(review));
  t.equal(res.status, 200);
  t.match(JSON.parse(res.body), { response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch' } });

  const metrics = (await get(running.ports.healthPort, '/metrics')).body;
  t.match(metrics, /^akv_injector_admissions_total\{outcome="injected"\} 1$/m);
  t.match(metrics, /^akv_injector_cache_objects\{kind="ServiceAccount"\} 1$/m);
  const served = await servedCertificate(running.ports.port, caPem);
  t.equal(sample(metrics, EXPIRY_GAUGE), Date.parse(served.valid_to) / 1000, "the expiry gauge: the generated certificate's notAfter");
  t.notOk(running.lines().some(expiryWarning), 'no expiry warning: --dev makes a new 30-day certificate at every start');

  t.equal(await running.stop(), 0, 'exit code 0');
  await t.rejects(get(running.ports.healthPort, '/healthz'), 'the health port is closed');
  await t.rejects(postReview(running.ports.port, caPem, '{}'), 'the HTTPS port is closed');
  t.match(running.logs(), /"msg":"akv-injector webhook stopped"/);
  t.equal(fake.openWatches(), 0, 'no watch left open');
});

t.test('cert files and an unreachable API server: serving, not ready, and saying why', async (t) => {
  const pki = makeTestPki(['localhost', '127.0.0.1']);
  const dir = t.testdir({ 'tls.crt': pki.certPem, 'tls.key': pki.keyPem });
  const running = await start(['--tls-cert-file', `${dir}/tls.crt`, '--tls-key-file', `${dir}/tls.key`], await unreachableKubeConfig());
  t.equal((await get(running.ports.healthPort, '/healthz')).status, 200);
  const ready = await get(running.ports.healthPort, '/readyz');
  t.equal(ready.status, 503);
  t.match(JSON.parse(ready.body), { status: 'not ready', reasons: ['the cluster caches have not synced with the API server yet'] });

  const res = await postReview(running.ports.port, pki.caCertPem, JSON.stringify(loadReview('deployment-pod')));
  t.equal(res.status, 200, 'the TLS certificate from the files is served');
  t.match(JSON.parse(res.body), { response: { allowed: false, status: { code: 500 } } }, 'a cluster read that cannot succeed denies with a retry hint');
  t.equal(await running.stop(), 0);
});

t.test('cert files: the expiry gauge and the 30-day warning follow the certificate served', async (t) => {
  const [shortLived, longLived] = await Promise.all([servingPair(10), servingPair(400)]);
  const notAfter = (pem: string): Date => new Date(new X509Certificate(pem).validTo);
  const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;
  const dir = t.testdir();
  // A Secret volume, as the kubelet writes one: ..data swapped to a new timestamped folder.
  const secretVolume = (pair: typeof shortLived): Promise<unknown> =>
    publishFiles(dir, [
      { path: 'tls.crt', data: Buffer.from(pair.certPem), mode: 0o644 },
      { path: 'tls.key', data: Buffer.from(pair.keyPem), mode: 0o600 },
    ]);
  await secretVolume(shortLived);
  const running = await start(['--tls-cert-file', `${dir}/tls.crt`, '--tls-key-file', `${dir}/tls.key`], await unreachableKubeConfig());
  t.equal(
    (await servedCertificate(running.ports.port, shortLived.caCertPem)).fingerprint256,
    fingerprint(shortLived.certPem),
    'the 10-day certificate is served',
  );

  const before = (await get(running.ports.healthPort, '/metrics')).body;
  t.match(before, new RegExp(`^# TYPE ${EXPIRY_GAUGE} gauge$`, 'm'));
  t.equal(sample(before, EXPIRY_GAUGE), notAfter(shortLived.certPem).getTime() / 1000, "the gauge: the 10-day certificate's notAfter, in Unix seconds");
  const warnings = running.lines().filter(expiryWarning);
  t.equal(warnings.length, 1, 'one warning at load');
  t.match(warnings[0], {
    certFile: `${dir}/tls.crt`,
    notAfter: notAfter(shortLived.certPem).toISOString(),
    daysLeft: 9,
    fingerprint256: fingerprint(shortLived.certPem),
  });
  t.match(
    warnings[0]?.msg,
    `the TLS certificate in ${dir}/tls.crt expires in 9 days, at ${notAfter(shortLived.certPem).toISOString()}; renew it: cert-manager renews it by itself`,
    'what expires, when, the days left',
  );
  t.match(warnings[0]?.msg, /`akv-injector certs --renew`.*`helm upgrade`/, 'and how to renew it');

  await secretVolume(longLived);
  const reloaded = await running.logged(
    'the 400-day certificate reloaded',
    (line) => line.msg === 'TLS certificate reloaded' && line.fingerprint256 === fingerprint(longLived.certPem),
  );
  const after = (await get(running.ports.healthPort, '/metrics')).body;
  t.equal(sample(after, EXPIRY_GAUGE), notAfter(longLived.certPem).getTime() / 1000, "the gauge follows: the 400-day certificate's notAfter");
  // The check runs as the certificate is taken, before the next line: nothing after the reload is a warning of it.
  t.same(running.lines().slice(running.lines().indexOf(reloaded)).filter(expiryWarning), [], 'no expiry warning for the fresh certificate');
  t.equal(await running.stop(), 0);
});

t.test('cert files that do not exist yet: listening, not ready until they appear', async (t) => {
  const dir = t.testdir();
  const running = await start(['--tls-cert-file', `${dir}/tls.crt`, '--tls-key-file', `${dir}/tls.key`], await unreachableKubeConfig());
  const ready = JSON.parse((await get(running.ports.healthPort, '/readyz')).body) as { reasons: string[] };
  t.match(ready.reasons, [/^no TLS certificate loaded: cannot read the certificate or key: ENOENT/, /caches have not synced/]);
  t.equal(await running.stop(), 0);
});

t.test('--dev needs no image and no namespace: the version\'s image, the kubeconfig context\'s namespace, else "default"', async (t) => {
  const dev = (sources: FlagSources, args: string[] = []): unknown => parseWebhookFlags(['--dev', ...args], sources);
  t.match(dev(noCluster), { ok: true, config: { settings: { image: IMAGE, namespace: 'default' } } });
  t.match(dev({ ...noCluster, kubeContextNamespace: () => 'team-a' }), { ok: true, config: { settings: { namespace: 'team-a' } } });
  t.match(dev({ env: { POD_NAMESPACE: 'from-env' }, readNamespaceFile: () => undefined, kubeContextNamespace: () => 'team-a' }), {
    config: { settings: { namespace: 'from-env' } },
  });
  t.match(dev(noCluster, ['--image', 'mine:1', '--namespace', 'n']), { config: { settings: { image: 'mine:1', namespace: 'n' } } });
  t.match(dev({ ...noCluster, kubeContextNamespace: () => 'Not_Valid' }), {
    ok: false,
    problems: [/the kubeconfig context's namespace "Not_Valid" is not a namespace name/],
  });
  // Without --dev both stay required: a production webhook must not guess its image or its namespace.
  t.match(parseWebhookFlags(['--tls-cert-file', 'c', '--tls-key-file', 'k'], { ...noCluster, kubeContextNamespace: () => 'team-a' }), {
    ok: false,
    problems: [/--image is required/, /--namespace is required outside a cluster/],
  });
});

const KUBECONFIG_TEXT = (namespace: string | undefined): string => `apiVersion: v1
kind: Config
clusters:
  - name: c
    cluster: {server: "https://127.0.0.1:1"}
users:
  - name: u
    user: {token: t}
contexts:
  - name: ctx
    context: {cluster: c, user: u${namespace ? `, namespace: ${namespace}` : ''}}
current-context: ctx
`;

t.test('Kubernetes access: in-cluster, KUBECONFIG, ~/.kube/config, and what was tried when none is there', async (t) => {
  const dir = t.testdir({
    home: { '.kube': { config: KUBECONFIG_TEXT('from-home') } },
    empty: {},
    'team.yaml': KUBECONFIG_TEXT('team-a'),
    'no-context.yaml': 'apiVersion: v1\nkind: Config\nclusters: []\n',
  });
  const none = findKubeAccess({ env: {}, home: `${dir}/empty` });
  t.same(none, {
    found: false,
    tried: ['in-cluster: KUBERNETES_SERVICE_HOST is not set (not running in a pod)', 'KUBECONFIG: not set', `${dir}/empty/.kube/config: no such file`],
  });
  const home = findKubeAccess({ env: {}, home: `${dir}/home` });
  t.equal(home.found && contextNamespace(home.kubeConfig), 'from-home', '~/.kube/config, its context namespace');
  t.match(home, { source: `${dir}/home/.kube/config, context ctx, server https://127.0.0.1:1` });
  const fromEnv = findKubeAccess({ env: { KUBECONFIG: `${dir}/missing.yaml:${dir}/team.yaml` }, home: `${dir}/home` });
  t.equal(fromEnv.found && contextNamespace(fromEnv.kubeConfig), 'team-a', 'KUBECONFIG wins over ~/.kube/config; missing files in it are skipped');
  t.match(findKubeAccess({ env: { KUBECONFIG: `${dir}/missing.yaml` }, home: `${dir}/home` }), {
    found: false,
    tried: [/KUBERNETES_SERVICE_HOST is not set/, `KUBECONFIG=${dir}/missing.yaml: no such file`, `${dir}/home/.kube/config: not read, KUBECONFIG is set`],
  });
  t.match(findKubeAccess({ env: { KUBECONFIG: `${dir}/no-context.yaml` }, home: `${dir}/empty` }), {
    found: false,
    tried: [/KUBERNETES_SERVICE_HOST/, /no-context\.yaml: no current context with a cluster/, /not read, KUBECONFIG is set/],
  });
  t.match(findKubeAccess({ env: { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, home: `${dir}/empty`, exists: (p) => p.startsWith(dir) }), {
    found: false,
    tried: [
      /^in-cluster: KUBERNETES_SERVICE_HOST is set but \/var\/run\/secrets\/kubernetes.io\/serviceaccount\/token does not exist$/,
      'KUBECONFIG: not set',
      /no such file/,
    ],
  });
});

t.test('no Kubernetes configuration and no --dev: one error naming what was tried, exit 1', async (t) => {
  const dir = t.testdir();
  const lines: string[] = [];
  const logger = createLogger('webhook', new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }));
  const code = await runWebhook(['--tls-cert-file', `${dir}/c`, '--tls-key-file', `${dir}/k`, '--namespace', 'n', '--image', 'i'], {
    env: {},
    home: dir,
    logger,
    stop: AbortSignal.abort(),
    stderr: () => undefined,
  });
  t.equal(code, 1);
  t.equal(lines.length, 1, lines.join(''));
  const line = JSON.parse(lines[0] ?? '{}') as { level: string; msg: string };
  t.equal(line.level, 'fatal');
  t.equal(
    line.msg,
    `akv-injector webhook: no Kubernetes configuration. Tried: in-cluster: KUBERNETES_SERVICE_HOST is not set (not running in a pod); KUBECONFIG: not set; ${dir}/.kube/config: no such file. Run it in a pod, set KUBECONFIG, or try it without a cluster with --dev.`,
  );
});

/** A pod that names its identity itself: with no cluster, no ServiceAccount can give it. */
function selfContainedReview(): ReturnType<typeof loadReview> {
  const review = loadReview('deployment-pod');
  const annotations = ((review.request.object as { metadata: { annotations: Record<string, string> } }).metadata.annotations ??= {});
  annotations['akv-injector.io/client-id'] = '8f1c2b7a-3d4e-4f5a-9b6c-7d8e9f0a1b2c';
  annotations['akv-injector.io/tenant-id'] = '72f988bf-86f1-41af-91ab-2d7cd011db47';
  return review;
}

t.test('--dev with no cluster at all: ready at once, injects with in-memory lookups, says so once', async (t) => {
  const running = await start(['--dev'], undefined, { home: t.testdir(), defaults: false });
  const caPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(running.stderr())?.[0] ?? '';
  t.equal((await get(running.ports.healthPort, '/readyz')).status, 200, 'ready without a cluster');
  const review = selfContainedReview();
  const res = await postReview(running.ports.port, caPem, JSON.stringify(review));
  const answer = JSON.parse(res.body) as { response: { allowed: boolean; patch?: string } };
  t.match(answer, { response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch' } });
  t.match(Buffer.from(answer.response.patch ?? '', 'base64').toString(), `"image":"${IMAGE}"`, "the version's image");
  const logs = running.logs();
  t.equal(logs.split('--dev without a cluster').length - 1, 1, 'one line says so');
  t.match(logs, /"msg":"--dev without a cluster: no Kubernetes configuration \(tried: in-cluster: KUBERNETES_SERVICE_HOST is not set/);
  t.match(logs, /"namespace":"default"/, 'its own namespace: default');
  t.notMatch(logs, /HTTP protocol is not allowed/);
  t.equal(await running.stop(), 0);
});

t.test('--dev with a configured cluster that does not answer: in-memory lookups, naming the server', async (t) => {
  const running = await start(['--dev'], await unreachableKubeConfig(), { defaults: false });
  t.equal((await get(running.ports.healthPort, '/readyz')).status, 200);
  t.match(running.logs(), /"msg":"--dev without a cluster: the API server of the given configuration is not reachable \([^)]+\); every namespace/);
  t.equal(await running.stop(), 0);
});

t.test('--image defaults from AKV_INJECTOR_IMAGE (the manifests set it, kustomize keeps it equal to the image)', async (t) => {
  const files = ['--tls-cert-file', 'c', '--tls-key-file', 'k', '--namespace', 'n'];
  const env = (value: string): FlagSources => ({ env: { AKV_INJECTOR_IMAGE: value }, readNamespaceFile: () => undefined });
  t.match(parseWebhookFlags(files, env('registry.example/akv-injector:2')), { ok: true, config: { settings: { image: 'registry.example/akv-injector:2' } } });
  t.match(parseWebhookFlags([...files, '--image', 'flag:1'], env('env:1')), { ok: true, config: { settings: { image: 'flag:1' } } }, 'the flag wins');
  t.match(parseWebhookFlags(['--dev'], env('env:1')), { ok: true, config: { settings: { image: 'env:1' } } }, "before --dev's default");
  t.match(parseWebhookFlags(files, env('not an image')), { ok: false, problems: [/^AKV_INJECTOR_IMAGE "not an image" is not an image reference$/] });
  t.match(parseWebhookFlags(files, env('  ')), { ok: false, problems: [/--image is required \(or AKV_INJECTOR_IMAGE\)/] });
});

t.test('the young generation is held near its first size only when no node flag sizes it', (t) => {
  const deployedOptions = deploymentRuntime().nodeOptions;
  const cases: Array<[string, string, string[], boolean]> = [
    ['no flags (node dist/cli.js, npx)', '', [], true],
    ['a heap limit only', '--max-old-space-size=128', [], true],
    ["the Deployment's NODE_OPTIONS", deployedOptions, [], false],
    ['a command-line size', '', ['--max-semi-space-size=1'], false],
    ['the underscore spelling', '--max_semi_space_size=2', [], false],
    ['another flag of that prefix', '--max-semi-space-sizes=2', [], true],
  ];
  for (const [name, nodeOptions, execArgv, limited] of cases) t.equal(limitYoungGeneration(nodeOptions, execArgv), limited, name);
  t.end();
});
