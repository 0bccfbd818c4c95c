// `akv-injector fetch`: the init container's command, from its flags and environment to its exit code.
import { parseArgs } from 'node:util';
import { refuseConfiguration, writeTerminationLog } from '../termination-log.js';
import { readJob } from './job.js';
import { codeCacheUse, mark, phaseTimes } from './phases.js';

const CODE_CACHE_HINTS = {
  rejected: "V8 refused the image's cache: it was made by another Node.js or under other V8 flags; give the init container the image's NODE_OPTIONS",
  stale: "the image's cache was made for another dist/fetch.cjs: build the image with its Dockerfile, which makes the cache after the bundle",
};

/** Run the fetch and return its exit code: 0 all written, 1 failed, 2 invalid flags or environment. Never rejects. */
export async function fetchCommand(args: string[]): Promise<number> {
  let values: { timeout?: string; concurrency?: string };
  try {
    ({ values } = parseArgs({ args, options: { timeout: { type: 'string' }, concurrency: { type: 'string' } }, strict: true }));
  } catch (error) {
    process.stderr.write(`akv-injector fetch: ${(error as Error).message}\nRun "akv-injector fetch --help" for the flags.\n`);
    return 2;
  }
  try {
    const { job, problems } = readJob(process.env, values);
    if (job === undefined) return await refuseConfiguration('fetch', problems);
    // Only a valid job loads the fetch itself (and the SDKs it loads in turn).
    const [{ runFetch }, { createFetchLogger }] = await Promise.all([import('./run.js'), import('./fetch-log.js')]);
    mark('job');
    const logger = createFetchLogger('fetch');
    const codeCache = codeCacheUse();
    if (codeCache === 'rejected' || codeCache === 'stale')
      logger.warn({ codeCache, hint: CODE_CACHE_HINTS[codeCache] }, 'code cache not used: the fetch compiled its code (more CPU)');
    const outcome = await runFetch(job, { logger });
    if (logger.isLevelEnabled('debug')) logger.debug(phaseTimes(), 'phases');
    return outcome.exitCode;
  } catch (error) {
    return reportFetchFailure(error);
  }
}

/** An error no part of the fetch expected: the same summary as every failure (stderr, termination log), exit 1. */
async function reportFetchFailure(error: unknown): Promise<number> {
  let label = 'unknown';
  try {
    label = (await import('./diagnose.js')).errorLabel(error);
  } catch {
    // The label is a courtesy; the summary must go out regardless.
  }
  const summary = `akv-injector: the fetch stopped on an unexpected error (${label}). Fix: this is a bug in akv-injector; please report it with the log lines above.\n`;
  process.stderr.write(summary);
  try {
    await writeTerminationLog(summary);
  } catch {
    // stderr has it.
  }
  return 1;
}
