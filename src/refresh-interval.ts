// The refresh interval, read the same way from the pod's annotation (webhook) and the sidecar's environment (refresh).
import { parseDuration } from './duration.js';

/** Shorter than this, a vault shared by many pods spends its request budget on refreshes (README, "Rotation"). */
export const MIN_REFRESH_INTERVAL_MS = 30_000;
/** Longer than a day is a mistake, not a refresh (and Node.js timers end at 24.8 days). */
export const MAX_REFRESH_INTERVAL_MS = 24 * 3_600_000;
/** The longest text read as an interval: "23h59m59s" and more fit; a longer one is not a duration. */
const MAX_INTERVAL_TEXT = 32;

export const REFRESH_INTERVAL_RULE = 'must be a duration from 30s to 24h, such as 90s, 2m or 1h';

/** Milliseconds of a refresh interval, or undefined when `text` is not one from 30 s to 24 h. */
export function parseRefreshInterval(text: string): number | undefined {
  if (text.length > MAX_INTERVAL_TEXT) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms < MIN_REFRESH_INTERVAL_MS || ms > MAX_REFRESH_INTERVAL_MS) return undefined;
  return ms;
}

/** The interval as the sidecar's AKV_INJECTOR_REFRESH_INTERVAL, e.g. 90000 → "90s". */
export function formatRefreshInterval(ms: number): string {
  return `${ms / 1000}s`;
}
