// The bundled CLI as the init container runs it: dist/ copied to an empty folder, no node_modules, real process.
import { generateKeyPairSync } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { defaultChain, makePfx } from './fixtures/certs.js';
import { buildDist, runCli, type ProcessResult } from './fixtures/dist.js';
import { startFetchWorld } from './fixtures/fetch-world.js';
import { loopbackChildEnv } from './fixtures/loopback.js';

const world = await startFetchWorld();
t.teardown(() => world.close());

// Built straight into an empty folder: nothing can be resolved from a node_modules.
const cliPath = await buildDist(world.dir);

world.vault.setSecret('db-password', 'process-level-PLANTED');
const chain = defaultChain('rsa');
world.vault.setCertificate('tls', { certDer: chain.leaf.der, secretValue: makePfx({ chain }).toString('base64'), contentType: 'application/x-pkcs12' });
const signing = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
world.vault.setKey('signing', signing.publicKey);

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<ProcessResult> {
  return runCli(cliPath, args, env, world.dir);
}

async function jobEnv(objects: unknown[]): Promise<{ env: NodeJS.ProcessEnv; outputDir: string }> {
  const job = await world.job(objects);
  // A clean environment: only what the init container would get, plus the test's DNS preload and CA.
  return { outputDir: job.outputDir, env: world.childEnv(job, objects) };
}

t.test('fetch writes the files and exits 0, loading every lazy chunk of the bundle', async (t) => {
  const { env, outputDir } = await jobEnv([
    { objectName: 'db-password', objectType: 'secret', filePermission: '0440' },
    { objectName: 'tls', objectType: 'secret', objectAlias: 'tls.pem' },
    { objectName: 'tls', objectType: 'cert', objectAlias: 'tls.crt' },
    { objectName: 'signing', objectType: 'key', objectAlias: 'signing.pub' },
  ]);
  const result = await cli(['fetch'], env);
  t.equal(result.code, 0, result.stderr);
  t.equal(await readFile(join(outputDir, 'db-password'), 'utf8'), 'process-level-PLANTED');
  t.equal((await stat(join(outputDir, 'db-password'))).mode & 0o777, 0o440);
  t.equal(
    await readFile(join(outputDir, 'tls.pem'), 'utf8'),
    `${chain.leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()}${chain.leaf.pem}${chain.intermediate.pem}${chain.root.pem}`,
  );
  t.equal(await readFile(join(outputDir, 'tls.crt'), 'utf8'), chain.leaf.pem);
  t.equal(await readFile(join(outputDir, 'signing.pub'), 'utf8'), signing.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const lines = result.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(
    lines.find((l) => l.object === 'db-password'),
    { level: 'info', role: 'fetch', msg: 'fetched', type: 'secret', bytes: 21 },
  );
  t.match(lines.at(-1), { msg: 'fetch complete', objects: 4, files: 4 });
  t.notOk(result.stdout.includes('PLANTED') || result.stderr.includes('PLANTED'), 'the value is in no log');
});

t.test('a missing object: exit 1 with the summary on stderr', async (t) => {
  const { env, outputDir } = await jobEnv([{ objectName: 'missing', objectType: 'secret' }]);
  const result = await cli(['fetch', '--timeout', '30s'], env);
  t.equal(result.code, 1);
  t.match(
    result.stderr,
    /^akv-injector: 1 of 1 objects could not be fetched from https:\/\/kv-shop\.vault\.azure\.net:\d+\/; no files were written\.\n- secret "missing": not found \(404 SecretNotFound\)\. Fix: /,
  );
  t.same(await readdir(outputDir), []);
});

t.test('invalid configuration: exit 2, every problem listed', async (t) => {
  const { env } = await jobEnv([{ objectName: 'a', objectType: 'secret' }]);
  const result = await cli(['fetch'], {
    ...env,
    AKV_INJECTOR_VAULT_URL: 'https://example.com/',
    AKV_INJECTOR_OBJECTS: '[{"objectName":"a","objectType":"secret","objectAlias":"../etc/passwd"}]',
  });
  t.equal(result.code, 2);
  t.match(
    result.stderr,
    /akv-injector fetch: invalid configuration:\n- AKV_INJECTOR_VAULT_URL "https:\/\/example.com\/" host "example.com" is not a Key Vault host.*\n- AKV_INJECTOR_OBJECTS: object 0 "a": objectAlias "..\/etc\/passwd" must not contain "\.\."/,
  );
});

t.test('usage errors', async (t) => {
  const bare = loopbackChildEnv(world.caFile, { PATH: process.env.PATH ?? '' });
  t.match(await cli(['fetch', '--bogus'], bare), { code: 2, stderr: /akv-injector fetch: Unknown option '--bogus'/ });
  t.match(await cli(['nope'], bare), { code: 2, stderr: /unknown command "nope"/ });
  t.match(await cli(['--help'], bare), { code: 0, stdout: /Usage: akv-injector <command>/ });
  t.match(await cli(['version'], bare), { code: 0, stdout: /^\d+\.\d+\.\d+\n$/ });
});
