// The refresh sidecar's life: wait an interval (±10 %), refresh, say how it went in the status file; on failure keep
// the files, back off (at least as long as Key Vault's Retry-After) and try again. Between refreshes one timer waits.
import { lstatSync, readlinkSync } from 'node:fs';
import type { Agent } from 'node:https';
import path from 'node:path';
import { DATA_DIR } from '../atomic-writer.js';
import { backoffDelay } from '../backoff.js';
import { formatDuration } from '../duration.js';
import type { FetchLogger } from '../fetch/fetch-log.js';
import { refreshOnce } from './cycle.js';
import type { RefreshJob } from './job.js';
import { createRefreshSession } from './session.js';
import { writeStatus, type RefreshStatus } from './status.js';

/** The share of the interval drawn at random either way, so a Deployment's replicas do not read in lockstep. */
export const INTERVAL_JITTER = 0.1;
/** After a failure: 5 s, doubling, at most 5 minutes (or the interval, when shorter). */
const FAILURE_BACKOFF = { initialMs: 5_000, maxMs: 300_000, jitter: 0.5 };

/** "Refresh now" (SIGHUP): ends the current wait, or, during a refresh, makes the next one start right after it. */
export class RefreshTrigger {
  private pending = false;
  private listener: (() => void) | undefined;

  request(): void {
    this.pending = true;
    this.listener?.();
  }

  take(): boolean {
    const was = this.pending;
    this.pending = false;
    return was;
  }

  listen(listener: (() => void) | undefined): void {
    this.listener = listener;
  }
}

export interface RefreshDeps {
  logger: FetchLogger;
  /** Ends the sidecar (SIGTERM): the wait at once, a refresh before it publishes. */
  stop: AbortSignal;
  trigger: RefreshTrigger;
  agent?: Agent;
  now?: () => number;
  random?: () => number;
  writeStderr?: (text: string) => void;
  /** A full garbage collection, run after each refresh (see command.ts). */
  collect?: () => void;
}

/** The wait before the next refresh: the interval ±10 %, or after `failures` failures the backoff, never shorter than Retry-After. */
export function nextDelay(intervalMs: number, failures: number, retryAfterMs: number | undefined, random: () => number = Math.random): number {
  if (failures === 0) return Math.round(intervalMs * (1 - INTERVAL_JITTER + 2 * INTERVAL_JITTER * random()));
  const backoff = backoffDelay(failures - 1, { ...FAILURE_BACKOFF, maxMs: Math.min(FAILURE_BACKOFF.maxMs, intervalMs) }, random);
  return Math.max(backoff, retryAfterMs ?? 0);
}

/** Refresh until stopped; resolves the exit code (0). */
export async function runRefresh(job: RefreshJob, deps: RefreshDeps): Promise<number> {
  const now = deps.now ?? Date.now;
  const stderr = deps.writeStderr ?? ((text: string) => void process.stderr.write(text));
  const session = await createRefreshSession(job, deps.agent);
  const status = initialStatus(job.outputDir);
  let retryAfterMs: number | undefined;
  deps.logger.info({ interval: formatDuration(job.intervalMs), objects: job.objects.length, generation: status.generation }, 'refresh sidecar started');
  for (;;) {
    deps.collect?.();
    const delayMs = deps.trigger.take() ? 0 : nextDelay(job.intervalMs, status.consecutiveFailures, retryAfterMs, deps.random);
    status.nextRefresh = new Date(now() + delayMs).toISOString();
    saveStatus(job.outputDir, status, deps.logger);
    deps.logger.info({ inMs: delayMs, at: status.nextRefresh, rss: process.memoryUsage.rss() }, 'next refresh');
    const woke = await waitForTurn(delayMs, deps.stop, deps.trigger);
    if (woke === 'stop') break;
    if (woke === 'now') deps.logger.info({}, 'refresh now (SIGHUP)');
    const started = now();
    const outcome = await refreshOnce(job, session, { logger: deps.logger, now }, deps.stop);
    if (outcome.kind === 'stopped') break;
    status.lastAttempt = new Date(started).toISOString();
    if (outcome.kind === 'failed') {
      status.consecutiveFailures++;
      status.lastError = outcome.summary.trim();
      retryAfterMs = outcome.retryAfterMs;
      stderr(outcome.summary);
      deps.logger.error({ failures: status.consecutiveFailures, retryAfterMs, ms: now() - started }, 'refresh failed: the files were kept as they were');
      continue;
    }
    const at = new Date(now()).toISOString();
    Object.assign(status, { lastSuccess: at, lastError: null, consecutiveFailures: 0, generation: outcome.generation });
    retryAfterMs = undefined;
    if (outcome.kind === 'published') status.lastChange = at;
    deps.logger.info(
      { changed: outcome.kind === 'published', generation: outcome.generation, files: outcome.files, ms: now() - started },
      outcome.kind === 'published' ? 'refresh complete: a new generation published' : 'refresh complete: nothing changed',
    );
  }
  session.close();
  deps.logger.info({}, 'refresh sidecar stopped');
  return 0;
}

/** What the sidecar finds at start: the fetch's generation, published when `..data` was switched to it. */
function initialStatus(outputDir: string): RefreshStatus {
  const status: RefreshStatus = {
    generation: null,
    lastSuccess: null,
    lastChange: null,
    lastAttempt: null,
    lastError: null,
    consecutiveFailures: 0,
    nextRefresh: null,
  };
  try {
    const link = path.join(outputDir, DATA_DIR);
    status.generation = readlinkSync(link);
    status.lastSuccess = lstatSync(link).mtime.toISOString();
  } catch {
    // Nothing published yet: the first refresh will.
  }
  return status;
}

function saveStatus(outputDir: string, status: RefreshStatus, logger: FetchLogger): void {
  try {
    writeStatus(outputDir, status);
  } catch (error) {
    logger.warn({ code: (error as NodeJS.ErrnoException).code }, 'the status file could not be written');
  }
}

/** One timer and two listeners, nothing polling: resolves when the wait ends, a refresh is asked for, or the sidecar stops. */
function waitForTurn(delayMs: number, stop: AbortSignal, trigger: RefreshTrigger): Promise<'timer' | 'now' | 'stop'> {
  return new Promise((resolve) => {
    if (stop.aborted) return resolve('stop');
    const done = (why: 'timer' | 'now' | 'stop'): void => {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
      trigger.listen(undefined);
      if (why === 'now') trigger.take();
      resolve(why);
    };
    const onStop = (): void => done('stop');
    const timer = setTimeout(() => done('timer'), delayMs);
    stop.addEventListener('abort', onStop, { once: true });
    trigger.listen(() => done('now'));
  });
}
