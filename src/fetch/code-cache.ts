// The fetch runs from one script of its own, dist/fetch.cjs (src/fetch/script.ts, built by scripts/build.js), compiled
// with V8's code cache: dist/code-cache/fetch.v8, made when the image is built (code-cache-warm-up.ts). Node's own
// compile cache keeps a module's code as V8 has it right after compiling it, before it runs: only its top level, since
// V8 compiles a function when it is first called. So every fetch compiled the functions it called, MSAL's and the
// SDK's pipeline among them, anew. This cache is taken after a fetch rehearsed on a stage of Entra ID and Key Vault
// (rehearsal.ts) and holds the functions it ran (bench:fetch, Node 24: ~25 ms less CPU per fetch).
//
// V8 checks that a cache is for its version, its flags and a text of the same length, not for the same text: the cache
// carries the SHA-256 of the script it was made from, and is used only with that script. A cache that is missing, stale
// or rejected costs only CPU: the script is compiled as any other (and the fetch says so, command.ts).
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { mark, markCodeCache, type CodeCacheUse } from './phases.js';
import type { RehearsalStage } from './rehearsal.js';

/** What the fetch's script exports. */
export type FetchScript = typeof import('./script.js');

const HASH_BYTES = 32;

/** The script in `dist` (the bundle's folder) and its code cache. */
function locate(dist: string): { script: string; cacheDir: string; cache: string } {
  return { script: join(dist, 'fetch.cjs'), cacheDir: join(dist, 'code-cache'), cache: join(dist, 'code-cache', 'fetch.v8') };
}

/**
 * The script's text as it is compiled: a CommonJS module's body in a function of its exports and module, strict as
 * the ES modules it was bundled from (the build's banner comes before esbuild's own "use strict", which is then no
 * directive). On the first line, so that lines keep the numbers the source map gives them.
 */
export function wrap(body: string): string {
  return `(function (exports, module) {"use strict";${body}\n})`;
}

function hashOf(body: Buffer): Buffer {
  return createHash('sha256').update(body).digest();
}

function compile(dist: string, useCache: boolean): { exports: FetchScript; script: Script; hash: Buffer; use: CodeCacheUse } {
  const paths = locate(dist);
  const body = readFileSync(paths.script);
  // Of the file's bytes: hashing the text would first encode it again (3 ms of CPU for 0.8 MB, against 1).
  const hash = hashOf(body);
  let cachedData: Buffer | undefined;
  let use: CodeCacheUse = 'none';
  if (useCache) {
    const cache = readCache(paths.cache);
    if (cache !== undefined) {
      if (cache.subarray(0, HASH_BYTES).equals(hash)) cachedData = cache.subarray(HASH_BYTES);
      else use = 'stale';
    }
  }
  const script = new Script(wrap(body.toString('utf8')), { filename: paths.script, ...(cachedData !== undefined ? { cachedData } : {}) });
  if (cachedData !== undefined) use = script.cachedDataRejected === true ? 'rejected' : 'used';
  const module = { exports: {} as FetchScript };
  (script.runInThisContext() as (exports: object, module: object) => void)(module.exports, module);
  return { exports: module.exports, script, hash, use };
}

function readCache(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** The fetch's script in `dist`, compiled with its code cache when the image carries one for it. */
export function loadFetchScript(dist: string): FetchScript {
  const { exports, use } = compile(dist, true);
  markCodeCache(use);
  mark('script');
  return exports;
}

/**
 * The image build's warm-up: compile the script without a cache, rehearse a fetch with it on `stage`, and write the
 * code V8 then holds, read-only for every user. Returns the cache's path and size. Rejects when the rehearsal fails.
 */
export async function makeCodeCache(dist: string, stage: RehearsalStage): Promise<{ path: string; bytes: number }> {
  const paths = locate(dist);
  const { exports, script, hash } = compile(dist, false);
  await exports.rehearse(stage);
  const data = Buffer.concat([hash, script.createCachedData()]);
  mkdirSync(paths.cacheDir, { recursive: true });
  writeFileSync(paths.cache, data, { mode: 0o444 });
  chmodSync(paths.cache, 0o444);
  chmodSync(paths.cacheDir, 0o555);
  return { path: paths.cache, bytes: data.length };
}
