// Bundle the CLI into dist/ so it runs on a bare Node.js with no node_modules.
// Each role is its own lazily imported chunk: `fetch` never loads the webhook's code (test/bundle-roles.ts holds it).
import { build } from 'esbuild';
import { rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

// --metafile FILE: esbuild's account of which inputs went into which output; kept out of dist/, which ships.
const { values } = parseArgs({ options: { outdir: { type: 'string' }, metafile: { type: 'string' }, analyze: { type: 'boolean' } } });
const root = new URL('..', import.meta.url).pathname;
const outdir = values.outdir ? resolve(values.outdir) : resolve(root, 'dist');

await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { cli: resolve(root, 'cli/main.ts') },
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
  logLevel: 'warning',
  // CommonJS dependencies call require() for Node built-ins; give the ESM bundle one.
  banner: { js: "import { createRequire as __akvCreateRequire } from 'node:module'; const require = __akvCreateRequire(import.meta.url);" },
});

if (values.metafile) await writeFile(resolve(values.metafile), JSON.stringify(result.metafile));
if (values.analyze) {
  const { analyzeMetafile } = await import('esbuild');
  console.log(await analyzeMetafile(result.metafile));
}
