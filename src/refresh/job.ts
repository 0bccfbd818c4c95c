// The refresh sidecar's job: the fetch's environment plus AKV_INJECTOR_REFRESH_INTERVAL.
import { readJob, type FetchFlags, type FetchJob } from '../fetch/job.js';
import { startVersion } from '../fetch/read-object.js';
import { parseRefreshInterval, REFRESH_INTERVAL_RULE } from '../refresh-interval.js';

export interface RefreshJob extends FetchJob {
  intervalMs: number;
}

/** Read and validate the job; every problem is reported, each naming its variable. */
export function readRefreshJob(env: Record<string, string | undefined>, flags: FetchFlags = {}): { job?: RefreshJob; problems: string[] } {
  const { job, problems } = readJob(env, flags);
  const text = (env.AKV_INJECTOR_REFRESH_INTERVAL ?? '').trim();
  const intervalMs = parseRefreshInterval(text);
  if (text === '') problems.push('AKV_INJECTOR_REFRESH_INTERVAL is not set: how often to refresh, e.g. 90s, 2m or 1h');
  else if (intervalMs === undefined) problems.push(`AKV_INJECTOR_REFRESH_INTERVAL ${JSON.stringify(text.slice(0, 40))} ${REFRESH_INTERVAL_RULE}`);
  if (job === undefined || intervalMs === undefined) return { problems };
  return { job: { ...job, intervalMs }, problems };
}

/** The objects a refresh reads again: those not pinned to a version by objectVersion ("latest" pins nothing). */
export function isPinned(object: { objectVersion: string }): boolean {
  return startVersion(object.objectVersion) !== '';
}
