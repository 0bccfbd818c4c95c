// Retry transient failures with full-jitter exponential backoff, within an overall deadline.
import { backoffDelay } from '../backoff.js';

export interface RetryDecision {
  retry: boolean;
  /** Server-requested wait (Retry-After), in milliseconds. */
  retryAfterMs?: number;
}

export interface RetryOptions {
  /** Aborts when the overall deadline passes. */
  signal: AbortSignal;
  /** Milliseconds left before the deadline. */
  remainingMs: () => number;
  classify: (error: unknown) => RetryDecision;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
}

/**
 * Thrown when the deadline passes; `lastError` is what failed last, if anything did. With `retryAfterMs`, the
 * server asked to wait that long before trying again, longer than the time left (`remainingMs`): no retry could
 * succeed, so the fetch stops at once instead of waiting for the deadline.
 */
export class DeadlineError extends Error {
  constructor(
    readonly lastError: unknown,
    readonly retryAfterMs?: number,
    readonly remainingMs?: number,
  ) {
    super('deadline exceeded');
    this.name = 'DeadlineError';
  }
}

/**
 * Run `attempt` until it succeeds, fails permanently, or the deadline passes. The deadline ends every
 * attempt, even one whose promise ignores the signal (a token request, a file read): it is raced, not awaited.
 */
export async function withRetry<T>(attempt: (signal: AbortSignal) => Promise<T>, options: RetryOptions): Promise<T> {
  // node:timers/promises is loaded when a retry first waits, not at every fetch's start-up (1 ms of CPU).
  const sleep = options.sleep ?? ((ms: number, signal: AbortSignal) => process.getBuiltinModule('node:timers/promises').setTimeout(ms, undefined, { signal }));
  const backoff = { initialMs: options.baseDelayMs ?? 200, maxMs: options.maxDelayMs ?? 10_000, jitter: 1 };
  let lastError: unknown;
  for (let n = 0; ; n++) {
    if (options.signal.aborted) throw new DeadlineError(lastError);
    try {
      return await untilAborted(attempt(options.signal), options.signal);
    } catch (error) {
      // Cut short by the deadline (raced here, or the signal's abort reaching the SDK): what failed before is the cause.
      if (options.signal.aborted) throw new DeadlineError(error === DEADLINE || isAbort(error) ? lastError : (lastError ?? error));
      const decision = options.classify(error);
      if (!decision.retry) throw error;
      lastError = error;
      const delay = Math.max(backoffDelay(n, backoff, options.random), decision.retryAfterMs ?? 0);
      // Waiting past the deadline cannot succeed: report the real cause now.
      const remaining = options.remainingMs();
      if (delay >= remaining) {
        const askedToWait = decision.retryAfterMs !== undefined && decision.retryAfterMs >= remaining;
        throw askedToWait ? new DeadlineError(error, decision.retryAfterMs, remaining) : new DeadlineError(error);
      }
      options.onRetry?.(n + 1, delay, error);
      try {
        await sleep(delay, options.signal);
      } catch {
        throw new DeadlineError(error);
      }
    }
  }
}

/** Parse a Retry-After header (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | undefined | null, now: number = Date.now()): number | undefined {
  if (value === undefined || value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** What an attempt that the deadline cut short rejects with (the signal's own reason could be anything). */
const DEADLINE = new Error('deadline');

function isAbort(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(DEADLINE);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(DEADLINE);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
