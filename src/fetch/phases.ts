// When the fetch reached each milestone, for the benchmark's breakdown: marked on the monotonic clock (no cost worth
// counting) and converted to milliseconds since the process started only when logged, at debug level. Both from
// process.uptime(), not the `performance` global, which loads perf_hooks (1–2 ms of CPU) the first time it is touched.

export type Phase = 'main' | 'job' | 'sdk' | 'token' | 'firstRead' | 'lastRead' | 'published';

const marks = new Map<Phase, bigint>();

/** Record the first time `phase` is reached. */
export function mark(phase: Phase): void {
  if (!marks.has(phase)) marks.set(phase, process.hrtime.bigint());
}

/** The milestones reached, in ms since the process started, with the epoch time it started at (ms). */
export function phaseTimes(): { timeOrigin: number; ms: Partial<Record<Phase, number>> } {
  const nowHr = process.hrtime.bigint();
  const nowMs = process.uptime() * 1000;
  const ms: Partial<Record<Phase, number>> = {};
  for (const [phase, at] of marks) ms[phase] = Math.round((nowMs - Number(nowHr - at) / 1e6) * 10) / 10;
  return { timeOrigin: Date.now() - nowMs, ms };
}
