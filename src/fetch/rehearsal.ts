// A fetch rehearsed once, when the image is built, so that the fetch's code cache (code-cache.ts) holds the code a
// fetch runs: the job read from an init container's environment, the token request through @azure/identity and MSAL,
// the vault's challenge and the reads through the SDK clients and the fetch's HTTP/2 client, the files, the atomic
// publish and the log lines. Entra ID and Key Vault are played by the warm-up's server on the loopback interface
// (rehearsal-stage.ts), which the agent given here reaches in their names. What the rehearsal does not run (keys,
// certificates, failures) a fetch compiles when it first needs it, as every fetch once did.
//
// It fails, and with it the image build, unless the fetch writes every secret it was served.
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFetchLogger } from './fetch-log.js';
import { readJob } from './job.js';
import { runFetch } from './run.js';

/** Where the rehearsal's Entra ID and Key Vault answer, and what they serve. */
export interface RehearsalStage {
  /** An Entra ID authority, e.g. https://login.microsoftonline.com:PORT/ */
  authorityHost: string;
  tenantId: string;
  /** A Key Vault URL, e.g. https://rehearsal.vault.azure.net:PORT/ */
  vaultUrl: string;
  /** The secrets the vault serves, by name. */
  secrets: Readonly<Record<string, string>>;
  /** Reaches both in their names, trusting the stage's CA. */
  agent: Agent;
}

/** Fetch every secret of `stage` into a temporary folder as the init container would, check the files, remove it. */
export async function rehearse(stage: RehearsalStage): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'akv-injector-rehearsal-'));
  try {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, serviceAccountToken(), { mode: 0o600 });
    // The init container's in-memory volume.
    const outputDir = join(dir, 'out');
    await mkdir(outputDir);
    const names = Object.keys(stage.secrets);
    const { job, problems } = readJob({
      AZURE_CLIENT_ID: randomUUID(),
      AZURE_TENANT_ID: stage.tenantId,
      AZURE_FEDERATED_TOKEN_FILE: tokenFile,
      AZURE_AUTHORITY_HOST: stage.authorityHost,
      AKV_INJECTOR_VAULT_URL: stage.vaultUrl,
      AKV_INJECTOR_OBJECTS: JSON.stringify(names.map((objectName) => ({ objectName, objectType: 'secret' }))),
      AKV_INJECTOR_OUTPUT_DIR: outputDir,
      AKV_INJECTOR_TIMEOUT: '30s',
    });
    if (job === undefined) throw new Error(`the rehearsal's job is invalid: ${problems.join('; ')}`);
    const outcome = await runFetch(job, {
      logger: createFetchLogger('fetch', () => undefined, 'info'),
      agent: stage.agent,
      writeStderr: () => undefined,
      terminationLogPath: join(dir, 'termination-log'),
    });
    if (outcome.exitCode !== 0) throw new Error(`the rehearsed fetch failed:\n${outcome.summary}`);
    for (const name of names) {
      if ((await readFile(join(outputDir, name), 'utf8')) !== stage.secrets[name]) throw new Error(`the rehearsed fetch wrote ${name} wrong`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A projected service-account token's form (header, claims, signature); the stage checks no signature. */
function serviceAccountToken(): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const claims = { iss: 'https://oidc.rehearsal.invalid', sub: 'system:serviceaccount:rehearsal:app', aud: ['api://AzureADTokenExchange'] };
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ ...claims, exp: Math.floor(Date.now() / 1000) + 3600 })}.${part({})}`;
}
