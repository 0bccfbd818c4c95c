// When the fetch reached each milestone, for the benchmark's breakdown: marked on the monotonic clock (no cost worth
// counting) and converted to milliseconds since the process started only when logged, at debug level. Both from
// process.uptime(), not the `performance` global, which loads perf_hooks (1–2 ms of CPU) the first time it is touched.
//
// The CLI marks its start, then runs the fetch from a script of its own (code-cache.ts), which carries its own copy of
// this module: the marks are kept where both copies find them, on the process's global object.

export type Phase = 'main' | 'script' | 'job' | 'sdk' | 'token' | 'firstRead' | 'lastRead' | 'published';

/**
 * How the fetch's script was compiled (code-cache.ts): with its code cache; without, because V8 refused the cache
 * (made by another Node.js, or under other V8 flags), because the cache was made for another script, or because
 * there is none (a bundle not built by the Dockerfile).
 */
export type CodeCacheUse = 'used' | 'rejected' | 'stale' | 'none';

interface Marks {
  at: Map<Phase, bigint>;
  codeCache?: CodeCacheUse;
}

const KEY = Symbol.for('akv-injector.fetch-phases');
const marks: Marks = ((globalThis as { [KEY]?: Marks })[KEY] ??= { at: new Map() });

/** Record the first time `phase` is reached. */
export function mark(phase: Phase): void {
  if (!marks.at.has(phase)) marks.at.set(phase, process.hrtime.bigint());
}

/** Record how the fetch's script was compiled. */
export function markCodeCache(use: CodeCacheUse): void {
  marks.codeCache = use;
}

/** How the fetch's script was compiled; undefined when it was not run from its script (tests import the modules). */
export function codeCacheUse(): CodeCacheUse | undefined {
  return marks.codeCache;
}

/** The milestones reached, in ms since the process started, with the epoch time it started at (ms). */
export function phaseTimes(): { timeOrigin: number; ms: Partial<Record<Phase, number>>; codeCache?: CodeCacheUse } {
  const nowHr = process.hrtime.bigint();
  const nowMs = process.uptime() * 1000;
  const ms: Partial<Record<Phase, number>> = {};
  for (const [phase, at] of marks.at) ms[phase] = Math.round((nowMs - Number(nowHr - at) / 1e6) * 10) / 10;
  return { timeOrigin: Date.now() - nowMs, ms, ...(marks.codeCache !== undefined ? { codeCache: marks.codeCache } : {}) };
}
