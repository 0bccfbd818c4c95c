// What each role of the bundle loads, read from esbuild's own account of it (the metafile): the fetch init
// container never loads the webhook's libraries, and the webhook loads no Azure SDK. The fetch is one script of its
// own (dist/fetch.cjs, run by dist/cli.js); what a fetch of secrets leaves unrun in it, test/fetch-script.ts watches.
// The chunks another role loads are those its command's chunk imports, statically or on demand.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { exactEnv } from './fixtures/exact-env.js';
import { npmPackageOf } from './fixtures/npm-package.js';

interface Output {
  entryPoint?: string;
  inputs: Record<string, { bytesInOutput: number }>;
  imports: Array<{ path: string; kind: string; external?: boolean }>;
}
interface Metafile {
  inputs: Record<string, unknown>;
  outputs: Record<string, Output>;
}

const dir = await mkdtemp(join(tmpdir(), 'akv-bundle-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const root = new URL('..', import.meta.url).pathname;
await promisify(execFile)(
  ...exactEnv(process.execPath, [join(root, 'scripts', 'build.js'), '--outdir', join(dir, 'dist'), '--metafile', join(dir, 'meta.json')], {
    PATH: process.env.PATH,
  }),
);
const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as Metafile;

/** The output file of a module the bundle starts from: the CLI, or a module some chunk imports on demand. */
function chunkOf(entryPoint: string): string {
  const found = Object.entries(meta.outputs).find(([, output]) => output.entryPoint === entryPoint);
  if (found === undefined) throw new Error(`no chunk starts at ${entryPoint}: is it still imported on demand?`);
  return found[0];
}

function output(path: string): Output {
  const found = meta.outputs[path];
  if (found === undefined) throw new Error(`no output ${path}`);
  return found;
}

/** The chunks among an output's imports (the rest are Node.js built-ins), of the given kinds. */
function importedChunks(path: string, kinds: readonly string[]): string[] {
  return output(path)
    .imports.filter((i) => !i.external && kinds.includes(i.kind) && i.path in meta.outputs)
    .map((i) => i.path);
}

/** Every chunk that can load from `roots`, statically or on demand. */
function reachable(roots: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const pending = [...roots];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    if (seen.has(path)) continue;
    seen.add(path);
    pending.push(...importedChunks(path, ['import-statement', 'dynamic-import']));
  }
  return seen;
}

const cli = chunkOf('cli/main.ts');
/** The fetch's script: every module a fetch can load, in one file. */
const fetchScript = [chunkOf('src/fetch/script.ts')];
/** Every JavaScript file of the bundle. */
const javascript = Object.keys(meta.outputs).filter((path) => /\.[cm]?js$/.test(path));
/** What every command loads: the CLI's chunk and what it imports statically, not the commands it imports on demand. */
const everyCommand = [cli, ...reachable(importedChunks(cli, ['import-statement']))];

/** The chunks of one command: every command's, and all its entry module can load. */
function command(entryPoint: string): Set<string> {
  return new Set([...everyCommand, ...reachable([chunkOf(entryPoint)])]);
}

/** The npm packages whose code is in `chunks`. */
function packages(chunks: Iterable<string>): Set<string> {
  const names = new Set<string>();
  for (const chunk of chunks) {
    for (const input of Object.keys(output(chunk).inputs)) {
      const name = npmPackageOf(input);
      if (name !== undefined) names.add(name);
    }
  }
  return names;
}

const WEBHOOK_ONLY = ['fastify', '@kubernetes/client-node', 'prom-client', 'yaml'];
const AZURE = ['@azure/identity', '@azure/keyvault-secrets', '@azure/keyvault-keys', '@azure/keyvault-certificates'];

t.test("the fetch's script holds none of the webhook's libraries", async (t) => {
  const fetch = packages(fetchScript);
  t.ok(
    AZURE.every((name) => fetch.has(name)),
    'the fetch loads the Azure SDK (so a package is seen where it is)',
  );
  t.same(
    WEBHOOK_ONLY.filter((name) => fetch.has(name)),
    [],
    'no webhook library anywhere the fetch can reach',
  );
  t.ok(fetch.has('node-forge'), 'node-forge is there: the PKCS#12 conversion needs it');
  t.same([...packages([chunkOf('cli/launch.ts')])], [], "the CLI's front door, dist/cli.js, holds no package");
});

t.test("the fetch carries @azure/identity's one credential it uses, not the others", async (t) => {
  // Bytes each of @azure/identity's credentials (not their helpers) puts into what the fetch can load. A dynamic import of the
  // package keeps every export; src/fetch/identity.ts names the one credential, and the others keep only the logger
  // each makes when its module loads, with the few bytes that run the module on its first import (40-210 bytes each;
  // 45,608 bytes in all when the package was imported whole).
  const bytes = new Map<string, number>();
  for (const chunk of fetchScript) {
    for (const [input, { bytesInOutput }] of Object.entries(output(chunk).inputs)) {
      const name = /@azure\/identity\/dist\/esm\/credentials\/(\w+Credential)(?:\/index)?\.js$/.exec(input)?.[1];
      if (name !== undefined) bytes.set(name, (bytes.get(name) ?? 0) + bytesInOutput);
    }
  }
  t.ok((bytes.get('clientAssertionCredential') ?? 0) > 500, 'ClientAssertionCredential is there (so an absence below means something)');
  const others = [...bytes].filter(([name]) => name !== 'clientAssertionCredential');
  t.ok(others.length > 10, 'the other credentials are seen where they are');
  t.same(
    others.filter(([, n]) => n > 300).map(([name]) => name),
    [],
    'no other credential brings its code',
  );
});

t.test("the refresh sidecar loads the fetch's SDKs and none of the webhook's libraries, nor pino: it holds what it loads for its life", async (t) => {
  const refresh = packages(command('src/refresh/command.ts'));
  t.ok(
    AZURE.every((name) => refresh.has(name)),
    'the Azure SDK',
  );
  t.same(
    [...WEBHOOK_ONLY, 'pino'].filter((name) => refresh.has(name)),
    [],
  );
});

t.test('the webhook, serving or rendering, loads no Azure SDK', async (t) => {
  const webhook = packages(command('webhook/main.ts'));
  t.ok(
    WEBHOOK_ONLY.every((name) => webhook.has(name)),
    'the webhook loads its own libraries (so a package is seen where it is)',
  );
  t.same(
    AZURE.filter((name) => webhook.has(name)),
    [],
    'webhook',
  );
  t.same(
    AZURE.filter((name) => packages(command('webhook/render-command.ts')).has(name)),
    [],
    'render',
  );
});

t.test("the Kubernetes client comes without node-fetch's unused URL fallback (whatwg-url, and tr46's Unicode table)", async (t) => {
  const webhook = packages(command('webhook/main.ts'));
  t.ok(webhook.has('node-fetch'), 'node-fetch is in the webhook (so its absence below means something)');
  const all = packages(javascript);
  t.same(
    ['whatwg-url', 'tr46', 'punycode'].filter((name) => all.has(name)),
    [],
    'in no chunk',
  );
});

t.test("MSAL comes without jsonwebtoken, which it loads only to sign a certificate credential's assertion", async (t) => {
  const fetch = packages(fetchScript);
  t.ok(fetch.has('@azure/msal-node'), 'MSAL is in the fetch (so an absence below means something)');
  const all = packages(javascript);
  t.same(
    [...all].filter((name) => ['jsonwebtoken', 'jws', 'jwa', 'ecdsa-sig-formatter'].includes(name) || name.startsWith('lodash')),
    [],
    'in no chunk',
  );
  t.notOk(fetch.has('semver'), "nor jsonwebtoken's semver in the fetch");
  t.notOk(packages(command('src/refresh/command.ts')).has('semver'), 'nor in the refresh sidecar');
});

t.test("every command's code is its own chunk, loaded on demand by the CLI", async (t) => {
  const onDemand = importedChunks(cli, ['dynamic-import'])
    .map((path) => output(path).entryPoint)
    .sort();
  t.same(onDemand, ['src/certs-command.ts', 'src/fetch/code-cache.ts', 'src/refresh/command.ts', 'webhook/main.ts', 'webhook/render-command.ts']);
  t.same([...packages(everyCommand)], [], 'what every command loads holds no package');
});

t.test("the bundle is made only of what the Dockerfile's build stage copies", async (t) => {
  const dockerfile = await readFile(join(root, 'Dockerfile'), 'utf8');
  const build = dockerfile.split(/^FROM /m)[1] ?? '';
  const copied = [...build.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((match) => (match[1] ?? '').split(' '));
  // npm ci fills node_modules from the lockfile that a COPY brings.
  const packaged = (input: string): boolean => input.split('/').includes('node_modules');
  // The build's stand-ins for Node.js built-ins (namespace "builtin") are made by scripts/build.js, not read.
  const made = (input: string): boolean => input.startsWith('builtin:');
  const uncopied = Object.keys(meta.inputs).filter(
    (input) => !packaged(input) && !made(input) && !copied.some((source) => input === source || input.startsWith(`${source}/`)),
  );
  t.same(uncopied, [], `every input is a package's or under ${copied.join(', ')}`);
});

t.test('the bundle says which of its files are CommonJS: Node.js would otherwise compile some twice', async (t) => {
  t.same(JSON.parse(await readFile(join(dir, 'dist', 'package.json'), 'utf8')), { type: 'commonjs', private: true });
  t.same(
    javascript.filter((path) => path.endsWith('.js')),
    [chunkOf('cli/launch.ts')],
    "dist/cli.js, the front door, is the one .js file; ES modules are .mjs, the fetch's script .cjs",
  );
  t.ok(chunkOf('cli/main.ts').endsWith('/cli.mjs') && fetchScript.every((path) => path.endsWith('/fetch.cjs')));
});

t.test('Node.js built-ins are required, never imported: the ES module facade of one reads every export it has', async (t) => {
  // On Node 24 node:http's exports include getters that load undici: ~40 ms of CPU at every start-up of the fetch.
  const imported = Object.entries(meta.outputs).flatMap(([path, out]) =>
    out.imports.filter((i) => i.external === true && i.kind !== 'require-call').map((i) => `${path} ${i.kind} ${i.path}`),
  );
  t.same(imported, []);
});
