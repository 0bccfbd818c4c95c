// Bundle the CLI into dist/ so it runs on a bare Node.js with no node_modules.
// Each role is its own lazily imported chunk: `fetch` never loads the webhook's code (test/bundle-roles.ts holds it).
import { build } from 'esbuild';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

// --metafile FILE: esbuild's account of which inputs went into which output; kept out of dist/, which ships.
const { values } = parseArgs({ options: { outdir: { type: 'string' }, metafile: { type: 'string' }, analyze: { type: 'boolean' } } });
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

await rm(outdir, { recursive: true, force: true });
const result = await build({
  // The warm-up is run once, by the image build, to fill the fetch's compile cache (src/fetch/compile-cache.ts).
  entryPoints: { cli: resolve(root, 'cli/main.ts'), 'compile-cache-warm-up': resolve(root, 'src/fetch/compile-cache-warm-up.ts') },
  absWorkingDir: root,
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  metafile: true,
  plugins: [requireBuiltins, formDataWithoutUndici, nodeFetchWithoutWhatwgUrl, msalWithoutJsonwebtoken],
  logLevel: 'warning',
  // CommonJS dependencies call require() for Node built-ins, the only modules the bundle does not hold: give each
  // chunk one that takes them from process.getBuiltinModule, with no createRequire (a module object for each chunk,
  // from its import.meta) to resolve paths it never gets.
  banner: {
    js: "const require = (id) => process.getBuiltinModule(id) ?? (() => { throw Object.assign(new Error(`Cannot find module '${id}': the bundle holds every module but Node.js's own`), { code: 'MODULE_NOT_FOUND' }); })();",
  },
});

// The bundle is ES modules, and says so: without a package.json of its own, Node.js (≥ 22) meets each of the fetch's
// ~25 files as of unknown type, compiles it as CommonJS, fails, and compiles it again as a module (bench:fetch: 5 ms
// of CPU and 8 of wall time at each start-up). `node dist/cli.js` finds this file first, whatever lies above dist/.
await writeFile(resolve(outdir, 'package.json'), `${JSON.stringify({ type: 'module', private: true })}\n`);

if (values.metafile) await writeFile(resolve(values.metafile), JSON.stringify(result.metafile));
if (values.analyze) {
  const { analyzeMetafile } = await import('esbuild');
  console.log(await analyzeMetafile(result.metafile));
}
