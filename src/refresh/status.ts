// `..akv-injector-status.json` beside the objects: how fresh they are, for the app and a probe. Never a value.
import { closeSync, fchmodSync, openSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';

/** The fixed name (DESIGN.md); `..` keeps it out of the objects' names and out of the writer's tidying. */
export const STATUS_FILE = '..akv-injector-status.json';
const STATUS_TMP = '..akv-injector-status.json.tmp';
/** The last error is a summary of names and reasons; more than this is cut. */
const MAX_ERROR_CHARS = 4096;

export interface RefreshStatus {
  /** The timestamped directory `..data` points to. */
  generation: string | null;
  /** When the objects were last read successfully (unchanged or published); at start, when the fetch published them. */
  lastSuccess: string | null;
  /** When a refresh last published a new generation. */
  lastChange: string | null;
  lastAttempt: string | null;
  /** The last failure's summary (object names and reasons, as the fetch prints them); null once a refresh succeeds. */
  lastError: string | null;
  consecutiveFailures: number;
  /** When the next refresh is due. */
  nextRefresh: string | null;
}

/** Write `status` atomically: a reader sees the previous file or this one, whole. */
export function writeStatus(outputDir: string, status: RefreshStatus): void {
  const bounded =
    status.lastError !== null && status.lastError.length > MAX_ERROR_CHARS
      ? { ...status, lastError: `${status.lastError.slice(0, MAX_ERROR_CHARS)}…` }
      : status;
  const data = Buffer.from(`${JSON.stringify(bounded, null, 2)}\n`);
  const tmp = path.join(outputDir, STATUS_TMP);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written, written);
    // Readable by the app containers' users; open's mode is filtered by the umask, chmod's is not.
    fchmodSync(fd, 0o644);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path.join(outputDir, STATUS_FILE));
}
