// The fetch role's job, read from its environment (DESIGN.md "Fetch role contract").
import { isAbsolute } from 'node:path';
import { clientIdProblem, tenantIdProblem } from '../azure-ids.js';
import { parseDuration } from '../duration.js';
import { parseObjects } from '../objects.js';
import type { ObjectSpec } from '../object-spec.js';
import { parseVaultUrl } from '../vault-url.js';

export interface FetchJob {
  clientId: string;
  tenantId: string;
  tokenFile: string;
  authorityHost: string;
  vaultUrl: string;
  objects: ObjectSpec[];
  outputDir: string;
  timeoutMs: number;
  concurrency: number;
}

export interface FetchFlags {
  timeout?: string;
  concurrency?: string;
}

export const DEFAULT_TIMEOUT_MS = 120_000;
/** The timeout's range: under a second nothing can be fetched; beyond a day is a mistake (and Node.js timers end at 24.8 days). */
export const MIN_TIMEOUT_MS = 1000;
export const MAX_TIMEOUT_MS = 24 * 3_600_000;
/** The most one request may wait for its answer before it is tried again (see requestTimeoutMs). */
export const MAX_REQUEST_TIMEOUT_MS = 20_000;
/**
 * Reads in flight at once. Over HTTP/2 they are streams of one connection and cost no handshake
 * each, so a typical pod's objects all go in one round; Key Vault's limits (thousands of reads per
 * ten seconds per vault) are far above it.
 */
export const DEFAULT_CONCURRENCY = 64;

/** Read and validate the job; every problem is reported, each naming its variable. */
export function readJob(env: Record<string, string | undefined>, flags: FetchFlags = {}): { job?: FetchJob; problems: string[] } {
  const problems: string[] = [];
  const get = (name: string): string => (env[name] ?? '').trim();
  const need = (name: string, what: string): string => {
    const value = get(name);
    if (value === '') problems.push(`${name} is not set: ${what}`);
    return value;
  };

  const clientId = need('AZURE_CLIENT_ID', 'the client ID of the managed identity or app registration');
  const clientProblem = clientId === '' ? undefined : clientIdProblem(clientId);
  if (clientProblem !== undefined) problems.push(`AZURE_CLIENT_ID "${clientId}" ${clientProblem}`);
  const tenantId = need('AZURE_TENANT_ID', 'the tenant (directory) ID');
  const tenantProblem = tenantId === '' ? undefined : tenantIdProblem(tenantId);
  if (tenantProblem !== undefined) problems.push(`AZURE_TENANT_ID "${tenantId}" ${tenantProblem}`);
  const tokenFile = need('AZURE_FEDERATED_TOKEN_FILE', 'the path of the projected service-account token');
  const authorityHost = need('AZURE_AUTHORITY_HOST', 'the Entra ID authority, e.g. https://login.microsoftonline.com/');
  if (authorityHost !== '' && !isHttpsUrl(authorityHost))
    problems.push(`AZURE_AUTHORITY_HOST "${authorityHost}" must be an https:// URL such as https://login.microsoftonline.com/`);

  const rawVault = need('AKV_INJECTOR_VAULT_URL', 'the vault URL, e.g. https://my-vault.vault.azure.net/');
  const vault = rawVault === '' ? undefined : parseVaultUrl(rawVault);
  if (vault !== undefined && !vault.ok) problems.push(`AKV_INJECTOR_VAULT_URL "${rawVault}" ${vault.problem}`);

  const outputDir = need('AKV_INJECTOR_OUTPUT_DIR', 'the directory to write the files into');
  if (outputDir !== '' && !isAbsolute(outputDir)) problems.push(`AKV_INJECTOR_OUTPUT_DIR "${outputDir}" must be an absolute path`);

  const rawObjects = need('AKV_INJECTOR_OBJECTS', 'a JSON array of objects, e.g. [{"objectName":"db-password","objectType":"secret"}]');
  let objects: ObjectSpec[] = [];
  if (rawObjects !== '') {
    let decoded: unknown;
    try {
      decoded = JSON.parse(rawObjects);
    } catch (error) {
      problems.push(`AKV_INJECTOR_OBJECTS is not valid JSON (${(error as Error).message})`);
    }
    if (decoded !== undefined) {
      const parsed = parseObjects(decoded);
      objects = parsed.objects;
      problems.push(...parsed.problems.map((p) => `AKV_INJECTOR_OBJECTS: ${p}`));
    }
  }

  const timeoutText = flags.timeout ?? get('AKV_INJECTOR_TIMEOUT');
  const timeoutMs = timeoutText === '' ? DEFAULT_TIMEOUT_MS : parseDuration(timeoutText);
  if (timeoutMs === undefined || timeoutMs < MIN_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS) {
    problems.push(`timeout "${timeoutText}" (--timeout or AKV_INJECTOR_TIMEOUT) must be a duration from 1s to 24h, such as 90s or 2m`);
  }
  const concurrencyText = flags.concurrency ?? get('AKV_INJECTOR_CONCURRENCY');
  const concurrency = concurrencyText === '' ? DEFAULT_CONCURRENCY : Number(concurrencyText);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    problems.push(`concurrency "${concurrencyText}" (--concurrency or AKV_INJECTOR_CONCURRENCY) must be a whole number from 1 to 256`);
  }

  if (problems.length > 0 || vault === undefined || !vault.ok || timeoutMs === undefined) return { problems };
  return {
    problems,
    job: { clientId, tenantId, tokenFile, authorityHost, vaultUrl: vault.url, objects, outputDir, timeoutMs, concurrency },
  };
}

/**
 * How long one request may wait for its whole answer before it fails and is tried again: a quarter of the
 * deadline, from 1 s to 20 s. A server that accepts a request and never answers then costs one attempt, and
 * the fetch still has most of its deadline for the next.
 */
export function requestTimeoutMs(job: Pick<FetchJob, 'timeoutMs'>): number {
  return Math.min(MAX_REQUEST_TIMEOUT_MS, Math.max(MIN_TIMEOUT_MS, Math.floor(job.timeoutMs / 4)));
}

function isHttpsUrl(text: string): boolean {
  try {
    return new URL(text).protocol === 'https:';
  } catch {
    return false;
  }
}
