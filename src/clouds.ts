// The Azure clouds akv-injector knows: their Entra ID authority and Key Vault DNS suffix.

export type CloudName = 'AzurePublicCloud' | 'AzureUSGovernmentCloud' | 'AzureChinaCloud';

export interface Cloud {
  name: CloudName;
  authorityHost: string;
  keyVaultSuffix: string;
}

export const CLOUDS: Record<CloudName, Cloud> = {
  AzurePublicCloud: {
    name: 'AzurePublicCloud',
    authorityHost: 'https://login.microsoftonline.com/',
    keyVaultSuffix: 'vault.azure.net',
  },
  AzureUSGovernmentCloud: {
    name: 'AzureUSGovernmentCloud',
    authorityHost: 'https://login.microsoftonline.us/',
    keyVaultSuffix: 'vault.usgovcloudapi.net',
  },
  AzureChinaCloud: {
    name: 'AzureChinaCloud',
    authorityHost: 'https://login.chinacloudapi.cn/',
    keyVaultSuffix: 'vault.azure.cn',
  },
};

export const KEY_VAULT_SUFFIXES: readonly string[] = Object.values(CLOUDS).map((c) => c.keyVaultSuffix);

// The Azure provider of the CSI driver also accepts the Go SDK's environment names.
const ALIASES: Record<string, CloudName> = {
  azurepubliccloud: 'AzurePublicCloud',
  azurecloud: 'AzurePublicCloud',
  azureusgovernmentcloud: 'AzureUSGovernmentCloud',
  azureusgovernment: 'AzureUSGovernmentCloud',
  azurechinacloud: 'AzureChinaCloud',
};

/** The cloud for a name, case-insensitively (aliases included); undefined when unknown. */
export function findCloud(name: string): Cloud | undefined {
  const key = name.trim().toLowerCase();
  return Object.hasOwn(ALIASES, key) ? CLOUDS[ALIASES[key] as CloudName] : undefined;
}

/** The `--cloud` flag of the webhook and of render: the public cloud when absent, else the named one or a problem. */
export function cloudFromFlag(name: string | undefined): { cloud?: Cloud; problem?: string } {
  if (name === undefined) return { cloud: CLOUDS.AzurePublicCloud };
  const cloud = findCloud(name);
  return cloud === undefined ? { problem: `--cloud ${JSON.stringify(name)} is not one of ${Object.keys(CLOUDS).join(', ')}` } : { cloud };
}

/** The Key Vault resource (the `resource` of its challenge) for a vault host, or undefined. */
export function keyVaultResourceForHost(hostname: string): string | undefined {
  const suffix = KEY_VAULT_SUFFIXES.find((s) => hostname.toLowerCase().endsWith(`.${s}`));
  return suffix === undefined ? undefined : `https://${suffix}`;
}
