// What the refresh keeps for its whole life: one transport, one credential (its Entra ID token cached until near
// expiry; each new one reads the projected token file again) and the SDK clients (the vault's challenge answered
// once). An idle HTTP/2 connection is unreferenced and costs no CPU; one the server closes is opened again when
// needed. Kept, not opened per refresh: the SDK renews a token near expiry in the background, after the request
// that noticed it has finished, and that renewal needs a transport still open.
import type { Agent } from 'node:https';
import { CoalescingCredential } from '../fetch/coalescing-credential.js';
import { createWorkloadCredential } from '../fetch/credential.js';
import { createHttp2Client } from '../fetch/http2-client.js';
import { requestTimeoutMs, type FetchJob } from '../fetch/job.js';
import type { TokenClaims } from '../fetch/token-file.js';
import { createVaultReader, type VaultReader } from '../fetch/vault-reader.js';

export interface RefreshSession {
  reader: VaultReader;
  claims(): TokenClaims | undefined;
  /** Close every connection (the sidecar stops); requests in flight fail. */
  close(): void;
}

export async function createRefreshSession(job: FetchJob, agent?: Agent): Promise<RefreshSession> {
  const transport = createHttp2Client({ ...(agent ? { agent } : {}), requestTimeoutMs: requestTimeoutMs(job) });
  const identity = await createWorkloadCredential(job, transport);
  const reader = createVaultReader(job.vaultUrl, new CoalescingCredential(identity), { httpClient: transport });
  return { reader, claims: () => identity.claims(), close: () => transport.close() };
}
