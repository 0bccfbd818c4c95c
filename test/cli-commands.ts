// The bundled CLI's offline commands, as a user runs them: render and certs.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_MS } from '../src/fetch/job.js';
import packageJson from '../package.json' with { type: 'json' };
import { buildDist, runCli } from './fixtures/dist.js';
import { exactEnv } from './fixtures/exact-env.js';

const dir = await mkdtemp(join(tmpdir(), 'akv-cli-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const cli = await buildDist(dir);
const env = { PATH: process.env.PATH ?? '' };
// Each case is processes of its own, writing files of its own names: they run at once.
t.jobs = 5;

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
  t.match(await runCli(cli, ['render', '-f', join(dir, 'missing.yaml')], env), { code: 2, stderr: /cannot read .*missing.yaml: no such file or folder/ });
  t.match(await runCli(cli, ['render', '-f', file, '-f', join(dir, 'missing.yaml')], env), {
    code: 2,
    stdout: '',
    stderr: /cannot read .*missing.yaml: no such file or folder/,
  });
  t.match(await runCli(cli, ['render', '-f', file, '--cloud', 'Mars'], env), { code: 2, stderr: /--cloud "Mars" is not one of/ });
});

t.test('certs writes the files and says when they expire; a second run is refused until asked', async (t) => {
  const out = join(dir, 'certs');
  const flags = ['certs', '--service', 'akv-injector', '--namespace', 'akv-injector', '--out-dir', out];
  const result = await runCli(cli, flags, env);
  t.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split('\n');
  t.same(
    lines.slice(0, 7).map((p) => p.slice(out.length + 1)),
    ['ca.crt', 'ca.key', 'tls.crt', 'tls.key', 'tls-secret.yaml', 'ca-bundle.crt', 'ca-bundle.yaml'],
  );
  t.match(
    lines.slice(7).join('\n'),
    /^CA made: .*expires on \d{4}-\d\d-\d\d \(in 3650 days\)\nserving certificate for akv-injector\.akv-injector\.svc: expires on .* \(in 365 days\)\ncaBundle /,
  );
  t.match(await readFile(join(out, 'tls-secret.yaml'), 'utf8'), /type: kubernetes.io\/tls/);
  const before = await readFile(join(out, 'ca.crt'), 'utf8');
  t.match(await runCli(cli, flags, env), { code: 1, stdout: '', stderr: /^akv-injector certs: .*ca\.crt already holds the CA[\s\S]*--renew[\s\S]*--force/ });
  t.equal(await readFile(join(out, 'ca.crt'), 'utf8'), before, 'the CA is kept');
  t.match(await runCli(cli, [...flags, '--renew'], env), { code: 0, stdout: /^CA kept: /m });
  t.equal(await readFile(join(out, 'ca.crt'), 'utf8'), before, '--renew keeps the CA');
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

/** Run the CLI with `input` on stdin. */
function runWithStdin(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile(...exactEnv(process.execPath, [cli, ...args], env), (error, stdout, stderr) => {
      done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

const EXAMPLES = resolve(import.meta.dirname, '..', 'examples');

t.test("render -f FOLDER reads its YAML files in name order, as the examples' cat one-liner does", async (t) => {
  // All at once: each is a process of its own, and the machine may be busy.
  const runs = ['certificate', 'namespace-wide', 'secret-provider-class', 'workload-identity'].map(async (example) => {
    const folder = join(EXAMPLES, example);
    const names = (await readdir(folder)).filter((name) => name.endsWith('.yaml')).sort();
    const concatenated = (await Promise.all(names.map((name) => readFile(join(folder, name), 'utf8')))).join('');
    const [piped, fromFolder] = await Promise.all([runWithStdin(['render', '-f', '-'], concatenated), runCli(cli, ['render', '-f', `${folder}/`], env)]);
    return { example, concatenated, piped, fromFolder };
  });
  for (const { example, concatenated, piped, fromFolder } of await Promise.all(runs)) {
    t.equal(piped.code, 0, `${example}: cat *.yaml | render -f -: ${piped.stderr}`);
    t.equal(fromFolder.code, 0, `${example}: render -f ${example}/: ${fromFolder.stderr}`);
    t.equal(fromFolder.stdout, piped.stdout, `${example}: the folder renders as its files piped in`);
    t.equal(fromFolder.stderr, piped.stderr, `${example}: the same summary`);
    t.match(fromFolder.stderr, /^Deployment [a-z-]+\/[a-z-]+: injected akv-injector \(https:\/\/kv-[a-z]+\.vault\.azure\.net\/, \d objects?\) mounted at /m);
    // Nothing of the input is lost: every line is still there, in order (the injection only adds lines).
    const output = piped.stdout.split('\n');
    let at = 0;
    for (const line of concatenated.split('\n')) {
      const found = output.indexOf(line, at);
      if (found < 0) {
        t.fail(`${example}: line ${JSON.stringify(line)} kept in order`);
        break;
      }
      at = found + 1;
    }
  }
});

t.test('render -f A -f B reads both, in order; files without --- do not run into each other', async (t) => {
  const folder = join(dir, 'several');
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'b-deployment.yaml'), MANIFESTS.split('---\n')[1] as string);
  // No trailing newline, no marker: the next file must still start a document of its own.
  await writeFile(join(folder, 'a-service.yaml'), (MANIFESTS.split('---\n')[0] as string).trimEnd());
  await writeFile(join(folder, 'notes.txt'), 'not YAML: ignored in a folder');
  const flags = ['--client-id', '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01', '--tenant-id', 'contoso.onmicrosoft.com'];
  const kinds = (stdout: string): unknown[] => parseAllDocuments(stdout).map((d) => (d.toJS() as { kind: string }).kind);
  const forward = await runCli(cli, ['render', '-f', join(folder, 'a-service.yaml'), '-f', join(folder, 'b-deployment.yaml'), ...flags], env);
  t.equal(forward.code, 0, forward.stderr);
  t.same(kinds(forward.stdout), ['Service', 'Deployment']);
  t.ok(forward.stdout.startsWith('apiVersion: v1\nkind: Service\nmetadata: {name: web}\n'), 'the first file as written');
  const backward = await runCli(cli, ['render', '-f', join(folder, 'b-deployment.yaml'), '-f', join(folder, 'a-service.yaml'), ...flags], env);
  t.same(kinds(backward.stdout), ['Deployment', 'Service'], 'in the order given');
  const whole = await runCli(cli, ['render', '-f', folder, ...flags], env);
  t.equal(whole.stdout, forward.stdout, 'a folder: its *.yaml files in name order');
  t.equal(whole.stderr, 'Deployment shop/web: injected akv-injector (https://kv-shop.vault.azure.net/, 1 object) mounted at web:/mnt/secrets-store\n');
  const empty = join(dir, 'empty');
  await mkdir(empty, { recursive: true });
  t.match(await runCli(cli, ['render', '-f', empty], env), { code: 2, stderr: /cannot read .*empty: the folder has no \*\.yaml or \*\.yml file/ });
});
