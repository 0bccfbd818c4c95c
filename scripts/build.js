// Bundle the CLI into dist/ so it runs on a bare Node.js with no node_modules.
// Each role is its own lazily imported chunk: `fetch` never loads the webhook's code (test/bundle-roles.ts holds it).
import { build } from 'esbuild';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

// --metafile FILE: esbuild's account of which inputs went into which output; kept out of dist/, which ships.
// --floor FILE: instead of the CLI, bench:fetch's floor (scripts/bench-floor.cjs: bare Node.js and the Key Vault SDK)
// bundled into FILE as the fetch's script is, with the same plugins.
const { values } = parseArgs({
  options: { outdir: { type: 'string' }, metafile: { type: 'string' }, analyze: { type: 'boolean' }, floor: { type: 'string' } },
});
const root = new URL('..', import.meta.url).pathname;
const outdir = values.outdir ? resolve(values.outdir) : resolve(root, 'dist');

// Node.js built-ins are required, not imported: the ES module facade of a built-in reads every export it has, and on
// Node 24 node:http's include lazy getters that load undici (~40 ms of CPU at each start-up of the fetch). A
// required module's body runs when it is first used, and loading a built-in has no side effects, so an unused
// stand-in goes with the code that used it: the credentials of @azure/identity that the fetch leaves out required
// child_process (2 ms). But the bundler's interop copies a CommonJS module's exports property by property, and on
// Node 24 reading the descriptors of node:util's, node:fs's and node:buffer's lazy properties loads 16 more internal
// modules (3 ms): those three, which every role loads anyway, are taken as bindings, each read once, and only the
// bindings some module uses are kept (the export list is this Node.js's).
const BINDINGS = new Set(['node:util', 'node:fs', 'node:buffer']);
/** @type {import('esbuild').Plugin} */
const requireBuiltins = {
  name: 'require-builtins',
  setup(b) {
    b.onResolve({ filter: /^[a-z0-9_:/]+$/ }, (args) =>
      args.kind === 'import-statement' && isBuiltin(args.path) ? { path: args.path, namespace: 'builtin', sideEffects: false } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, async (args) => {
      const id = args.path.startsWith('node:') ? args.path : `node:${args.path}`;
      if (!BINDINGS.has(id)) return { contents: `module.exports = require(${JSON.stringify(id)});`, loader: 'js' };
      const builtin = `process.getBuiltinModule(${JSON.stringify(id)})`;
      const names = Object.keys(await import(id)).filter((name) => name !== 'default' && /^[A-Za-z_$][\w$]*$/.test(name));
      const exports = names.map((name) => `export const ${name} = /* @__PURE__ */ (() => ${builtin}.${name})();`);
      return { contents: [`export default ${builtin};`, ...exports].join('\n'), loader: 'js' };
    });
  },
};

// The Azure pipeline's form-data policy asks every request `typeof FormData`: reading that global loads undici
// (~30 ms of CPU at each fetch, which sends no form). A body that is a FormData says so by its toStringTag, which
// asks no global. The build fails if the SDK's text changes, rather than quietly keep the cost.
const FORM_DATA_CHECK = 'typeof FormData !== "undefined" && body instanceof FormData';
/** @type {import('esbuild').Plugin} */
const formDataWithoutUndici = {
  name: 'form-data-without-undici',
  setup(b) {
    b.onLoad({ filter: /[\\/]@typespec[\\/]ts-http-runtime[\\/]dist[\\/]esm[\\/]formData\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes(FORM_DATA_CHECK)) throw new Error(`${args.path} no longer reads: ${FORM_DATA_CHECK}`);
      return { contents: source.replace(FORM_DATA_CHECK, 'Object.prototype.toString.call(body) === "[object FormData]"'), loader: 'js' };
    });
  },
};

// node-fetch 2 (under the Kubernetes client) takes node:url's URL and falls back to whatwg-url's only where Node has
// none, which no supported Node is; yet it requires whatwg-url at load, and with it tr46's Unicode mapping table: a
// quarter of a megabyte of code and several MiB of heap in every webhook and render process, for nothing. The build
// fails if node-fetch's text changes, rather than quietly keep them.
const WHATWG_URL_REQUIRE = "var whatwgUrl = _interopDefault(require('whatwg-url'));";
/** @type {import('esbuild').Plugin} */
const nodeFetchWithoutWhatwgUrl = {
  name: 'node-fetch-without-whatwg-url',
  setup(b) {
    b.onLoad({ filter: /[\\/]node-fetch[\\/]lib[\\/]index\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const fallbacks = source.split('Url.URL || whatwgUrl.URL').length - 1;
      if (!source.includes(WHATWG_URL_REQUIRE) || fallbacks !== 2 || source.split('whatwgUrl').length - 1 !== 3)
        throw new Error(`${args.path}: whatwg-url is no longer only node-fetch's fallback for node:url's URL`);
      return { contents: source.replace(WHATWG_URL_REQUIRE, 'var whatwgUrl = {};'), loader: 'js' };
    });
  },
};

// MSAL imports jsonwebtoken, and with it semver, jws, jwa and eight lodash functions, for one call: signing the
// client assertion of a certificate credential (ClientAssertion.createJwt). akv-injector's credential hands MSAL a
// token file's assertion and never a certificate, so that call never comes; loading them cost the fetch 9 ms of CPU
// at each start-up (bench:fetch, Node 24: 160 → 151 ms). The build fails if MSAL uses jsonwebtoken otherwise.
const JWT_IMPORT = "import jwt from 'jsonwebtoken';";
const JWT_UNUSED =
  "const jwt = { sign() { throw new Error('akv-injector is built without jsonwebtoken: it signs no client assertion (no certificate credential)'); } };";
/** @type {import('esbuild').Plugin} */
const msalWithoutJsonwebtoken = {
  name: 'msal-without-jsonwebtoken',
  setup(b) {
    b.onLoad({ filter: /[\\/]@azure[\\/]msal-node[\\/]dist[\\/]client[\\/]ClientAssertion\.mjs$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const uses = source.match(/(?<![.\w])jwt\.\w+/g) ?? [];
      if (source.split(JWT_IMPORT).length !== 2 || uses.join() !== 'jwt.sign')
        throw new Error(`${args.path}: MSAL no longer uses jsonwebtoken only to sign a certificate's client assertion`);
      return { contents: source.replace(JWT_IMPORT, JWT_UNUSED), loader: 'js' };
    });
  },
};

// The pipeline's proxy policy imports https-proxy-agent and http-proxy-agent, and with them agent-base, debug,
// supports-color and node:tty, for a proxy the fetch has only when HTTPS_PROXY or HTTP_PROXY is set: without one,
// every fetch ran their code at start-up for nothing. They are required on the first use instead (esbuild holds a
// CommonJS package's code until it is first required). The build fails if the policy's text changes.
const PROXY_AGENTS = [
  ['import { HttpsProxyAgent } from "https-proxy-agent";', 'new HttpsProxyAgent(', 'new (require("https-proxy-agent").HttpsProxyAgent)('],
  ['import { HttpProxyAgent } from "http-proxy-agent";', 'new HttpProxyAgent(', 'new (require("http-proxy-agent").HttpProxyAgent)('],
];
/** @type {import('esbuild').Plugin} */
const proxyAgentsOnFirstUse = {
  name: 'proxy-agents-on-first-use',
  setup(b) {
    b.onLoad({ filter: /[\\/]@typespec[\\/]ts-http-runtime[\\/]dist[\\/]esm[\\/]policies[\\/]proxyPolicy\.js$/ }, async (args) => {
      let source = await readFile(args.path, 'utf8');
      for (const [importLine, use, onFirstUse] of PROXY_AGENTS) {
        const name = use.slice('new '.length, -1);
        if (source.split(importLine).length !== 2 || source.split(use).length !== 2 || source.split(name).length !== 3)
          throw new Error(`${args.path}: ${name} is no longer imported once and used once, by \`${use}\``);
        source = source.replace(importLine, '').replace(use, onFirstUse);
      }
      return { contents: source, loader: 'js' };
    });
  },
};

// CommonJS dependencies call require() for Node built-ins, the only modules the bundle does not hold: give each
// chunk one that takes them from process.getBuiltinModule, with no createRequire (a module object for each chunk,
// from its import.meta) to resolve paths it never gets.
const REQUIRE_BUILTINS =
  "const require = (id) => process.getBuiltinModule(id) ?? (() => { throw Object.assign(new Error(`Cannot find module '${id}': the bundle holds every module but Node.js's own`), { code: 'MODULE_NOT_FOUND' }); })();";
/** @type {import('esbuild').BuildOptions} */
const common = {
  absWorkingDir: root,
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  plugins: [requireBuiltins, formDataWithoutUndici, nodeFetchWithoutWhatwgUrl, msalWithoutJsonwebtoken, proxyAgentsOnFirstUse],
  logLevel: 'warning',
  banner: { js: REQUIRE_BUILTINS },
};

if (values.floor !== undefined) {
  // Node's require is the script's own (scripts/bench-floor-script.cjs runs it as a CommonJS module's body).
  await build({
    ...common,
    entryPoints: [resolve(root, 'scripts/bench-floor.cjs')],
    outdir: undefined,
    outfile: resolve(values.floor),
    format: 'cjs',
    banner: {},
  });
} else {
  await rm(outdir, { recursive: true, force: true });
  // The CLI (dist/cli.mjs) and every role but the fetch, as ES modules: each role a chunk of its own, loaded on demand.
  // The warm-up is run once, by the image build, to make the fetch's code cache (src/fetch/code-cache.ts).
  const modules = await build({
    ...common,
    entryPoints: { cli: resolve(root, 'cli/main.ts'), 'code-cache-warm-up': resolve(root, 'src/fetch/code-cache-warm-up.ts') },
    splitting: true,
    format: 'esm',
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
  });
  // The fetch role as one script, fetch.cjs, which src/fetch/code-cache.ts compiles with V8's code cache. It holds every
  // module a fetch can load; those it loads on demand (the keys' and certificates' clients, the PKCS#12 conversion, the
  // diagnosis of failures) run only when first imported, as in the chunks.
  const script = await build({
    ...common,
    entryPoints: { fetch: resolve(root, 'src/fetch/script.ts') },
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
  });
  // dist/cli.js, the front door (cli/launch.ts): CommonJS, with Node's own require.
  const launcher = await build({ ...common, entryPoints: { cli: resolve(root, 'cli/launch.ts') }, format: 'cjs', banner: {} });
  const result = { metafile: { inputs: {}, outputs: {} } };
  for (const { metafile } of [modules, script, launcher]) {
    Object.assign(result.metafile.inputs, metafile.inputs);
    Object.assign(result.metafile.outputs, metafile.outputs);
  }

  // Which files are CommonJS (.js: cli.js) and which ES modules (.mjs) the names say; the package.json says the rest.
  // Without one, Node.js (≥ 22) meets each file as of unknown type and may compile it twice (bench:fetch, when the fetch
  // ran from ~25 ES module files: 5 ms of CPU and 8 of wall time at each start-up). `node dist/cli.js` finds this file
  // first, whatever lies above dist/.
  await writeFile(resolve(outdir, 'package.json'), `${JSON.stringify({ type: 'commonjs', private: true })}\n`);

  if (values.metafile) await writeFile(resolve(values.metafile), JSON.stringify(result.metafile));
  if (values.analyze) {
    const { analyzeMetafile } = await import('esbuild');
    console.log(await analyzeMetafile(result.metafile));
  }
}
