// `akv-injector refresh`: the refresh sidecar's command, from its flags, environment and signals to its exit code.
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { refuseConfiguration } from '../termination-log.js';
import { readRefreshJob } from './job.js';
import { RefreshTrigger } from './loop.js';

/** SIGTERM ends the sidecar within this, whatever is pending (a publish is synchronous and never cut). */
const EXIT_BOUND_MS = 900;

/** Run the sidecar until SIGTERM or SIGINT and return its exit code: 0 stopped, 2 invalid flags or environment. */
export async function refreshCommand(args: string[]): Promise<number> {
  // First of all: SIGHUP's default would end the process, and SIGTERM must stop a refresh before it publishes.
  const stop = new AbortController();
  const trigger = new RefreshTrigger();
  const onStop = (): void => {
    stop.abort();
    setTimeout(() => process.exit(0), EXIT_BOUND_MS).unref();
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', () => trigger.request());

  let values: { timeout?: string; concurrency?: string };
  try {
    ({ values } = parseArgs({ args, options: { timeout: { type: 'string' }, concurrency: { type: 'string' } }, strict: true }));
  } catch (error) {
    process.stderr.write(`akv-injector refresh: ${(error as Error).message}\nRun "akv-injector refresh --help" for the flags.\n`);
    return 2;
  }
  const { job, problems } = readRefreshJob(process.env, values);
  if (job === undefined) return refuseConfiguration('refresh', problems);
  const [{ runRefresh }, { createFetchLogger }] = await Promise.all([import('./loop.js'), import('../fetch/fetch-log.js')]);
  // The fetch's logger: pino's lines without pino, whose memory a sidecar would hold for its whole life.
  const logger = createFetchLogger('refresh');
  stop.signal.addEventListener('abort', () => logger.info({}, 'stopping'), { once: true });
  return runRefresh(job, { logger, stop: stop.signal, trigger, collect: fullCollection() });
}

/**
 * A full collection before each wait. Without it the garbage of each refresh is promoted and kept: the old generation
 * grew by about 1 MiB a refresh, to 123 MiB after 35 refreshes of 40 objects on Node 24, before V8 collected it; with it
 * RSS stays within a few MiB of its size at start (README, "Rotation"). The image passes no --expose-gc, so the flag is
 * set here, before the first call, and the function taken from a fresh context.
 */
function fullCollection(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
