// Node.js 24's compile cache for the fetch: V8's code for its modules, made when the image is built
// (compile-cache-warm-up.ts) and read at each start-up, which then skips compiling them. Node keys the cache by its
// version and the user's uid, and reads a directory it cannot write only when that key's folder already exists:
// the warm-up runs as the image's user (65532), with the image's Node binary.
//
// The fetch sets no V8 flags of its own. Node's own modules come with V8's code for them inside the binary, and V8
// throws that code away under other compiler flags: with TurboFan off (5 MiB less peak RSS), loading http2, tls,
// crypto and the rest cost 42 ms of CPU instead of 25, and bench:fetch measured 180 against 160 ms of CPU per fetch.
import module from 'node:module';
import { existsSync } from 'node:fs';

type CompileCacheApi = { enableCompileCache?: (directory: string) => unknown; flushCompileCache?: () => void };

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
