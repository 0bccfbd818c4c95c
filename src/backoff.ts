// Exponential backoff: the one schedule every retry loop of both roles waits by.

export interface Backoff {
  /** The ceiling of the first retry's wait; it doubles with each retry. */
  initialMs: number;
  /** The highest ceiling. */
  maxMs: number;
  /**
   * The share of the wait drawn at random, from 0 to 1: 1 waits anywhere up to the ceiling ("full jitter",
   * best at spreading many clients), 0.5 at least half of it, 0 exactly the ceiling.
   */
  jitter: number;
}

/** The wait before retry `attempt` (0 for the first): the ceiling initialMs·2^attempt, at most maxMs, less its random share. */
export function backoffDelay(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  // The exponent stops growing long before it could overflow (0·∞ would be NaN, not a wait).
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 32));
  return Math.round(ceiling * (1 - backoff.jitter + backoff.jitter * random()));
}
