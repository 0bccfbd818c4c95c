// The fetch as the image runs it: dist/cli.js compiles dist/fetch.cjs with the code cache the warm-up made
// (src/fetch/code-cache.ts), or without it when the cache cannot be used, and the files come out the same either way.
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { chmod, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { SourceMap } from 'node:module';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { wrap } from '../src/fetch/code-cache.js';
import { defaultChain, makePfx } from './fixtures/certs.js';
import { buildDist, runCli } from './fixtures/dist.js';
import { exactEnv } from './fixtures/exact-env.js';
import { startFetchWorld } from './fixtures/fetch-world.js';
import { loopbackLookup } from './fixtures/loopback.js';
import { npmPackageOf } from './fixtures/npm-package.js';

const world = await startFetchWorld();
t.teardown(() => world.close());
const cliPath = await buildDist(world.dir);
const dist = dirname(cliPath);
const cacheFile = join(dist, 'code-cache', 'fetch.v8');

world.vault.setSecret('db-password', 'script-PLANTED');
world.vault.setSecret('api-key', 'k'.repeat(300));
const chain = defaultChain('rsa');
world.vault.setCertificate('tls', { certDer: chain.leaf.der, secretValue: makePfx({ chain }).toString('base64'), contentType: 'application/x-pkcs12' });
const SECRETS = [
  { objectName: 'db-password', objectType: 'secret' },
  { objectName: 'api-key', objectType: 'secret' },
];

/** Run a fetch of `objects` through dist/cli.js at debug level; its exit code, stdout lines, stderr and output folder. */
async function fetch(objects: object[], extra: NodeJS.ProcessEnv = {}) {
  const job = await world.job(objects);
  const env = world.childEnv(job, objects, { LOG_LEVEL: 'debug' });
  const result = await runCli(cliPath, ['fetch'], { ...env, ...extra, NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} ${extra.NODE_OPTIONS ?? ''}` }, world.dir);
  const lines = result.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { ...result, lines, outputDir: job.outputDir };
}

/** How the fetch compiled its script, from its debug line. */
function codeCacheOf(lines: Array<Record<string, unknown>>): unknown {
  return lines.find((line) => line.msg === 'phases')?.codeCache;
}

async function checkSecrets(t: Test, outputDir: string): Promise<void> {
  t.equal(await readFile(join(outputDir, 'db-password'), 'utf8'), 'script-PLANTED');
  t.equal(await readFile(join(outputDir, 'api-key'), 'utf8'), 'k'.repeat(300));
}

async function warmUp(): Promise<string> {
  const { stdout } = await promisify(execFile)(...exactEnv(process.execPath, [join(dist, 'code-cache-warm-up.mjs')], { PATH: process.env.PATH }));
  return stdout;
}

// Each case changes the cache and fetches with what is left: they run in this order.
const cases: Array<{ name: string; prepare: (t: Test) => Promise<void>; nodeOptions?: string; use: string; warns: boolean }> = [
  { name: 'no cache (a bundle the Dockerfile did not warm up)', prepare: async () => undefined, use: 'none', warns: false },
  {
    name: 'the cache the warm-up makes',
    prepare: async (t) => {
      const stdout = await warmUp();
      t.match(stdout, /^code cache: .*fetch\.v8 \(\d+ KiB\)\n$/);
      t.equal(statSync(cacheFile).mode & 0o777, 0o444, 'read-only for everyone');
      t.equal(statSync(dirname(cacheFile)).mode & 0o777, 0o555);
    },
    use: 'used',
    warns: false,
  },
  { name: 'the cache under other V8 flags', prepare: async () => undefined, nodeOptions: '--jitless', use: 'rejected', warns: true },
  {
    name: 'a cache made for another fetch.cjs',
    prepare: async () => {
      const cache = await readFile(cacheFile);
      cache[0] = (cache[0] ?? 0) ^ 0xff;
      await chmod(cacheFile, 0o644);
      await writeFile(cacheFile, cache);
    },
    use: 'stale',
    warns: true,
  },
  {
    name: 'a cache cut short',
    prepare: async () => {
      const cache = await readFile(cacheFile);
      cache[0] = (cache[0] ?? 0) ^ 0xff;
      await writeFile(cacheFile, cache.subarray(0, cache.length >> 1));
    },
    use: 'rejected',
    warns: true,
  },
];

t.test('the fetch writes the same files whatever becomes of its code cache, and says what did', async (t) => {
  for (const { name, prepare, nodeOptions, use, warns } of cases) {
    await t.test(name, async (t) => {
      await prepare(t);
      const result = await fetch(SECRETS, nodeOptions ? { NODE_OPTIONS: nodeOptions } : {});
      t.equal(result.code, 0, result.stderr);
      await checkSecrets(t, result.outputDir);
      t.equal(codeCacheOf(result.lines), use);
      const warning = result.lines.find((line) => line.codeCache !== undefined && line.level === 'warn');
      t.equal(warning !== undefined, warns, 'a cache the image carries but the fetch cannot use is a warning');
      if (warns) t.match(warning, { codeCache: use, hint: /NODE_OPTIONS|Dockerfile/ });
    });
  }
});

// Which npm packages have a function that ran, from the V8 coverage of a fetch: the positions of
// fetch.cjs, less its wrapper, through its source map.
async function packagesRun(coverageDir: string): Promise<Set<string>> {
  const text = await readFile(join(dist, 'fetch.cjs'), 'utf8');
  const head = wrap('\u0000').indexOf('\u0000');
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const map = new SourceMap(JSON.parse(await readFile(join(dist, 'fetch.cjs.map'), 'utf8')) as never);
  const ran = new Set<string>();
  for (const file of await readdir(coverageDir)) {
    const { result } = JSON.parse(await readFile(join(coverageDir, file), 'utf8')) as {
      result: Array<{ url: string; functions: Array<{ ranges: Array<{ startOffset: number; count: number }> }> }>;
    };
    for (const script of result.filter((s) => s.url.startsWith('file:') && fileURLToPath(s.url) === join(dist, 'fetch.cjs'))) {
      for (const fn of script.functions) {
        const range = fn.ranges[0];
        if (range === undefined || range.count === 0 || range.startOffset < head) continue;
        const offset = range.startOffset - head;
        const line = lineStarts.findLastIndex((start) => start <= offset);
        const entry = map.findEntry(line, offset - (lineStarts[line] ?? 0));
        const name = npmPackageOf(('originalSource' in entry ? entry.originalSource : undefined) ?? '');
        if (name !== undefined) ran.add(name);
      }
    }
  }
  return ran;
}

t.test('a fetch of secrets runs none of the code it holds for keys, certificates, PKCS#12 files and proxies', async (t) => {
  const LAZY = ['node-forge', '@azure/keyvault-keys', '@azure/keyvault-certificates', 'https-proxy-agent', 'http-proxy-agent', 'agent-base', 'debug'];
  const secrets = join(world.dir, 'coverage-secrets');
  const result = await fetch(SECRETS, { NODE_V8_COVERAGE: secrets });
  t.equal(result.code, 0, result.stderr);
  const ran = await packagesRun(secrets);
  t.ok(ran.has('@azure/keyvault-secrets') && ran.has('@azure/msal-node'), 'the coverage shows what a fetch of secrets runs');
  t.same(
    LAZY.filter((name) => ran.has(name)),
    [],
  );
  // A secret that holds a PKCS#12 file and a certificate bring their code: the check above would see it.
  const pfx = join(world.dir, 'coverage-pfx');
  const all = await fetch(
    [
      { objectName: 'tls', objectType: 'secret' },
      { objectName: 'tls', objectType: 'cert', objectAlias: 'tls.crt' },
    ],
    { NODE_V8_COVERAGE: pfx },
  );
  t.equal(all.code, 0, all.stderr);
  const ranAll = await packagesRun(pfx);
  t.same(
    ['node-forge', '@azure/keyvault-certificates'].filter((name) => ranAll.has(name)),
    ['node-forge', '@azure/keyvault-certificates'],
  );
});

t.test('through a proxy (HTTPS_PROXY): the proxy agents load on first use, and the fetch tunnels through them', async (t) => {
  // A CONNECT proxy on the loopback interface, resolving the Azure host names as the test's DNS preload does.
  const tunnels: string[] = [];
  const sockets = new Set<Socket>();
  const proxy = createServer((_request, response) => response.writeHead(405).end());
  proxy.on('connect', (request, client: Socket, head) => {
    const target = request.url ?? '';
    tunnels.push(target);
    sockets.add(client);
    const separator = target.lastIndexOf(':');
    const host = target.slice(0, separator);
    loopbackLookup(host, {}, (error, address) => {
      if (error) return void client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      const upstream = connect(Number(target.slice(separator + 1)), address as string, () => {
        sockets.add(upstream);
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    proxy.close();
  });
  const coverage = join(world.dir, 'coverage-proxy');
  const result = await fetch(SECRETS, { HTTPS_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, NODE_V8_COVERAGE: coverage });
  t.equal(result.code, 0, result.stderr);
  t.ok((await packagesRun(coverage)).has('https-proxy-agent'), 'its agent ran (a fetch without a proxy runs none of it: above)');
  await checkSecrets(t, result.outputDir);
  const hosts = new Set(tunnels.map((target) => target.replace(/:\d+$/, '')));
  t.same([...hosts].sort(), ['kv-shop.vault.azure.net', 'login.microsoftonline.com'].sort(), 'Entra ID and Key Vault, each through the proxy');
});

t.test('a fetch loads no built-in it does not use', async (t) => {
  // A preload notes every descriptor read of the exports of node:util, node:fs and node:buffer (on Node 24 such a read
  // loads what their lazy properties hold: 16 internal modules), and at exit lists the modules Node.js loaded.
  const preload = join(world.dir, 'modules-preload.cjs');
  const report = join(world.dir, 'modules.json');
  await writeFile(
    preload,
    [
      "const watched = new Map(['node:util', 'node:fs', 'node:buffer'].map((id) => [process.getBuiltinModule(id), id]));",
      'const read = new Set();',
      'const descriptor = Object.getOwnPropertyDescriptor;',
      'Object.getOwnPropertyDescriptor = (object, key) => (watched.has(object) && read.add(watched.get(object)), descriptor(object, key));',
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ read: [...read], loaded: process.moduleLoadList })));`,
    ].join('\n'),
  );
  const result = await fetch(SECRETS, { NODE_OPTIONS: `--require ${preload}` });
  t.equal(result.code, 0, result.stderr);
  const { read, loaded } = JSON.parse(await readFile(report, 'utf8')) as { read: string[]; loaded: string[] };
  t.ok(loaded.includes('NativeModule https') && loaded.includes('NativeModule http2'), 'it loads what it uses (so an absence below means something)');
  // @azure/identity's other credentials import child_process, and the proxy agents' debug imports tty: a built-in
  // nothing uses is dropped by the build (2 ms of CPU), and the proxy agents load on first use.
  t.same(
    loaded.filter((name) => /^NativeModule (child_process|tty)$/.test(name)),
    [],
    'no child_process, no tty',
  );
  t.same(read, [], "no copy of node:util's, node:fs's or node:buffer's exports");
});

t.test('a bundle without its fetch script: exit 70 and the kind of error, as any unexpected error', async (t) => {
  const broken = await buildDist(world.dir);
  await rm(join(dirname(broken), 'fetch.cjs'));
  const objects = [{ objectName: 'db-password', objectType: 'secret' }];
  const job = await world.job(objects);
  const result = await runCli(broken, ['fetch'], world.childEnv(job, objects), world.dir);
  t.equal(result.code, 70);
  t.match(result.stderr, /^akv-injector: unexpected error \(Error\)\n\s+at /);
  t.same(await readdir(job.outputDir), [], 'nothing written');
});
