// The fetch role: one credential, one client per object type, bounded parallel reads, one atomic publish, all
// within one deadline. Every way it can fail ends in the same summary (stderr and the termination log).
import { setMaxListeners } from 'node:events';
import type { Agent } from 'node:https';
import { publishFiles } from '../atomic-writer.js';
import { keyVaultResourceForHost } from '../clouds.js';
import { formatDuration } from '../duration.js';
import type { ObjectSpec, OutputFile } from '../object-spec.js';
import { writeTerminationLog } from '../termination-log.js';
import { CoalescingCredential } from './coalescing-credential.js';
import { createWorkloadCredential, type WorkloadCredential } from './credential.js';
import { classify, diagnose, errorLabel, type DiagnoseContext, type Diagnosis } from './diagnose.js';
import { createHttp2Client } from './http2-client.js';
import { requestTimeoutMs, type FetchJob } from './job.js';
import type { FetchLogger } from './fetch-log.js';
import { mark } from './phases.js';
import { explainPublishFailure } from './publish-failure.js';
import { readObject, type Attempt } from './read-object.js';
import { ContentError } from './content.js';
import { DeadlineError, withRetry } from './retry.js';
import type { AccessToken, GetTokenOptions } from '@azure/core-auth';
import type { TokenClaims } from './token-file.js';
import { createVaultReader, type VaultReader } from './vault-reader.js';

export interface FetchDeps {
  logger: FetchLogger;
  /** HTTP agent for Entra ID and Key Vault (tests pass one that trusts their CA). */
  agent?: Agent;
  now?: () => number;
  /** Where the failure summary goes besides stderr (default /dev/termination-log, only if it exists). */
  terminationLogPath?: string;
  writeStderr?: (text: string) => void;
}

export interface Failure {
  object: ObjectSpec;
  diagnosis: Diagnosis;
  /** Key Vault asked to wait this long (Retry-After), longer than the deadline left: the refresh waits it out. */
  retryAfterMs?: number;
}

export interface FetchOutcome {
  exitCode: number;
  written: number;
  skipped: string[];
  failures: Failure[];
  /** The failure summary shown to the user; empty on success. */
  summary: string;
}

/**
 * Fetch every object of `job` and publish them together, or publish nothing and explain why. Returns by the
 * deadline whatever the network does: every attempt is raced against it, and each request has a time limit
 * of its own (job.ts requestTimeoutMs), so one that hangs costs an attempt, not the deadline.
 */
export async function runFetch(job: FetchJob, deps: FetchDeps): Promise<FetchOutcome> {
  const now = deps.now ?? Date.now;
  const started = now();
  const deadline = started + job.timeoutMs;
  const controller = new AbortController();
  // Every in-flight request listens for the deadline.
  setMaxListeners(0, controller.signal);
  // Referenced: until the deadline, the process waits for it even when nothing else is pending.
  const timer = setTimeout(() => controller.abort(new Error('deadline exceeded')), job.timeoutMs);
  const transport = createHttp2Client({ ...(deps.agent ? { agent: deps.agent } : {}), requestTimeoutMs: requestTimeoutMs(job) });
  try {
    // The reads start first, so the vault's client loads and its challenge is in flight while @azure/identity
    // loads; the token request follows as soon as it can, and the challenged reads wait for it.
    const identity = new DeferredCredential(() => createWorkloadCredential(job, transport));
    const credential = new CoalescingCredential(identity);
    const reader = createVaultReader(job.vaultUrl, credential, { httpClient: transport });
    const reading = readAll(job, deps, reader, controller.signal, deadline, () => identity.claims());
    // A failure to load it reaches every token request.
    identity.start().catch(() => undefined);
    prewarmToken(credential, job);
    const read = await reading;
    mark('lastRead');
    clearTimeout(timer);
    // Nothing is left to wait for: a token request still being retried, or an answer still arriving, ends here.
    transport.close();
    if (read.failures.length > 0) {
      const summary = summarize(job, read.failures);
      await report(summary, deps);
      deps.logger.error({ failed: read.failures.length, objects: job.objects.length, ms: now() - started }, 'fetch failed: nothing written');
      return { exitCode: 1, written: 0, skipped: read.skipped, failures: read.failures, summary };
    }
    return await publish(job, deps, read, now() - started);
  } finally {
    clearTimeout(timer);
    transport.close();
  }
}

export interface ReadResult {
  files: OutputFile[];
  skipped: string[];
  failures: Failure[];
}

/** Read every object of `job` through `reader`, retrying within `deadline`: the files, the optional ones skipped, the failures. */
export async function readAll(
  job: FetchJob,
  deps: FetchDeps,
  reader: VaultReader,
  signal: AbortSignal,
  deadline: number,
  claims: () => TokenClaims | undefined,
): Promise<ReadResult> {
  const now = deps.now ?? Date.now;
  const attemptFor =
    (object: ObjectSpec): Attempt =>
    (call) =>
      withRetry(call, {
        signal,
        remainingMs: () => deadline - now(),
        classify,
        onRetry: (attempt, delayMs, error) =>
          deps.logger.warn({ object: object.objectName, type: object.objectType, attempt, delayMs, reason: errorLabel(error) }, 'retrying'),
      });

  const files: OutputFile[] = [];
  const skipped: string[] = [];
  const failures: Failure[] = [];
  await forEachLimited(job.objects, job.concurrency, async (object) => {
    const t0 = now();
    try {
      const result = await readObject(object, reader, attemptFor(object));
      mark('firstRead');
      files.push(...result.files);
      if (result.formatIgnored !== undefined) {
        deps.logger.warn({ object: object.objectName, type: object.objectType, reason: result.formatIgnored }, 'objectFormat pfx ignored');
      }
      deps.logger.info(
        {
          object: object.objectName,
          type: object.objectType,
          versions: result.versions,
          files: result.files.map((f) => f.path),
          bytes: result.files.reduce((n, f) => n + f.data.length, 0),
          ms: now() - t0,
        },
        'fetched',
      );
    } catch (error) {
      const diagnosis = explain(error, object, job, claims());
      if (object.optional && diagnosis.notFound) {
        skipped.push(object.objectName);
        deps.logger.warn(
          { object: object.objectName, type: object.objectType, reason: diagnosis.reason, ms: now() - t0 },
          'optional object not found, skipped',
        );
        return;
      }
      const retryAfterMs = error instanceof DeadlineError ? error.retryAfterMs : undefined;
      failures.push({ object, diagnosis, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
      deps.logger.error({ object: object.objectName, type: object.objectType, reason: diagnosis.reason, hint: diagnosis.hint, ms: now() - t0 }, 'fetch failed');
    }
  });
  return { files, skipped, failures };
}

async function publish(job: FetchJob, deps: FetchDeps, read: ReadResult, elapsedMs: number): Promise<FetchOutcome> {
  const files = sortByPath(read.files);
  let timestampDir: string;
  try {
    ({ timestampDir } = await publishFiles(job.outputDir, files));
    mark('published');
  } catch (error) {
    const failure = explainPublishFailure(error, job.outputDir, files);
    const summary = `akv-injector: the ${job.objects.length - read.skipped.length} objects were fetched from ${job.vaultUrl}, but the files could not be published into ${job.outputDir}.\n- ${failure.reason}. Fix: ${failure.hint}\n`;
    await report(summary, deps);
    deps.logger.error({ files: files.length, reason: failure.reason }, 'publish failed');
    return { exitCode: 1, written: 0, skipped: read.skipped, failures: [], summary };
  }
  deps.logger.info(
    { objects: job.objects.length - read.skipped.length, skipped: read.skipped.length, files: files.length, dir: timestampDir, ms: elapsedMs },
    'fetch complete',
  );
  return { exitCode: 0, written: files.length, skipped: read.skipped, failures: [], summary: '' };
}

/**
 * The workload credential, made (its module loaded) when start() is called rather than before the first
 * request: a token asked for earlier waits for it. A failure to make it fails each token request.
 */
class DeferredCredential implements WorkloadCredential {
  private made: Promise<WorkloadCredential> | undefined;
  private credential: WorkloadCredential | undefined;

  constructor(private readonly make: () => Promise<WorkloadCredential>) {}

  start(): Promise<WorkloadCredential> {
    this.made ??= this.make().then((credential) => {
      mark('sdk');
      this.credential = credential;
      return credential;
    });
    return this.made;
  }

  claims(): TokenClaims | undefined {
    return this.credential?.claims();
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const token = await (await this.start()).getToken(scopes, options);
    mark('token');
    return token;
  }
}

// Ask for the vault token while the first request is still collecting its challenge.
function prewarmToken(credential: CoalescingCredential, job: FetchJob): void {
  const resource = keyVaultResourceForHost(new URL(job.vaultUrl).hostname);
  if (resource === undefined) return;
  // Same options as the SDK's challenge policy, so its request shares this one.
  credential.getToken(`${resource}/.default`, { enableCae: true, tenantId: job.tenantId }).catch(() => {
    // The clients ask again and report the failure per object.
  });
}

function explain(error: unknown, object: ObjectSpec, job: FetchJob, claims: TokenClaims | undefined): Diagnosis {
  const cause = error instanceof DeadlineError ? error.lastError : error;
  if (cause instanceof ContentError) {
    return { reason: cause.message, hint: cause.hint, identity: false, notFound: false };
  }
  const context: DiagnoseContext = {
    type: object.objectType,
    name: object.objectName,
    vaultUrl: job.vaultUrl,
    clientId: job.clientId,
    authorityHost: job.authorityHost,
    requestTimeoutMs: requestTimeoutMs(job),
  };
  const diagnosis = diagnose(cause, context, claims);
  if (!(error instanceof DeadlineError)) return diagnosis;
  const limit = formatDuration(job.timeoutMs);
  if (error.retryAfterMs !== undefined) {
    const status = (cause as { statusCode?: number } | undefined)?.statusCode;
    return {
      ...diagnosis,
      reason: `Key Vault asked to wait ${formatDuration(error.retryAfterMs)} before trying again (${status ?? 'its'} Retry-After), beyond the deadline of ${limit}`,
      hint: `raise --timeout (AKV_INJECTOR_TIMEOUT) above ${formatDuration(error.retryAfterMs)} so the fetch can wait, or start fewer pods at once so the vault stops throttling`,
    };
  }
  if (cause === undefined)
    return { ...diagnosis, reason: `deadline of ${limit} exceeded`, hint: 'raise --timeout (AKV_INJECTOR_TIMEOUT) or check the network' };
  return { ...diagnosis, reason: `deadline of ${limit} exceeded; last error: ${diagnosis.reason}` };
}

/** The summary for stderr and the termination log: one line per failed object, identity problems once. */
export function summarize(job: FetchJob, failures: Failure[], outcome = 'no files were written'): string {
  const lines: string[] = [];
  const identity = failures.find((f) => f.diagnosis.identity);
  lines.push(`akv-injector: ${failures.length} of ${job.objects.length} objects could not be fetched from ${job.vaultUrl}; ${outcome}.`);
  if (identity !== undefined) {
    // The identity's hint already names the token's claims, when the token could be read.
    lines.push(`Authentication as client ${job.clientId} in tenant ${job.tenantId} failed: ${identity.diagnosis.reason}. ${identity.diagnosis.hint}`);
  }
  for (const { object, diagnosis } of failures) {
    const what = `${object.objectType} "${object.objectName}"${object.objectVersion ? ` version ${object.objectVersion}` : ''}`;
    lines.push(diagnosis.identity ? `- ${what}: ${diagnosis.reason}` : `- ${what}: ${diagnosis.reason}. Fix: ${diagnosis.hint}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Show the summary on stderr and in the termination log: the one way every failure of the fetch is reported. */
export async function report(summary: string, deps: Pick<FetchDeps, 'writeStderr' | 'terminationLogPath'>): Promise<void> {
  (deps.writeStderr ?? ((text: string) => process.stderr.write(text)))(summary);
  await writeTerminationLog(summary, deps.terminationLogPath);
}

async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Files in path order: the order they are written and compared in. */
export function sortByPath(files: OutputFile[]): OutputFile[] {
  return [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
