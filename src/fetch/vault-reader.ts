// Read Key Vault objects through the Azure SDK clients: one client per object type, created on first use.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { HttpClient } from '@azure/core-rest-pipeline';
import type { ObjectType } from '../object-spec.js';
import type { KeyVaultJsonWebKey } from '../public-key.js';
import { ContentError } from './content.js';

export interface VersionInfo {
  version: string;
  enabled: boolean;
  createdOn: Date | undefined;
}

export interface SecretContent {
  version: string;
  value: string;
  contentType: string | undefined;
  /** The secret backs a Key Vault certificate (its bundle has a `kid`). */
  certificateBacked: boolean;
}

/** The public parts of a Key Vault JSON web key, as the SDK returns them. */
export type PublicJwk = KeyVaultJsonWebKey;

export interface VaultReader {
  secret(name: string, version: string, signal: AbortSignal): Promise<SecretContent>;
  key(name: string, version: string, signal: AbortSignal): Promise<{ version: string; jwk: PublicJwk }>;
  certificate(name: string, version: string, signal: AbortSignal): Promise<{ version: string; cer: Uint8Array }>;
  versions(type: ObjectType, name: string, signal: AbortSignal): Promise<VersionInfo[]>;
}

export interface VaultReaderOptions {
  /** The transport of all three clients (the fetch's http2-client.ts): their requests share one HTTP/2 connection. */
  httpClient: HttpClient;
}

type SecretClient = import('@azure/keyvault-secrets').SecretClient;
type KeyClient = import('@azure/keyvault-keys').KeyClient;
type CertificateClient = import('@azure/keyvault-certificates').CertificateClient;

/**
 * A reader over the SDK clients. Retries are ours (see retry.ts), so the clients make one attempt.
 * Each client's first request is sent alone: it receives the vault's 401 challenge, and once
 * the client holds a token the others follow already authenticated instead of each being challenged.
 * All three clients share one HTTP client, so their requests share one HTTP/2 connection.
 */
export function createVaultReader(vaultUrl: string, credential: TokenCredential, options: VaultReaderOptions): VaultReader {
  const clientOptions = { retryOptions: { maxRetries: 0 }, httpClient: options.httpClient };
  const secrets = lazyClient(credential, async (cred) => {
    const { SecretClient } = await import('@azure/keyvault-secrets');
    return new SecretClient(vaultUrl, cred, clientOptions);
  });
  const keys = lazyClient(credential, async (cred) => {
    const { KeyClient } = await import('@azure/keyvault-keys');
    return new KeyClient(vaultUrl, cred, clientOptions);
  });
  const certificates = lazyClient(credential, async (cred) => {
    const { CertificateClient } = await import('@azure/keyvault-certificates');
    return new CertificateClient(vaultUrl, cred, clientOptions);
  });

  return {
    secret: (name, version, signal) =>
      secrets.use(async (client: SecretClient) => {
        const secret = await client.getSecret(name, { version, abortSignal: signal });
        const { properties } = secret;
        // Key Vault always sends a value: without one, writing an empty file would hide what went wrong.
        if (secret.value === undefined) {
          throw new ContentError(
            "Key Vault answered without the secret's value",
            'the answer was altered on its way: check what lies between the pod and the vault (a proxy, a TLS-inspecting firewall)',
          );
        }
        return {
          version: properties.version ?? version,
          value: secret.value,
          contentType: properties.contentType,
          certificateBacked: properties.certificateKeyId !== undefined,
        };
      }),
    key: (name, version, signal) =>
      keys.use(async (client: KeyClient) => {
        const key = await client.getKey(name, { version, abortSignal: signal });
        return { version: key.properties.version ?? version, jwk: key.key ?? {} };
      }),
    certificate: (name, version, signal) =>
      certificates.use(async (client: CertificateClient) => {
        const cert =
          version === ''
            ? await client.getCertificate(name, { abortSignal: signal })
            : await client.getCertificateVersion(name, version, { abortSignal: signal });
        return { version: cert.properties.version ?? version, cer: cert.cer ?? new Uint8Array() };
      }),
    versions: (type, name, signal) => {
      switch (type) {
        case 'secret':
          return secrets.use((client: SecretClient) => collect(client.listPropertiesOfSecretVersions(name, { abortSignal: signal })));
        case 'key':
          return keys.use((client: KeyClient) => collect(client.listPropertiesOfKeyVersions(name, { abortSignal: signal })));
        case 'cert':
          return certificates.use((client: CertificateClient) => collect(client.listPropertiesOfCertificateVersions(name, { abortSignal: signal })));
      }
    },
  };
}

interface LazyClient<C> {
  use<T>(call: (client: C) => Promise<T>): Promise<T>;
}

// Creates the client on first use and holds later calls until the client has its first token.
function lazyClient<C>(credential: TokenCredential, create: (credential: TokenCredential) => Promise<C>): LazyClient<C> {
  let client: Promise<C> | undefined;
  let authenticated: Promise<void> | undefined;
  let markAuthenticated: () => void = () => {};
  const watching: TokenCredential = {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      const token = await credential.getToken(scopes, options);
      // Let the SDK's challenge policy record the token before the queued calls start.
      setImmediate(markAuthenticated);
      return token;
    },
  };
  return {
    async use<T>(call: (c: C) => Promise<T>): Promise<T> {
      if (client === undefined) {
        authenticated = new Promise<void>((resolve) => (markAuthenticated = resolve));
        client = create(watching);
        const first = client.then(call);
        // Whatever happens to the first call, stop holding the others.
        first.then(markAuthenticated, markAuthenticated);
        return first;
      }
      await authenticated;
      return call(await client);
    },
  };
}

async function collect(pages: AsyncIterable<{ version?: string; enabled?: boolean; createdOn?: Date }>): Promise<VersionInfo[]> {
  const versions: VersionInfo[] = [];
  for await (const item of pages) {
    if (item.version === undefined) continue;
    versions.push({ version: item.version, enabled: item.enabled !== false, createdOn: item.createdOn });
  }
  return versions;
}
