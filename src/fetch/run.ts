// The fetch role: one credential, one client per object type, bounded parallel reads, one atomic publish.
import { setMaxListeners } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Agent } from 'node:https';
import { publishFiles } from '../atomic-writer.js';
import { keyVaultResourceForHost } from '../clouds.js';
import { formatDuration } from '../duration.js';
import type { Logger } from '../log.js';
import type { ObjectSpec, OutputFile } from '../object-spec.js';
import { CoalescingCredential } from './coalescing-credential.js';
import { classify, decodeTokenClaims, diagnose, type Diagnosis, type TokenClaims } from './diagnose.js';
import type { FetchJob } from './job.js';
import { readObject, type Attempt } from './read-object.js';
import { ContentError } from './render.js';
import { DeadlineError, withRetry } from './retry.js';
import { createVaultReader } from './vault-reader.js';
import { writeTerminationLog } from '../termination-log.js';

export interface FetchDeps {
  logger: Logger;
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
}

export interface FetchOutcome {
  exitCode: number;
  written: number;
  skipped: string[];
  failures: Failure[];
  /** The failure summary shown to the user; empty on success. */
  summary: string;
}

/** Fetch every object of `job` and publish them together, or publish nothing and explain why. */
export async function runFetch(job: FetchJob, deps: FetchDeps): Promise<FetchOutcome> {
  const now = deps.now ?? Date.now;
  const started = now();
  const deadline = started + job.timeoutMs;
  const controller = new AbortController();
  // Every in-flight request listens for the deadline.
  setMaxListeners(0, controller.signal);
  const timer = setTimeout(() => controller.abort(new Error('deadline exceeded')), job.timeoutMs);
  timer.unref();

  const { WorkloadIdentityCredential } = await import('@azure/identity');
  const credential = new CoalescingCredential(
    new WorkloadIdentityCredential({
      clientId: job.clientId,
      tenantId: job.tenantId,
      tokenFilePath: job.tokenFile,
      authorityHost: job.authorityHost,
      // The authority is trusted configuration: no discovery round trip, and it works in sovereign clouds.
      disableInstanceDiscovery: true,
      ...(deps.agent ? { agent: deps.agent } : {}),
    }),
  );
  prewarmToken(credential, job);
  const reader = createVaultReader(job.vaultUrl, credential, deps.agent ? { agent: deps.agent } : {});

  const attemptFor = (object: ObjectSpec): Attempt => (call) =>
    withRetry(call, {
      signal: controller.signal,
      remainingMs: () => deadline - now(),
      classify,
      onRetry: (attempt, delayMs, error) =>
        deps.logger.warn({ object: object.objectName, type: object.objectType, attempt, delayMs, reason: shortReason(error) }, 'retrying'),
    });

  // The token's claims name the federated credential a failed exchange needs: read once, on the first failure.
  let claims: Promise<TokenClaims | undefined> | undefined;
  const tokenClaims = (): Promise<TokenClaims | undefined> => (claims ??= readClaims(job.tokenFile));

  const files: OutputFile[] = [];
  const skipped: string[] = [];
  const failures: Failure[] = [];
  await forEachLimited(job.objects, job.concurrency, async (object) => {
    const t0 = now();
    try {
      const result = await readObject(object, reader, attemptFor(object));
      files.push(...result.files);
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
      const diagnosis = explain(error, object, job, await tokenClaims());
      if (object.optional && diagnosis.notFound) {
        skipped.push(object.objectName);
        deps.logger.warn({ object: object.objectName, type: object.objectType, reason: diagnosis.reason, ms: now() - t0 }, 'optional object not found, skipped');
        return;
      }
      failures.push({ object, diagnosis });
      deps.logger.error({ object: object.objectName, type: object.objectType, reason: diagnosis.reason, hint: diagnosis.hint, ms: now() - t0 }, 'fetch failed');
    }
  });
  clearTimeout(timer);
  reader.close();

  if (failures.length > 0) {
    const summary = summarize(job, failures);
    await report(summary, deps);
    deps.logger.error({ failed: failures.length, objects: job.objects.length, ms: now() - started }, 'fetch failed: nothing written');
    return { exitCode: 1, written: 0, skipped, failures, summary };
  }

  const published = await publishFiles(job.outputDir, sortByPath(files));
  deps.logger.info(
    { objects: job.objects.length - skipped.length, skipped: skipped.length, files: files.length, dir: published.timestampDir, ms: now() - started },
    'fetch complete',
  );
  return { exitCode: 0, written: files.length, skipped, failures, summary: '' };
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
  const diagnosis = diagnose(cause, { type: object.objectType, name: object.objectName, vaultUrl: job.vaultUrl, clientId: job.clientId }, claims);
  if (!(error instanceof DeadlineError)) return diagnosis;
  const limit = formatDuration(job.timeoutMs);
  if (cause === undefined) return { ...diagnosis, reason: `deadline of ${limit} exceeded`, hint: 'raise --timeout (AKV_INJECTOR_TIMEOUT) or check the network' };
  return { ...diagnosis, reason: `deadline of ${limit} exceeded; last error: ${diagnosis.reason}` };
}

/** The summary for stderr and the termination log: one line per failed object, identity problems once. */
export function summarize(job: FetchJob, failures: Failure[]): string {
  const lines: string[] = [];
  const identity = failures.find((f) => f.diagnosis.identity);
  lines.push(`akv-injector: ${failures.length} of ${job.objects.length} objects could not be fetched from ${job.vaultUrl}; no files were written.`);
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

async function report(summary: string, deps: FetchDeps): Promise<void> {
  (deps.writeStderr ?? ((text: string) => process.stderr.write(text)))(summary);
  await writeTerminationLog(summary, deps.terminationLogPath);
}

async function readClaims(tokenFile: string): Promise<TokenClaims | undefined> {
  try {
    return decodeTokenClaims(await readFile(tokenFile, 'utf8'));
  } catch {
    return undefined;
  }
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

function sortByPath(files: OutputFile[]): OutputFile[] {
  return [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function shortReason(error: unknown): string {
  const e = error as { statusCode?: number; code?: string; message?: string };
  return [e.statusCode, e.code].filter((x) => x !== undefined).join(' ') || (e.message ?? String(error)).split('\n')[0] || 'error';
}
