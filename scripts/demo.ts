// npm run demo — no cluster, no Azure. Local stand-ins for the Kubernetes API, Entra ID and Key Vault;
// the real bundled program (dist/cli.js) in both roles:
//   1. `akv-injector webhook --dev` admits an annotated Deployment pod and returns its JSON Patch;
//   2. the injected init container's command (`akv-injector fetch`) runs with the environment the
//      patch gave it, exchanges the projected token, reads the vault and writes the files;
//   3. the refresh sidecar (`akv-injector refresh`) sees a secret rotated in the vault and publishes a
//      new generation of the files (SIGHUP stands in for the hour the pod asked to wait).
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { IMAGE } from '../src/version.js';
import { loadReview } from '../test/fixtures/admission-fixtures.js';
import { defaultChain, makePfx } from '../test/fixtures/certs.js';
import { startFakeApiServer } from '../test/fixtures/fake-apiserver.js';
import { CLIENT_ID, ISSUER, startFetchWorld, SUBJECT, TENANT_ID } from '../test/fixtures/fetch-world.js';
import { fakeServiceAccountToken } from '../test/fixtures/jwt.js';
import { loopbackChildEnv } from '../test/fixtures/loopback.js';

const cli = new URL('../dist/cli.js', import.meta.url).pathname;
const say = (text = ''): void => console.log(text);

// --- the stand-ins -------------------------------------------------------------------------------
const world = await startFetchWorld();
const chain = defaultChain('rsa');
world.vault.setSecret('db-password', 'correct-horse-battery-staple');
world.vault.setCertificate('web-tls', {
  certDer: chain.leaf.der,
  secretValue: makePfx({ chain, certOrder: ['root', 'leaf', 'intermediate'] }).toString('base64'),
  contentType: 'application/x-pkcs12',
});
world.vault.setKey('jwt-signing', generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey);

const api = await startFakeApiServer();
api.upsert('namespaces', { metadata: { name: 'shop' } });
api.upsert('serviceaccounts', {
  metadata: {
    namespace: 'shop',
    name: 'checkout',
    annotations: { 'azure.workload.identity/client-id': CLIENT_ID, 'azure.workload.identity/tenant-id': TENANT_ID },
  },
});
const kubeconfig = join(world.dir, 'kubeconfig');
await writeFile(kubeconfig, api.kubeConfig().exportConfig());

// --- 1. the webhook --------------------------------------------------------------------------------
const [port, healthPort] = [await freePort(), await freePort()];
const webhook = spawn(
  process.execPath,
  [cli, 'webhook', '--dev', `--port=${port}`, `--health-port=${healthPort}`, '--namespace=akv-injector', `--image=${IMAGE}`],
  {
    env: { PATH: process.env.PATH, KUBECONFIG: kubeconfig, NODE_EXTRA_CA_CERTS: await caFile('api-ca.crt', api.caCertPem) },
    stdio: ['ignore', 'pipe', 'pipe'],
  },
);
const webhookLog = collect(webhook);
try {
  const ca = await waitFor(
    () => /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(webhookLog.stderr())?.[0],
    'the webhook to print its dev CA',
  );
  await waitFor(async () => ((await get(`http://127.0.0.1:${healthPort}/readyz`)) === 200 ? true : undefined), 'the webhook to be ready');

  say('akv-injector demo: webhook → init container → files, with local Kubernetes API, Entra ID and Key Vault stand-ins');
  say();
  const review = loadReview('deployment-pod');
  review.request.object.metadata!.annotations = {
    'akv-injector.io/inject': 'true',
    'akv-injector.io/vault': 'kv-shop',
    'akv-injector.io/refresh-interval': '1h',
    'akv-injector.io/objects': [
      '- { objectName: db-password, objectType: secret, filePermission: "0440" }',
      '- { objectName: web-tls, objectType: secret, objectAlias: tls/tls.pem, filePermission: "0400" }',
      '- { objectName: web-tls, objectType: cert, objectAlias: tls/tls.crt }',
      '- { objectName: jwt-signing, objectType: key, objectAlias: jwt.pub }',
      '- { objectName: feature-flags, objectType: secret, optional: true }',
    ].join('\n'),
  };
  say(`pod ${review.request.namespace}/${review.request.object.metadata?.generateName}* (ServiceAccount checkout), annotations:`);
  for (const [key, value] of Object.entries(review.request.object.metadata!.annotations))
    say(`  ${key}: ${value.includes('\n') ? `|\n${value.replace(/^/gm, '    ')}` : value}`);
  say();

  const answer = (await post(`https://127.0.0.1:${port}/mutate`, review, ca)) as {
    response: { allowed: boolean; patch?: string; status?: { message?: string } };
  };
  const operations = JSON.parse(Buffer.from(answer.response.patch ?? '', 'base64').toString('utf8') || '[]') as Operation[];
  say(`$ POST https://127.0.0.1:${port}/mutate → allowed: ${answer.response.allowed}, ${operations.length} patch operations:`);
  for (const op of operations) say(`  ${op.op.padEnd(7)} ${op.path}${describe(op)}`);
  const pod: V1Pod = fastJsonPatch.applyPatch(structuredClone(review.request.object), operations, true, false).newDocument;
  const init = pod.spec?.initContainers?.find((c) => c.name === 'akv-injector') as V1Container;
  say();

  // --- 2. the init container, as the kubelet would run it -----------------------------------------------
  const root = join(world.dir, 'node');
  const env = Object.fromEntries((init.env ?? []).map((e) => [e.name, e.value ?? ''])) as Record<string, string>;
  const tokenFile = join(root, env.AZURE_FEDERATED_TOKEN_FILE as string);
  const outputDir = join(root, env.AKV_INJECTOR_OUTPUT_DIR as string);
  await mkdir(join(tokenFile, '..'), { recursive: true });
  await mkdir(outputDir, { recursive: true });
  await writeFile(tokenFile, fakeServiceAccountToken({ issuer: ISSUER, subject: SUBJECT }));
  say(`$ akv-injector ${(init.args ?? []).join(' ')}   (the init container: its environment from the patch; paths under ${root}, emulator ports added)`);
  const fetchEnv = loopbackChildEnv(await caFile('emulators-ca.crt', world.entra.caCertPem), {
    PATH: process.env.PATH,
    ...env,
    AZURE_FEDERATED_TOKEN_FILE: tokenFile,
    AKV_INJECTOR_OUTPUT_DIR: outputDir,
    AZURE_AUTHORITY_HOST: (env.AZURE_AUTHORITY_HOST as string).replace(/\/$/, `:${new URL(world.entra.url).port}/`),
    AKV_INJECTOR_VAULT_URL: (env.AKV_INJECTOR_VAULT_URL as string).replace(/\/$/, `:${world.vault.port}/`),
  });
  const fetch = spawn(process.execPath, [cli, ...(init.args ?? [])], { env: fetchEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const fetchLog = collect(fetch);
  const code = await new Promise<number>((resolve) => fetch.on('exit', (c) => resolve(c ?? 1)));
  for (const line of fetchLog.stdout().trim().split('\n')) {
    const log = JSON.parse(line) as Record<string, unknown>;
    say(
      `  ${String(log.msg).padEnd(34)} ${[log.object, log.type, log.bytes !== undefined ? `${log.bytes} bytes` : '', `${log.ms} ms`].filter(Boolean).join('  ')}`,
    );
  }
  say(`  exit ${code}${fetchLog.stderr() ? `\n${fetchLog.stderr()}` : ''}`);
  say();
  say(`what container "checkout" sees at ${env.AKV_INJECTOR_OUTPUT_DIR} (read-only):`);
  for (const line of await listFiles(outputDir)) say(line);
  say(`  ..data → ${await readlink(join(outputDir, '..data'))}   (published atomically, the way the kubelet publishes Secret volumes)`);

  // --- 3. the refresh sidecar: a rotation ------------------------------------------------------------
  const sidecar = pod.spec?.initContainers?.find((c) => c.name === 'akv-injector-refresh') as V1Container;
  const interval = sidecar.env?.find((e) => e.name === 'AKV_INJECTOR_REFRESH_INTERVAL')?.value ?? '';
  say();
  say(`$ akv-injector ${(sidecar.args ?? []).join(' ')}   (the native sidecar ${sidecar.name}: every ${interval} ± 10 %, SIGHUP refreshes now)`);
  const refresh = spawn(process.execPath, [cli, ...(sidecar.args ?? [])], {
    env: { ...fetchEnv, AKV_INJECTOR_REFRESH_INTERVAL: interval },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const refreshLog = collect(refresh);
  const logged = (message: string) => () => (refreshLog.stdout().includes(`"msg":"${message}"`) ? true : undefined);
  await waitFor(logged('next refresh'), 'the sidecar to wait for its first refresh');
  const before = await readlink(join(outputDir, '..data'));
  world.vault.setSecret('db-password', 'tr0ub4dor-and-3');
  say('  Key Vault: db-password gets a new version; kill -HUP the sidecar');
  refresh.kill('SIGHUP');
  await waitFor(logged('refresh complete: a new generation published'), 'the sidecar to publish the rotated secret');
  say(`  ..data → ${await readlink(join(outputDir, '..data'))}   (was ${before}: one atomic switch, pinned and unchanged files carried over)`);
  say(`  db-password now starts ${(await readFile(join(outputDir, 'db-password'), 'utf8')).slice(0, 7)}…`);
  const status = JSON.parse(await readFile(join(outputDir, '..akv-injector-status.json'), 'utf8')) as Record<string, unknown>;
  say(`  ..akv-injector-status.json: ${JSON.stringify({ generation: status.generation, lastSuccess: status.lastSuccess, lastError: status.lastError })}`);
  refresh.kill('SIGTERM');
  const refreshCode = await new Promise<number>((resolve) => refresh.on('exit', (c) => resolve(c ?? 1)));
  say(`  SIGTERM: exit ${refreshCode}`);
} finally {
  webhook.kill('SIGTERM');
  await new Promise((resolve) => webhook.on('exit', resolve));
  await api.close();
  await world.close();
}

// --- helpers -----------------------------------------------------------------------------------------
function describe(op: Operation): string {
  const raw = (op as { value?: unknown }).value;
  const value = (Array.isArray(raw) ? raw.at(-1) : raw) as Record<string, unknown> | undefined;
  if (op.path.includes('initContainers')) {
    const names = (Array.isArray(raw) ? raw : [raw]).map((c) => String((c as { name?: string }).name)).join(', ');
    return `  (init containers ${names}, image ${String(value?.image ?? '')})`;
  }
  if (op.path.startsWith('/spec/volumes')) return `  (volume ${String((value as { name?: string })?.name ?? '')})`;
  if (op.path.includes('volumeMounts')) return `  (${JSON.stringify(value)})`;
  if (op.path.includes('annotations')) return `  (${JSON.stringify(value)})`;
  return '';
}

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const lines: string[] = [];
  for (const entry of (await readdir(dir)).sort()) {
    if (entry.startsWith('..')) continue;
    const path = join(dir, entry);
    const info = (await lstat(path)).isSymbolicLink() ? await stat(path) : await lstat(path);
    if (info.isDirectory()) {
      lines.push(...(await listFiles(path, base)));
      continue;
    }
    const first = (await readFile(path, 'utf8')).split('\n')[0] ?? '';
    const preview = first.startsWith('-----') ? first : `${first.slice(0, 7)}… (${info.size} bytes)`;
    lines.push(`  ${(info.mode & 0o777).toString(8).padStart(4, '0')}  ${relative(base, path).padEnd(12)} ${preview}`);
  }
  return lines;
}

async function caFile(name: string, pem: string): Promise<string> {
  const path = join(world.dir, name);
  await writeFile(path, pem);
  return path;
}

function collect(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return { stdout: () => out, stderr: () => err };
}

async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await Promise.resolve(probe()).catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${webhookLog.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function get(url: string): Promise<number> {
  const response = await fetch(url);
  return response.status;
}

function post(url: string, body: unknown, ca: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (response) => {
      let text = '';
      response.on('data', (d: Buffer) => (text += d.toString()));
      response.on('end', () => resolve(JSON.parse(text)));
    });
    request.on('error', reject);
    request.end(JSON.stringify(body));
  });
}
