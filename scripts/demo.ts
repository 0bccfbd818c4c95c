// npm run demo — no cluster, no Azure: local Entra ID and Key Vault emulators, and the real bundled
// fetch role (dist/cli.js) exchanging a service-account token and writing the vault's objects as files.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { lstat, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { defaultChain, makePfx } from '../test/fixtures/certs.js';
import { startFetchWorld } from '../test/fixtures/fetch-world.js';
import { loopbackChildEnv } from '../test/fixtures/loopback.js';

const cli = new URL('../dist/cli.js', import.meta.url).pathname;
const world = await startFetchWorld();
const caFile = join(world.dir, 'ca.crt');
await writeFile(caFile, world.entra.caCertPem);

const chain = defaultChain('rsa');
world.vault.setSecret('db-password', 'correct-horse-battery-staple');
world.vault.setCertificate('web-tls', { certDer: chain.leaf.der, secretValue: makePfx({ chain, certOrder: ['root', 'leaf', 'intermediate'] }).toString('base64'), contentType: 'application/x-pkcs12' });
world.vault.setKey('jwt-signing', generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey);

const objects = [
  { objectName: 'db-password', objectType: 'secret', filePermission: '0440' },
  { objectName: 'web-tls', objectType: 'secret', objectAlias: 'tls/tls.pem', filePermission: '0400' },
  { objectName: 'web-tls', objectType: 'cert', objectAlias: 'tls/tls.crt' },
  { objectName: 'jwt-signing', objectType: 'key', objectAlias: 'jwt.pub' },
  { objectName: 'feature-flags', objectType: 'secret', optional: true },
];

async function fetchRole(objectList: unknown[]): Promise<{ code: number; outputDir: string; stdout: string; stderr: string }> {
  const job = await world.job(objectList);
  const env = loopbackChildEnv(caFile, {
    PATH: process.env.PATH,
    AZURE_CLIENT_ID: job.clientId,
    AZURE_TENANT_ID: job.tenantId,
    AZURE_FEDERATED_TOKEN_FILE: job.tokenFile,
    AZURE_AUTHORITY_HOST: job.authorityHost,
    AKV_INJECTOR_VAULT_URL: job.vaultUrl,
    AKV_INJECTOR_OBJECTS: JSON.stringify(objectList),
    AKV_INJECTOR_OUTPUT_DIR: job.outputDir,
  });
  const child = spawn(process.execPath, [cli, 'fetch'], { env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  return { code, outputDir: job.outputDir, stdout, stderr };
}

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const lines: string[] = [];
  for (const entry of (await readdir(dir)).sort()) {
    if (entry.startsWith('..')) continue;
    const path = join(dir, entry);
    const info = await lstat(path).then((l) => (l.isSymbolicLink() ? import('node:fs/promises').then((fs) => fs.stat(path)) : l));
    if (info.isDirectory()) {
      lines.push(...(await listFiles(path, base)));
      continue;
    }
    const first = (await readFile(path, 'utf8')).split('\n')[0] ?? '';
    const preview = first.startsWith('-----') ? first : `${first.slice(0, 6)}… (${info.size} bytes)`;
    lines.push(`  ${(info.mode & 0o777).toString(8).padStart(4, '0')}  ${relative(base, path).padEnd(14)} ${preview}`);
  }
  return lines;
}

console.log('akv-injector demo: the fetch role against local Entra ID and Key Vault emulators\n');
console.log(`vault      ${world.vault.vaultUrl('kv-shop')}`);
console.log(`authority  ${world.entra.url}`);
console.log(`objects    ${JSON.stringify(objects)}\n`);

const ok = await fetchRole(objects);
console.log(`$ akv-injector fetch   → exit ${ok.code}`);
for (const line of ok.stdout.trim().split('\n')) {
  const log = JSON.parse(line) as Record<string, unknown>;
  console.log(`  log: ${log.msg} ${log.object ?? ''} ${log.type ?? ''} ${log.bytes !== undefined ? `${log.bytes} bytes` : ''} ${log.ms}ms`.replace(/ +/g, ' '));
}
console.log(`\nfiles in ${ok.outputDir} (what the app containers see, read-only):`);
console.log((await listFiles(ok.outputDir)).join('\n'));
console.log(`  (..data → ${await import('node:fs/promises').then((fs) => fs.readlink(join(ok.outputDir, '..data')))}: the set is published atomically)\n`);

world.vault.deny({ collection: 'secrets', name: 'payments-api-key' });
world.vault.setSecret('payments-api-key', 'never-shown');
const denied = await fetchRole([{ objectName: 'payments-api-key', objectType: 'secret' }, { objectName: 'db-password', objectType: 'secret' }]);
console.log(`$ akv-injector fetch  (an object the identity may not read)  → exit ${denied.code}`);
console.log(denied.stderr.trim().replace(/^/gm, '  '));

await world.close();
await rm(world.dir, { recursive: true, force: true });
