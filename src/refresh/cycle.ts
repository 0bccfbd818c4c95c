// One refresh: read the objects not pinned to a version, keep the pinned ones' files as published, and publish a new
// generation only when some file's bytes or mode changed. A failure, or a stop, leaves the published set as it was.
import { setMaxListeners } from 'node:events';
import { publishFiles } from '../atomic-writer.js';
import type { FetchLogger } from '../fetch/fetch-log.js';
import { explainPublishFailure } from '../fetch/publish-failure.js';
import { readAll, sortByPath, summarize } from '../fetch/run.js';
import { outputPaths } from '../objects.js';
import type { OutputFile } from '../object-spec.js';
import { isPinned, type RefreshJob } from './job.js';
import { readPublished, samePublished } from './published.js';
import type { RefreshSession } from './session.js';

export type RefreshOutcome =
  | { kind: 'published'; generation: string; files: number }
  | { kind: 'unchanged'; generation: string; files: number }
  | { kind: 'failed'; summary: string; retryAfterMs?: number }
  | { kind: 'stopped' };

export interface CycleDeps {
  logger: FetchLogger;
  now?: () => number;
}

const KEPT = 'the files were kept as they were';

export async function refreshOnce(job: RefreshJob, session: RefreshSession, deps: CycleDeps, stop: AbortSignal): Promise<RefreshOutcome> {
  const now = deps.now ?? Date.now;
  const deadline = now() + job.timeoutMs;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new Error('deadline exceeded')), job.timeoutMs);
  const signal = AbortSignal.any([stop, timeout.signal]);
  setMaxListeners(0, signal);
  const readLogger = readingLogger(deps.logger, stop);
  try {
    const unpinned = job.objects.filter((object) => !isPinned(object));
    const read = await readAll({ ...job, objects: unpinned }, { logger: readLogger }, session.reader, signal, deadline, session.claims);
    if (stop.aborted) return { kind: 'stopped' };
    if (read.failures.length > 0) {
      const waits = read.failures.map((f) => f.retryAfterMs ?? 0);
      const retryAfterMs = Math.max(...waits);
      return { kind: 'failed', summary: summarize(job, read.failures, KEPT), ...(retryAfterMs > 0 ? { retryAfterMs } : {}) };
    }
    return publishIfChanged(job, read.files, stop);
  } finally {
    clearTimeout(timer);
  }
}

async function publishIfChanged(job: RefreshJob, fresh: OutputFile[], stop: AbortSignal): Promise<RefreshOutcome> {
  let files: OutputFile[] = fresh;
  try {
    const published = readPublished(job.outputDir);
    files = sortByPath([...fresh, ...pinnedFiles(job, published.files)]);
    if (published.generation !== undefined && samePublished(published, files)) {
      return { kind: 'unchanged', generation: published.generation, files: files.length };
    }
    // From here to the switch nothing waits: a stop (SIGTERM) is handled before or after the whole publish.
    if (stop.aborted) return { kind: 'stopped' };
    const { timestampDir } = await publishFiles(job.outputDir, files);
    return { kind: 'published', generation: timestampDir, files: files.length };
  } catch (error) {
    const failure = explainPublishFailure(error, job.outputDir, files);
    return {
      kind: 'failed',
      summary: `akv-injector: the objects were read from ${job.vaultUrl}, but could not be published into ${job.outputDir}; ${KEPT}.\n- ${failure.reason}. Fix: ${failure.hint}\n`,
    };
  }
}

// The fetch's per-object lines only at debug (a refresh logs one line of its own); nothing once stopping, when
// every read ends cut short by the stop, not by a fault.
function readingLogger(logger: FetchLogger, stop: AbortSignal): FetchLogger {
  const unlessStopping =
    (log: FetchLogger['warn']): FetchLogger['warn'] =>
    (fields, msg) => {
      if (!stop.aborted) log(fields, msg);
    };
  return {
    debug: logger.debug,
    info: logger.isLevelEnabled('debug') ? logger.info : () => undefined,
    warn: unlessStopping(logger.warn),
    error: unlessStopping(logger.error),
    isLevelEnabled: (level) => logger.isLevelEnabled(level),
  };
}

// A pinned object's files never change: they are carried over from the published set, never read again.
function pinnedFiles(job: RefreshJob, published: Map<string, OutputFile>): OutputFile[] {
  return job.objects.filter(isPinned).flatMap((object) => outputPaths(object).flatMap((p) => published.get(p) ?? []));
}
