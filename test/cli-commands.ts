// The bundled CLI's offline commands, as a user runs them: render and certs.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_MS } from '../src/fetch/job.js';
import packageJson from '../package.json' with { type: 'json' };
import { buildDist, runCli } from './fixtures/dist.js';

const dir = await mkdtemp(join(tmpdir(), 'akv-cli-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const cli = await buildDist(dir);
const env = { PATH: process.env.PATH ?? '' };

const MANIFESTS = `apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations:
        akv-injector.io/inject: "true"
        akv-injector.io/vault: kv-shop
        akv-injector.io/objects: '[{"objectName": "db-password", "objectType": "secret"}]'
    spec:
      containers: [{name: web, image: web:1}]
`;

t.test('render -f FILE prints the injected manifests', async (t) => {
  const file = join(dir, 'app.yaml');
  await writeFile(file, MANIFESTS);
  const result = await runCli(
    cli,
    [
      'render',
      '-f',
      file,
      '--client-id',
      '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01',
      '--tenant-id',
      'contoso.onmicrosoft.com',
      '--image',
      'registry.example/akv-injector:1',
    ],
    env,
  );
  t.equal(result.code, 0, result.stderr);
  const docs = parseAllDocuments(result.stdout).map(
    (d) => d.toJS() as { kind: string; spec: { template?: { spec: { initContainers: Array<{ name: string; image: string }> } } } },
  );
  t.same(
    docs.map((d) => d.kind),
    ['Service', 'Deployment'],
  );
  t.match(docs[1]?.spec.template?.spec.initContainers, [{ name: 'akv-injector', image: 'registry.example/akv-injector:1' }]);
  t.ok(result.stdout.startsWith('apiVersion: v1\nkind: Service\nmetadata: {name: web}\n'), 'the Service passes through as written');
});

t.test('render reports invalid workloads with exit 1 and bad flags with exit 2', async (t) => {
  const file = join(dir, 'bad.yaml');
  await writeFile(file, MANIFESTS.replace('kv-shop', 'not a vault'));
  const denied = await runCli(cli, ['render', '-f', file], env);
  t.equal(denied.code, 1);
  t.match(
    denied.stderr,
    /1 workload is not valid for injection:\nDeployment shop\/web: akv-injector: pod shop\/\* cannot be injected:\n- annotation akv-injector.io\/vault on the pod: "not a vault" is not a Key Vault name/,
  );
  t.equal(denied.stdout, '', 'nothing half-rendered on stdout');
  t.match(await runCli(cli, ['render'], env), { code: 2, stderr: /-f FILE is required/ });
  t.match(await runCli(cli, ['render', '-f', join(dir, 'missing.yaml')], env), { code: 2, stderr: /cannot read .*missing.yaml/ });
  t.match(await runCli(cli, ['render', '-f', file, '--cloud', 'Mars'], env), { code: 2, stderr: /--cloud "Mars" is not one of/ });
});

t.test('certs writes the files and the Secret', async (t) => {
  const out = join(dir, 'certs');
  const result = await runCli(cli, ['certs', '--service', 'akv-injector', '--namespace', 'akv-injector', '--out-dir', out], env);
  t.equal(result.code, 0, result.stderr);
  t.same(
    result.stdout
      .trim()
      .split('\n')
      .map((p) => p.slice(out.length + 1)),
    ['ca.crt', 'tls.crt', 'tls.key', 'tls-secret.yaml'],
  );
  t.match(await readFile(join(out, 'tls-secret.yaml'), 'utf8'), /type: kubernetes.io\/tls/);
  t.match(await runCli(cli, ['certs', '--service', 'x'], env), { code: 2, stderr: /--namespace "" must be/ });
});

t.test('help lists every command', async (t) => {
  const help = await runCli(cli, ['help'], env);
  for (const command of ['fetch', 'webhook', 'render', 'certs']) t.match(help.stdout, new RegExp(`^  ${command} `, 'm'), command);
  // The usage text is written out (the CLI loads no role's code for it): it must say the defaults the fetch uses.
  t.match(help.stdout, `--concurrency N   (default ${DEFAULT_CONCURRENCY};`);
  t.match(help.stdout, `--timeout DURATION (default ${DEFAULT_TIMEOUT_MS / 60_000}m;`);
});

t.test("version is package.json's, and render injects the image of that version by default", async (t) => {
  for (const command of ['version', '--version'])
    t.same(await runCli(cli, [command], env), { code: 0, stdout: `${packageJson.version}\n`, stderr: '' }, command);
  const file = join(dir, 'default-image.yaml');
  await writeFile(file, MANIFESTS);
  const result = await runCli(
    cli,
    ['render', '-f', file, '--client-id', '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01', '--tenant-id', 'contoso.onmicrosoft.com'],
    env,
  );
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, `image: ghcr.io/akv-injector/akv-injector:${packageJson.version}\n`);
});
