// Node.js 24's compile cache for the fetch: V8's code for its modules, made when the image is built
// (compile-cache-warm-up.ts) and read at each start-up, which then skips compiling them. Node keys the cache by its
// version and the user's uid, and reads a directory it cannot write only when that key's folder already exists:
// the warm-up runs as the image's user (65532), with the image's Node binary.
import module from 'node:module';
import { existsSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

type CompileCacheApi = { enableCompileCache?: (directory: string) => unknown; flushCompileCache?: () => void };

/**
 * The fetch's V8 flags, set first in the fetch and in the warm-up alike: Node keys the compile cache by V8's flags,
 * so a cache made under other flags is not read. No TurboFan: a process that lives half a second gains nothing from
 * V8's top tier, and running it touches ~5 MiB more of the node binary (bench:fetch on Node 24: peak RSS 75 → 70 MiB,
 * wall time and CPU unchanged). Maglev, on by default from Node.js 22, takes its place: with neither optimizing
 * compiler, node-forge's PKCS#12 conversion takes 10 times the CPU. So Node.js 20, which has no Maglev, keeps TurboFan.
 */
export function setFetchV8Flags(): void {
  if (Number(process.versions.node.split('.')[0]) >= 22) setFlagsFromString('--no-turbofan');
}

/** The cache's folder beside an entry point of the bundle (dist/compile-cache), given that entry's import.meta.url. */
export function compileCacheDir(entryUrl: string): string {
  return new URL('compile-cache', entryUrl).pathname;
}

/** Use the cache in `directory` when the image carries one (Node.js ≥ 22.1; elsewhere nothing happens). */
export function useCompileCache(directory: string): void {
  if (existsSync(directory)) (module as CompileCacheApi).enableCompileCache?.(directory);
}

/** Start caching into `directory`, making it (the warm-up). */
export function startCompileCache(directory: string): boolean {
  const api = module as CompileCacheApi;
  if (api.enableCompileCache === undefined || api.flushCompileCache === undefined) return false;
  api.enableCompileCache(directory);
  return true;
}

/** Write what has been compiled so far into the cache now, not at exit. */
export function flushCompileCache(): void {
  (module as CompileCacheApi).flushCompileCache?.();
}
