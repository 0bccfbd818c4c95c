// Key Vault URLs: validate and normalize, so a token is only ever sent to a real Key Vault host.
import { KEY_VAULT_SUFFIXES } from './clouds.js';
import { quote } from './quote.js';

const VAULT_NAME = /^[A-Za-z0-9-]{3,24}$/;

export type VaultUrlResult = { ok: true; url: string } | { ok: false; problem: string };

/**
 * Normalize a vault URL to `https://host[:port]/`. The host must be `<name>.<suffix>` with one
 * of the given Key Vault DNS suffixes (default: every cloud's).
 */
export function parseVaultUrl(raw: string, suffixes: readonly string[] = KEY_VAULT_SUFFIXES): VaultUrlResult {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return { ok: false, problem: 'is not a URL; expected https://<vault-name>.vault.azure.net/' };
  }
  if (url.protocol !== 'https:') return { ok: false, problem: 'must use https://' };
  if (url.username !== '' || url.password !== '') return { ok: false, problem: 'must not contain credentials' };
  if (url.search !== '' || url.hash !== '') return { ok: false, problem: 'must not have a query or fragment' };
  if (url.pathname !== '/' && url.pathname !== '') return { ok: false, problem: 'must not have a path; expected https://<vault-name>.vault.azure.net/' };
  const host = url.hostname.toLowerCase();
  const suffix = suffixes.find((s) => host.endsWith(`.${s}`));
  if (suffix === undefined) {
    return { ok: false, problem: `host ${quote(host)} is not a Key Vault host; it must end in ${suffixes.map((s) => `.${s}`).join(', ')}` };
  }
  const name = host.slice(0, -(suffix.length + 1));
  if (!VAULT_NAME.test(name)) {
    return { ok: false, problem: `vault name ${quote(name)} must be 3-24 letters, digits and hyphens` };
  }
  return { ok: true, url: `https://${host}${url.port === '' ? '' : `:${url.port}`}/` };
}

/** Whether `name` is a valid bare Key Vault name. */
export function isVaultName(name: string): boolean {
  return VAULT_NAME.test(name);
}
