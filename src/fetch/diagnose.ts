// Turn SDK, network and identity errors into a retry decision and a user-facing reason with a fix. Errors are
// classified before anything is printed, and nothing a server sent is printed as text: a reason carries status
// numbers, codes that match a known pattern (AADSTS numbers, Key Vault's PascalCase codes, Node.js error codes),
// and our own words. An error's message may quote a response body (the SDK's parse errors quote the whole body,
// secret value included), so no message is ever shown.
import { formatDuration } from '../duration.js';
import type { ObjectType } from '../object-spec.js';
import { TokenRequestError } from './credential.js';
import { MAX_RESPONSE_BYTES, RESPONSE_INCOMPLETE, RESPONSE_TIMEOUT, RESPONSE_TOO_LARGE } from './response-body.js';
import { parseRetryAfter, type RetryDecision } from './retry.js';
import { TokenFileError, type TokenClaims } from './token-file.js';

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

/** What was being done when an error happened, for the reason and the fix. */
export interface DiagnoseContext {
  type: ObjectType;
  name: string;
  vaultUrl: string;
  clientId: string;
  /** The Entra ID authority, e.g. https://login.microsoftonline.com/. */
  authorityHost?: string;
  /** The per-request time limit of the fetch's HTTP client. */
  requestTimeoutMs?: number;
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const PARSE_ERROR = 'PARSE_ERROR';
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
  // A body cut short, no answer in time, or an answer that is no JSON: a truncated transfer and a proxy
  // that mangles one answer look the same, and asking again within the deadline is what a user expects.
  RESPONSE_INCOMPLETE,
  RESPONSE_TIMEOUT,
  PARSE_ERROR,
]);

/** Key Vault's error codes (SecretNotFound, ForbiddenByRbac, ...): one PascalCase word. */
const SERVICE_CODE = /^[A-Z][A-Za-z]{1,63}$/;
/** Node.js and SDK error codes (ECONNRESET, ERR_HTTP2_STREAM_ERROR, CERT_HAS_EXPIRED, PARSE_ERROR, ...). */
const TRANSPORT_CODE = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/;
const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_|SIGNATURE|ISSUER|ALTNAME/;
const OAUTH_ERROR = /^[a-z_]{1,64}$/;
const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What reading each object type takes: the Azure RBAC role, or the access policy's permissions. */
const ACCESS_FOR: Record<ObjectType, { role: string; permissions: string }> = {
  secret: { role: 'Key Vault Secrets User', permissions: 'secrets: get, list' },
  key: { role: 'Key Vault Crypto User', permissions: 'keys: get, list' },
  cert: { role: 'Key Vault Certificate User', permissions: 'certificates: get, list' },
};

/** Whether a failed attempt is worth another try. */
export function classify(error: unknown): RetryDecision {
  if (error instanceof TokenFileError) return { retry: false };
  if (error instanceof TokenRequestError) return classify(error.cause);
  const e = asErrorLike(error);
  if (e.name === 'AbortError') return { retry: false };
  const transport = transportCode(e);
  if (transport === RESPONSE_TOO_LARGE) return { retry: false };
  if (transport !== undefined && TRANSIENT_CODES.has(transport)) return { retry: true };
  if (e.statusCode !== undefined) {
    if (!TRANSIENT_STATUS.has(e.statusCode)) return { retry: false };
    return { retry: true, retryAfterMs: parseRetryAfter(e.response?.headers?.get('retry-after')) };
  }
  // An AADSTS code is Entra ID's answer about the configuration: asking again will not change it.
  if (aadstsCode(e) !== undefined) return { retry: false };
  // MSAL reports failures of its network module as plain errors without a status.
  return { retry: /network|ECONNRESET|ECONNREFUSED|ETIMEDOUT|socket hang up|status code: 5\d\d/i.test(e.message ?? '') };
}

/** A short label for a log line: status, codes and names that match known patterns, never a message. */
export function errorLabel(error: unknown): string {
  if (error instanceof TokenFileError) return 'token file unusable';
  if (error instanceof TokenRequestError) return `Entra ID: ${errorLabel(error.cause)}`;
  const e = asErrorLike(error);
  const aadsts = aadstsCode(e);
  const parts = [e.statusCode, transportCode(e) ?? serviceCode(e), aadsts === undefined ? undefined : `AADSTS${aadsts}`].filter((p) => p !== undefined);
  if (parts.length > 0) return parts.join(' ');
  return e.name !== undefined && /^[A-Za-z]{1,64}$/.test(e.name) ? e.name : 'error';
}

/** Explain why reading an object failed, and how to fix it. */
export function diagnose(error: unknown, context: DiagnoseContext, claims?: TokenClaims): Diagnosis {
  // Identity failures are shown once, as "<reason>. <hint>", and their hints say "Fix:" themselves.
  if (error instanceof TokenFileError) return { reason: error.reason, hint: `Fix: ${error.hint}.`, identity: true, notFound: false };
  if (error instanceof TokenRequestError) {
    const transport = transportDiagnosis(asErrorLike(error.cause), 'Entra ID', context.authorityHost ?? 'the Entra ID authority', context);
    return { ...transport, hint: `Fix: ${transport.hint}.`, identity: true };
  }
  const e = asErrorLike(error);
  const aadsts = aadstsCode(e);
  if (aadsts !== undefined || e.name === 'AuthenticationError' || e.name === 'AuthenticationRequiredError') {
    return identityDiagnosis(aadsts, e, context.clientId, claims);
  }
  if (e.name === 'CredentialUnavailableError') return unavailableDiagnosis(e);
  const transport = transportCode(e);
  if (
    transport !== undefined &&
    (transport === RESPONSE_TOO_LARGE || TRANSIENT_CODES.has(transport) || TLS_CODE.test(transport) || transport === 'ENOTFOUND')
  ) {
    return transportDiagnosis(e, 'Key Vault', context.vaultUrl, context);
  }
  if (e.statusCode !== undefined) return statusDiagnosis(e, e.statusCode, context);
  return {
    reason: `unexpected error (${errorLabel(error)})`,
    hint: 'this is not a known failure of Key Vault, Entra ID or the network; please report it with the log lines above',
    identity: false,
    notFound: false,
  };
}

function statusDiagnosis(e: ErrorLike, status: number, object: DiagnoseContext): Diagnosis {
  const code = serviceCode(e);
  const what = `${object.type === 'cert' ? 'certificate' : object.type} "${object.name}"`;
  const fail = (reason: string, hint: string): Diagnosis => ({ reason, hint, identity: false, notFound: false });
  if (status === 404) {
    return {
      reason: `not found (404 ${code ?? 'NotFound'})`,
      hint: `vault ${object.vaultUrl} has no ${what}${/\/[0-9a-f]{32}/i.test(e.message ?? '') ? ' at that version' : ''}: check objectName and objectVersion, or that it was not deleted; set optional: true to skip it when absent`,
      identity: false,
      notFound: true,
    };
  }
  if (status === 403) {
    const inner = innerErrorCode(e);
    if (inner === 'SecretDisabled' || inner === 'KeyDisabled' || /disabled/i.test(e.message ?? '')) {
      return fail(
        `disabled (403 ${inner ?? 'Forbidden'})`,
        `the requested version of ${what} is disabled: enable it in Key Vault or pin another objectVersion`,
      );
    }
    const { role, permissions } = ACCESS_FOR[object.type];
    return fail(
      `forbidden (403 ${inner ?? code ?? 'Forbidden'})`,
      inner === 'ForbiddenByRbac'
        ? `the identity ${object.clientId} has no role that may read ${what}: assign it "${role}" on the vault (or the object), e.g. az role assignment create --role "${role}" --assignee ${object.clientId} --scope <vault resource id>; role assignments take a few minutes to apply`
        : `the vault denies the identity ${object.clientId}: with access policies, grant it "${permissions}" (az keyvault set-policy --name <vault> --spn ${object.clientId} ...); with Azure RBAC, assign "${role}"; also check the vault's firewall allows the cluster`,
    );
  }
  if (status === 401) {
    return {
      reason: `unauthorized (401 ${code ?? 'Unauthorized'})`,
      hint: 'Key Vault rejected the Entra ID token: the vault must be in the same tenant as the identity (check the tenant ID) and the cloud must match the vault',
      identity: true,
      notFound: false,
    };
  }
  if (status === 429)
    return fail('throttled (429)', 'Key Vault throttled the requests until the deadline; reduce how many pods start at once, or raise --timeout');
  if (status >= 500)
    return fail(`Key Vault error (${status})`, `Key Vault kept failing until the deadline; retry later or check Azure status${requestIdNote(e)}`);
  if (status === 400) {
    return fail(
      `rejected (400${code === undefined ? '' : ` ${code}`})`,
      `Key Vault refused the request as invalid: objectName must be 1–127 letters, digits and dashes, objectVersion 32 hexadecimal digits or empty${requestIdNote(e)}`,
    );
  }
  return fail(
    `rejected (${status}${code === undefined ? '' : ` ${code}`})`,
    `Key Vault refused to serve ${what}; the vault's diagnostic logs have the details${requestIdNote(e)}`,
  );
}

/** The network between the pod and `service` failed, or `service` answered with something that is no answer. */
function transportDiagnosis(e: ErrorLike, service: 'Key Vault' | 'Entra ID', url: string, context: DiagnoseContext): Diagnosis {
  const code = transportCode(e) ?? 'unknown';
  const host = hostOf(url);
  const fail = (reason: string, hint: string): Diagnosis => ({ reason, hint, identity: false, notFound: false });
  const middlebox = `something between the pod and ${host} (a proxy, a firewall inspecting TLS) answers in its place or alters the answers: check the cluster's egress path`;
  if (code === RESPONSE_TOO_LARGE) {
    return fail(`${service}'s answer was larger than ${formatBytes(MAX_RESPONSE_BYTES)} (${code})`, `a ${service} answer is a few KB; ${middlebox}`);
  }
  if (code === PARSE_ERROR) return fail(`${service}'s answer was not valid JSON (${code})`, `the answer was cut short or rewritten on its way; ${middlebox}`);
  if (code === RESPONSE_INCOMPLETE) {
    return fail(
      `the connection to ${service} broke in the middle of an answer (${code})`,
      `answers from ${host} kept arriving cut short until the deadline: check the network's stability, and proxies or load balancers that close connections`,
    );
  }
  if (code === RESPONSE_TIMEOUT) {
    const limit = context.requestTimeoutMs === undefined ? '' : ` within ${formatDuration(context.requestTimeoutMs)}`;
    return fail(
      `${service} did not answer${limit} (${code})`,
      `${host} accepted the requests but did not answer them: check egress (network policies, firewall, proxy); each request waits a quarter of --timeout (at most 20s) before it is tried again`,
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return fail(
      `cannot resolve the ${service} host (${code})`,
      service === 'Key Vault'
        ? `check the vault name in ${url}; for a private endpoint, the cluster's DNS must resolve privatelink.vaultcore.azure.net`
        : `the cluster's DNS must resolve ${host}: check the pod's DNS policy and egress`,
    );
  }
  if (TLS_CODE.test(code)) {
    return fail(
      `${service}'s TLS certificate is not trusted (${code})`,
      `the certificate presented for ${host} does not chain to a public CA: a proxy inspecting TLS must be bypassed for it (or its CA added with NODE_EXTRA_CA_CERTS)`,
    );
  }
  return fail(`network error (${code})`, `${service} at ${host} could not be reached until the deadline: check egress (network policies, firewall, proxy)`);
}

function identityDiagnosis(code: string | undefined, e: ErrorLike, clientId: string, claims?: TokenClaims): Diagnosis {
  const presented = describeClaims(claims);
  const federated =
    claims === undefined
      ? "add a federated identity credential for the pod's ServiceAccount"
      : `add a federated identity credential with issuer ${claims.iss ?? '<cluster OIDC issuer>'}, ` +
        `subject ${claims.sub ?? 'system:serviceaccount:<namespace>:<serviceaccount>'}, audience ${formatAud(claims.aud)} ` +
        `(az identity federated-credential create --identity-name <identity> --resource-group <group> --name <name> ` +
        `--issuer ${claims.iss ?? '<issuer>'} --subject ${claims.sub ?? '<subject>'} --audiences api://AzureADTokenExchange)`;
  const explain: Record<string, string> = {
    '70021': `no federated identity credential of application ${clientId} matches the token. Fix: ${federated}.`,
    '700211': `no federated identity credential of application ${clientId} has the token's issuer. Fix: ${federated}; the issuer must be the cluster's OIDC issuer URL exactly (az aks show --query oidcIssuerProfile.issuerUrl).`,
    '700212': `no federated identity credential of application ${clientId} has the token's audience. Fix: use the audience api://AzureADTokenExchange in the federated credential.`,
    '700213': `no federated identity credential of application ${clientId} has the token's subject. Fix: ${federated}.`,
    '700016': `application ${clientId} was not found in the tenant. Fix: set akv-injector.io/client-id (or the ServiceAccount annotation azure.workload.identity/client-id) to the client ID of the managed identity or app registration, and the tenant ID to its tenant.`,
    '90002':
      "the tenant was not found. Fix: set akv-injector.io/tenant-id (or azure.workload.identity/tenant-id, or the webhook's --tenant-id) to the directory ID of the vault's tenant, and check the cloud.",
    '700024': "the service-account token has expired or is not yet valid. Fix: check the node's clock; the projected token is renewed by the kubelet.",
    '7000215': `invalid client secret or assertion for ${clientId}. Fix: the federated token must come from the cluster's OIDC issuer.`,
    '50053': 'the account is locked or too many sign-in attempts were made; retry later.',
    '700027':
      "the client assertion signature is invalid. Fix: check that the cluster's OIDC issuer publishes its current signing keys (the issuer URL and JWKS must be reachable by Entra ID).",
    '700025': `application ${clientId} is not a confidential client or managed identity. Fix: use a user-assigned managed identity or an app registration.`,
  };
  const oauthError = e.errorResponse?.error !== undefined && OAUTH_ERROR.test(e.errorResponse.error) ? ` (${e.errorResponse.error})` : '';
  const text =
    (code !== undefined ? explain[code] : undefined) ??
    `Entra ID refused the token exchange${oauthError}. Check the client ID, tenant ID and the federated identity credential.`;
  return {
    reason: code !== undefined ? `Entra ID token exchange failed (AADSTS${code})` : 'Entra ID token exchange failed',
    hint: `${text}${presented}`,
    identity: true,
    notFound: false,
  };
}

function unavailableDiagnosis(e: ErrorLike): Diagnosis {
  // MSAL's words for a tenant its discovery cannot find; nothing of the message is shown.
  if (/endpoints_resolution_error/.test(e.message ?? '')) {
    return {
      reason: 'Entra ID does not know the tenant (endpoints_resolution_error)',
      hint: "set akv-injector.io/tenant-id (or azure.workload.identity/tenant-id, or the webhook's --tenant-id) to the directory ID of the vault's tenant, and check the cloud",
      identity: true,
      notFound: false,
    };
  }
  return {
    reason: 'workload identity unavailable (CredentialUnavailableError)',
    hint: 'check that the projected token file exists (AZURE_FEDERATED_TOKEN_FILE) and AZURE_CLIENT_ID / AZURE_TENANT_ID are set',
    identity: true,
    notFound: false,
  };
}

/** The sentence comparing the token with the federated credential: ` The token presented: iss=… sub=… aud=….` */
function describeClaims(claims: TokenClaims | undefined): string {
  return claims === undefined ? '' : ` The token presented: iss=${claims.iss ?? '?'} sub=${claims.sub ?? '?'} aud=${formatAud(claims.aud)}.`;
}

function asErrorLike(error: unknown): ErrorLike {
  return typeof error === 'object' && error !== null ? (error as ErrorLike) : {};
}

function aadstsCode(e: ErrorLike): string | undefined {
  const text = `${e.errorResponse?.errorDescription ?? ''} ${e.message ?? ''}`;
  return /AADSTS(\d{1,9})\b/.exec(text)?.[1];
}

/** The code of a failure below HTTP (or of an answer that is no answer), when it has one of the known form. */
function transportCode(e: ErrorLike): string | undefined {
  const code = e.code;
  if (code === undefined || !TRANSPORT_CODE.test(code)) return undefined;
  // With a status, a RestError's code is the service's (SecretNotFound), unless it is a parse error of the answer.
  if (e.statusCode !== undefined && code !== PARSE_ERROR) return undefined;
  return code;
}

function serviceCode(e: ErrorLike): string | undefined {
  const candidates = [e.statusCode !== undefined ? e.code : undefined, e.details?.error?.code, parseBody(e)?.error?.code];
  return candidates.find((c): c is string => c !== undefined && SERVICE_CODE.test(c));
}

function innerErrorCode(e: ErrorLike): string | undefined {
  const details = e.details?.error;
  const candidates = [details?.innerError?.code, details?.innererror?.code, parseBody(e)?.error?.innererror?.code];
  return candidates.find((c): c is string => c !== undefined && SERVICE_CODE.test(c));
}

function requestIdNote(e: ErrorLike): string {
  const id = e.response?.headers?.get('x-ms-request-id');
  return id !== undefined && REQUEST_ID.test(id) ? ` (Key Vault request ID ${id})` : '';
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

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function formatBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

function formatAud(aud: string | string[] | undefined): string {
  if (aud === undefined) return '?';
  return Array.isArray(aud) ? aud.join(',') : aud;
}
