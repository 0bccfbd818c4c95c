// Turn SDK and network errors into a retry decision and a user-facing reason with a fix.
import type { ObjectType } from '../object-spec.js';
import { parseRetryAfter, type RetryDecision } from './retry.js';

/** The parts of @azure/core-rest-pipeline's RestError and @azure/identity's errors we read. */
interface ErrorLike {
  name?: string;
  message?: string;
  code?: string;
  statusCode?: number;
  response?: { headers?: { get(name: string): string | undefined }; bodyAsText?: string | null };
  /** The Key Vault clients' deserialized error body. */
  details?: { error?: { code?: string; innerError?: { code?: string }; innererror?: { code?: string } } };
  errorResponse?: { error?: string; errorDescription?: string };
}

/** Claims of the projected service-account token, safe to print (never the token itself). */
export interface TokenClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
}

export interface Diagnosis {
  /** Short reason, e.g. `forbidden (403 ForbiddenByRbac)`. */
  reason: string;
  /** What to do about it. */
  hint: string;
  /** True for failures of the identity itself: they affect every object the same way. */
  identity: boolean;
  /** True when a required object does not exist (404). */
  notFound: boolean;
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'REQUEST_SEND_ERROR',
  // HTTP/2 (http2-client.ts): the connection went away, or the server reset or refused the stream.
  'ERR_HTTP2_STREAM_CANCEL',
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_GOAWAY_SESSION',
  'ERR_HTTP2_INVALID_SESSION',
]);

const ROLE_FOR: Record<ObjectType, string> = {
  secret: 'Key Vault Secrets User',
  key: 'Key Vault Crypto User',
  cert: 'Key Vault Certificate User',
};
const PERMISSION_FOR: Record<ObjectType, string> = {
  secret: 'secrets: get, list',
  key: 'keys: get, list',
  cert: 'certificates: get, list',
};

/** Whether a failed attempt is worth another try. */
export function classify(error: unknown): RetryDecision {
  const e = asErrorLike(error);
  if (e.name === 'AbortError') return { retry: false };
  if (e.statusCode !== undefined) {
    if (!TRANSIENT_STATUS.has(e.statusCode)) return { retry: false };
    return { retry: true, retryAfterMs: parseRetryAfter(e.response?.headers?.get('retry-after')) };
  }
  if (e.code !== undefined && TRANSIENT_CODES.has(e.code)) return { retry: true };
  const aadsts = aadstsCode(e);
  // An AADSTS code is Entra ID's answer about the configuration: asking again will not change it.
  if (aadsts !== undefined) return { retry: false };
  const message = e.message ?? '';
  // MSAL reports network failures to the authority as plain errors without a status.
  return { retry: /network|ECONNRESET|ECONNREFUSED|ETIMEDOUT|socket hang up|status code: 5\d\d|Status code: 5\d\d/i.test(message) };
}

/** Explain why reading `type` `name` from `vaultUrl` failed, and how to fix it. */
export function diagnose(error: unknown, object: { type: ObjectType; name: string; vaultUrl: string; clientId: string }, claims?: TokenClaims): Diagnosis {
  const e = asErrorLike(error);
  const aadsts = aadstsCode(e);
  if (aadsts !== undefined || e.name === 'AuthenticationError' || e.name === 'AuthenticationRequiredError') {
    return identityDiagnosis(aadsts, e, object.clientId, claims);
  }
  if (e.name === 'CredentialUnavailableError') {
    return {
      reason: `workload identity unavailable: ${firstLine(e.message)}`,
      hint: 'check that the projected token file exists (AZURE_FEDERATED_TOKEN_FILE) and AZURE_CLIENT_ID / AZURE_TENANT_ID are set',
      identity: true,
      notFound: false,
    };
  }
  const status = e.statusCode;
  const serviceCode = keyVaultErrorCode(e);
  const what = `${object.type === 'cert' ? 'certificate' : object.type} "${object.name}"`;
  if (status === 404) {
    return {
      reason: `not found (404 ${serviceCode ?? 'NotFound'})`,
      hint: `vault ${object.vaultUrl} has no ${what}${/\/[0-9a-f]{32}/i.test(e.message ?? '') ? ' at that version' : ''}: check objectName and objectVersion, or that it was not deleted; set optional: true to skip it when absent`,
      identity: false,
      notFound: true,
    };
  }
  if (status === 403) {
    const inner = innerErrorCode(e);
    if (inner === 'SecretDisabled' || /disabled/i.test(e.message ?? '')) {
      return {
        reason: `disabled (403 ${inner ?? 'Forbidden'})`,
        hint: `the requested version of ${what} is disabled: enable it in Key Vault or pin another objectVersion`,
        identity: false,
        notFound: false,
      };
    }
    const rbac = inner === 'ForbiddenByRbac';
    return {
      reason: `forbidden (403 ${inner ?? serviceCode ?? 'Forbidden'})`,
      hint: rbac
        ? `the identity ${object.clientId} has no role that may read ${what}: assign it "${ROLE_FOR[object.type]}" on the vault (or the object), e.g. az role assignment create --role "${ROLE_FOR[object.type]}" --assignee ${object.clientId} --scope <vault resource id>; role assignments take a few minutes to apply`
        : `the vault denies the identity ${object.clientId}: with access policies, grant it "${PERMISSION_FOR[object.type]}" (az keyvault set-policy --name <vault> --spn ${object.clientId} ...); with Azure RBAC, assign "${ROLE_FOR[object.type]}"; also check the vault's firewall allows the cluster`,
      identity: false,
      notFound: false,
    };
  }
  if (status === 401) {
    return {
      reason: `unauthorized (401 ${serviceCode ?? 'Unauthorized'})`,
      hint: 'Key Vault rejected the Entra ID token: the vault must be in the same tenant as the identity (check the tenant ID) and the cloud must match the vault',
      identity: true,
      notFound: false,
    };
  }
  if (status === 429) {
    return { reason: 'throttled (429)', hint: 'Key Vault throttled the requests until the deadline; reduce how many pods start at once, or raise --timeout', identity: false, notFound: false };
  }
  if (status !== undefined && status >= 500) {
    return { reason: `Key Vault error (${status})`, hint: 'Key Vault kept failing until the deadline; retry later or check Azure status', identity: false, notFound: false };
  }
  if (status !== undefined) {
    return { reason: `rejected (${status} ${serviceCode ?? ''})`.replace(/ \)$/, ')'), hint: firstLine(e.message), identity: false, notFound: false };
  }
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') {
    return {
      reason: `cannot resolve the vault host (${e.code})`,
      hint: `check the vault name in ${object.vaultUrl}; for a private endpoint, the cluster's DNS must resolve privatelink.vaultcore.azure.net`,
      identity: false,
      notFound: false,
    };
  }
  if (e.code !== undefined && TRANSIENT_CODES.has(e.code)) {
    return { reason: `network error (${e.code})`, hint: `the vault ${object.vaultUrl} could not be reached until the deadline: check egress (network policies, firewall, proxy)`, identity: false, notFound: false };
  }
  return { reason: firstLine(e.message ?? String(error)), hint: 'unexpected error; see the log above', identity: false, notFound: false };
}

/** Decode the payload of a JWT without verifying it; undefined if it is not one. */
export function decodeTokenClaims(token: string): TokenClaims | undefined {
  const payload = token.trim().split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    return {
      ...(typeof claims.iss === 'string' ? { iss: claims.iss } : {}),
      ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
      ...(typeof claims.aud === 'string' || Array.isArray(claims.aud) ? { aud: claims.aud as string | string[] } : {}),
    };
  } catch {
    return undefined;
  }
}

/** The sentence comparing the token with the federated credential: ` The token presented: iss=… sub=… aud=….` */
function describeClaims(claims: TokenClaims | undefined): string {
  return claims === undefined ? '' : ` The token presented: iss=${claims.iss ?? '?'} sub=${claims.sub ?? '?'} aud=${formatAud(claims.aud)}.`;
}

function identityDiagnosis(code: string | undefined, e: ErrorLike, clientId: string, claims?: TokenClaims): Diagnosis {
  const presented = describeClaims(claims);
  const federated = claims === undefined
    ? 'add a federated identity credential for the pod\'s ServiceAccount'
    : `add a federated identity credential with issuer ${claims.iss ?? '<cluster OIDC issuer>'}, subject ${claims.sub ?? 'system:serviceaccount:<namespace>:<serviceaccount>'}, audience ${formatAud(claims.aud)} (az identity federated-credential create --identity-name <identity> --resource-group <group> --name <name> --issuer ${claims.iss ?? '<issuer>'} --subject ${claims.sub ?? '<subject>'} --audiences api://AzureADTokenExchange)`;
  const explain: Record<string, string> = {
    '70021': `no federated identity credential of application ${clientId} matches the token. Fix: ${federated}.`,
    '700211': `no federated identity credential of application ${clientId} has the token's issuer. Fix: ${federated}; the issuer must be the cluster's OIDC issuer URL exactly (az aks show --query oidcIssuerProfile.issuerUrl).`,
    '700212': `no federated identity credential of application ${clientId} has the token's audience. Fix: use the audience api://AzureADTokenExchange in the federated credential.`,
    '700213': `no federated identity credential of application ${clientId} has the token's subject. Fix: ${federated}.`,
    '700016': `application ${clientId} was not found in the tenant. Fix: set akv-injector.io/client-id (or the ServiceAccount annotation azure.workload.identity/client-id) to the client ID of the managed identity or app registration, and the tenant ID to its tenant.`,
    '90002': 'the tenant was not found. Fix: set akv-injector.io/tenant-id (or azure.workload.identity/tenant-id, or the webhook\'s --tenant-id) to the directory ID of the vault\'s tenant, and check the cloud.',
    '700024': 'the service-account token has expired or is not yet valid. Fix: check the node\'s clock; the projected token is renewed by the kubelet.',
    '7000215': `invalid client secret or assertion for ${clientId}. Fix: the federated token must come from the cluster's OIDC issuer.`,
    '50053': 'the account is locked or too many sign-in attempts were made; retry later.',
    '700027': 'the client assertion signature is invalid. Fix: check that the cluster\'s OIDC issuer publishes its current signing keys (the issuer URL and JWKS must be reachable by Entra ID).',
    '700025': `application ${clientId} is not a confidential client or managed identity. Fix: use a user-assigned managed identity or an app registration.`,
  };
  const text = (code !== undefined ? explain[code] : undefined) ?? `Entra ID refused the token exchange: ${firstLine(e.errorResponse?.errorDescription ?? e.message ?? '')}. Check the client ID, tenant ID and the federated identity credential.`;
  return {
    reason: code !== undefined ? `Entra ID token exchange failed (AADSTS${code})` : 'Entra ID token exchange failed',
    hint: `${text}${presented}`,
    identity: true,
    notFound: false,
  };
}

function asErrorLike(error: unknown): ErrorLike {
  return typeof error === 'object' && error !== null ? (error as ErrorLike) : { message: String(error) };
}

function aadstsCode(e: ErrorLike): string | undefined {
  const text = `${e.errorResponse?.errorDescription ?? ''} ${e.message ?? ''}`;
  return /AADSTS(\d+)/.exec(text)?.[1];
}

function keyVaultErrorCode(e: ErrorLike): string | undefined {
  return e.code !== undefined && e.code !== '' ? e.code : (e.details?.error?.code ?? parseBody(e)?.error?.code);
}

function innerErrorCode(e: ErrorLike): string | undefined {
  const details = e.details?.error;
  return details?.innerError?.code ?? details?.innererror?.code ?? parseBody(e)?.error?.innererror?.code;
}

function parseBody(e: ErrorLike): { error?: { code?: string; innererror?: { code?: string } } } | undefined {
  const body = e.response?.bodyAsText;
  if (typeof body !== 'string' || body === '') return undefined;
  try {
    return JSON.parse(body) as { error?: { code?: string; innererror?: { code?: string } } };
  } catch {
    return undefined;
  }
}

function formatAud(aud: string | string[] | undefined): string {
  if (aud === undefined) return '?';
  return Array.isArray(aud) ? aud.join(',') : aud;
}

function firstLine(text: string | undefined): string {
  return (text ?? '').split(/\r?\n/).find((l) => l.trim() !== '')?.trim() ?? '';
}
