// Failure explanations: every reason a user can meet says what is wrong and how to fix it.
import { RestError } from '@azure/core-rest-pipeline';
import { AuthenticationError, CredentialUnavailableError } from '@azure/identity';
import t from 'tap';
import { TokenRequestError } from '../src/fetch/credential.js';
import { classify, diagnose, errorLabel } from '../src/fetch/diagnose.js';
import { decodeTokenClaims, TokenFileError } from '../src/fetch/token-file.js';
import { summarize } from '../src/fetch/run.js';
import type { FetchJob } from '../src/fetch/job.js';
import type { ObjectSpec } from '../src/object-spec.js';
import { keyVaultError, networkError } from './fixtures/rest-error.js';

const CLIENT = '11111111-2222-3333-4444-555555555555';
const target = {
  type: 'secret' as const,
  name: 'db-password',
  vaultUrl: 'https://kv1.vault.azure.net/',
  clientId: CLIENT,
  authorityHost: 'https://login.microsoftonline.com/',
  requestTimeoutMs: 20_000,
};
/** Stands for a secret value or any text a server sent: it must never reach a reason or a hint. */
const QUOTED = 'QUOTED-by-the-server-7b1e';

t.test('Key Vault failures', async (t) => {
  const cases: Array<{ name: string; error: unknown; type?: 'secret' | 'key' | 'cert'; reason: RegExp; hint: RegExp; notFound?: boolean }> = [
    {
      name: 'not found',
      error: keyVaultError(404, 'SecretNotFound', 'A secret with (name/id) db-password was not found in this key vault.'),
      reason: /^not found \(404 SecretNotFound\)$/,
      hint: /vault https:\/\/kv1.vault.azure.net\/ has no secret "db-password".*optional: true/,
      notFound: true,
    },
    {
      name: 'version not found',
      error: keyVaultError(404, 'SecretNotFound', 'A secret with (name/id) db-password/0123456789abcdef0123456789abcdef was not found'),
      reason: /404/,
      hint: /at that version/,
      notFound: true,
    },
    {
      name: 'RBAC',
      error: keyVaultError(403, 'Forbidden', 'Caller is not authorized', 'ForbiddenByRbac'),
      reason: /forbidden \(403 ForbiddenByRbac\)/,
      hint: /assign it "Key Vault Secrets User".*--assignee 11111111/,
    },
    {
      name: 'RBAC for a certificate',
      type: 'cert',
      error: keyVaultError(403, 'Forbidden', 'Caller is not authorized', 'ForbiddenByRbac'),
      reason: /403/,
      hint: /"Key Vault Certificate User"/,
    },
    {
      name: 'RBAC for a key',
      type: 'key',
      error: keyVaultError(403, 'Forbidden', 'Caller is not authorized', 'ForbiddenByRbac'),
      reason: /403/,
      hint: /"Key Vault Crypto User"/,
    },
    {
      name: 'access policy',
      error: keyVaultError(403, 'Forbidden', 'The user, group or application does not have secrets get permission', 'AccessDenied'),
      reason: /forbidden \(403 AccessDenied\)/,
      hint: /access policies, grant it "secrets: get, list"/,
    },
    {
      name: 'disabled',
      error: keyVaultError(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled'),
      reason: /disabled \(403 SecretDisabled\)/,
      hint: /enable it in Key Vault or pin another objectVersion/,
    },
    {
      name: 'tenant mismatch',
      error: keyVaultError(401, 'Unauthorized', 'AKV10032: Invalid issuer.'),
      reason: /unauthorized \(401 Unauthorized\)/,
      hint: /same tenant/,
    },
    { name: 'throttled until the end', error: keyVaultError(429, 'Throttled', 'throttled'), reason: /throttled/, hint: /--timeout/ },
    { name: 'server error', error: keyVaultError(503, 'ServiceUnavailable', 'down'), reason: /Key Vault error \(503\)/, hint: /retry later/ },
    {
      name: 'bad request',
      error: keyVaultError(400, 'BadParameter', `The value ${QUOTED} is bad.`),
      reason: /^rejected \(400 BadParameter\)$/,
      hint: /objectName must be 1–127 letters/,
    },
    { name: 'a code that is no Key Vault code', error: keyVaultError(409, `${QUOTED} x`, QUOTED), reason: /^rejected \(409\)$/, hint: /diagnostic logs/ },
    {
      name: 'DNS',
      error: networkError('ENOTFOUND', 'getaddrinfo ENOTFOUND kv1.vault.azure.net'),
      reason: /cannot resolve the Key Vault host/,
      hint: /check the vault name.*privatelink/,
    },
    { name: 'network', error: networkError('ECONNRESET', 'read ECONNRESET'), reason: /network error \(ECONNRESET\)/, hint: /egress/ },
    {
      name: 'TLS interception',
      error: new RestError('self-signed certificate in certificate chain', { code: 'SELF_SIGNED_CERT_IN_CHAIN' }),
      reason: /TLS certificate is not trusted \(SELF_SIGNED_CERT_IN_CHAIN\)/,
      hint: /proxy inspecting TLS/,
    },
    {
      name: 'malformed answer (the SDK quotes the body)',
      error: new RestError(`Error "SyntaxError" occurred while parsing the response body - {"value":"${QUOTED}`, { code: 'PARSE_ERROR', statusCode: 200 }),
      reason: /^Key Vault's answer was not valid JSON \(PARSE_ERROR\)$/,
      hint: /cut short or rewritten.*kv1\.vault\.azure\.net/,
    },
    { name: 'cut answer', error: new RestError('x', { code: 'ERR_RESPONSE_INCOMPLETE' }), reason: /broke in the middle of an answer/, hint: /stability/ },
    {
      name: 'no answer in time',
      error: new RestError('x', { code: 'ERR_RESPONSE_TIMEOUT' }),
      reason: /^Key Vault did not answer within 20s \(ERR_RESPONSE_TIMEOUT\)$/,
      hint: /accepted the requests but did not answer/,
    },
    {
      name: 'huge answer',
      error: new RestError('x', { code: 'ERR_RESPONSE_TOO_LARGE' }),
      reason: /^Key Vault's answer was larger than 256 KiB/,
      hint: /proxy/,
    },
    { name: 'other', error: new Error(`something odd ${QUOTED}\nsecond line`), reason: /^unexpected error \(Error\)$/, hint: /not a known failure/ },
  ];
  for (const c of cases) {
    const d = diagnose(c.error, { ...target, type: c.type ?? 'secret' });
    t.match(d.reason, c.reason, `${c.name}: reason`);
    t.match(d.hint, c.hint, `${c.name}: hint`);
    t.equal(d.notFound, c.notFound ?? false, `${c.name}: notFound`);
    t.equal(d.identity, c.name === 'tenant mismatch', `${c.name}: identity`);
    t.notOk(`${d.reason} ${d.hint}`.includes(QUOTED), `${c.name}: nothing the server wrote`);
  }
});

t.test('retry decisions for what the transport reports', async (t) => {
  const cases: Array<[string, unknown, boolean]> = [
    ['a malformed answer, though its status is 200', new RestError('x', { code: 'PARSE_ERROR', statusCode: 200 }), true],
    ['a cut answer', new RestError('x', { code: 'ERR_RESPONSE_INCOMPLETE' }), true],
    ['no answer in time', new RestError('x', { code: 'ERR_RESPONSE_TIMEOUT' }), true],
    ['an answer too large: no retry makes it smaller', new RestError('x', { code: 'ERR_RESPONSE_TOO_LARGE' }), false],
    ['a token request cut short', new TokenRequestError(new RestError('x', { code: 'ERR_RESPONSE_INCOMPLETE' })), true],
    ['a token answer too large', new TokenRequestError(new RestError('x', { code: 'ERR_RESPONSE_TOO_LARGE' })), false],
    ['an unusable token file', new TokenFileError('r', 'h'), false],
  ];
  for (const [name, error, retry] of cases) t.equal(classify(error).retry, retry, name);
});

t.test('the identity side: the token file and the token request', async (t) => {
  const file = diagnose(new TokenFileError('AZURE_FEDERATED_TOKEN_FILE /t is empty', 'mount the volume'), target);
  t.same(file, { reason: 'AZURE_FEDERATED_TOKEN_FILE /t is empty', hint: 'Fix: mount the volume.', identity: true, notFound: false });
  const cut = diagnose(new TokenRequestError(new RestError(QUOTED, { code: 'PARSE_ERROR', statusCode: 200 })), target);
  t.match(cut, { reason: "Entra ID's answer was not valid JSON (PARSE_ERROR)", hint: /^Fix: .*login\.microsoftonline\.com/, identity: true });
  t.notOk(JSON.stringify(cut).includes(QUOTED));
  const hung = diagnose(new TokenRequestError(new RestError('x', { code: 'ERR_RESPONSE_TIMEOUT' })), target);
  t.match(hung.reason, /^Entra ID did not answer within 20s/);
});

t.test('log labels: statuses and codes, never a message', async (t) => {
  t.equal(errorLabel(keyVaultError(503, 'ServiceUnavailable', QUOTED)), '503 ServiceUnavailable');
  t.equal(errorLabel(new RestError(QUOTED, { code: 'PARSE_ERROR', statusCode: 200 })), '200 PARSE_ERROR');
  t.equal(errorLabel(networkError('ECONNRESET', QUOTED)), 'ECONNRESET');
  t.equal(errorLabel(new TokenRequestError(new RestError(QUOTED, { code: 'ERR_RESPONSE_TIMEOUT' }))), 'Entra ID: ERR_RESPONSE_TIMEOUT');
  t.equal(errorLabel(new Error(`AADSTS70021: ${QUOTED}`)), 'AADSTS70021');
  t.equal(errorLabel(keyVaultError(409, QUOTED, QUOTED)), '409');
  t.equal(errorLabel(new Error(QUOTED)), 'Error');
});

t.test('Entra ID failures explain the federated credential and show the token claims', async (t) => {
  const claims = { iss: 'https://oidc.prod-aks.azure.com/tenant/issuer/', sub: 'system:serviceaccount:shop:checkout', aud: 'api://AzureADTokenExchange' };
  const msal = (code: number, text: string): Error =>
    new Error(`invalid_client: Error(s): ${code} - Timestamp: 2026-11-29 - Description: AADSTS${code}: ${text} - Correlation ID: x`);
  const cases: Array<[number, RegExp]> = [
    [
      70021,
      /no federated identity credential of application 1111.* matches the token\. Fix: add a federated identity credential with issuer https:\/\/oidc.prod-aks.azure.com\/tenant\/issuer\/, subject system:serviceaccount:shop:checkout/,
    ],
    [700211, /has the token's issuer.*oidcIssuerProfile/],
    [700016, /application 1111.* was not found in the tenant\. Fix: set akv-injector.io\/client-id/],
    [90002, /tenant was not found\. Fix: set akv-injector.io\/tenant-id/],
    [700024, /expired/],
  ];
  for (const [code, hint] of cases) {
    const d = diagnose(msal(code, 'text'), target, claims);
    t.equal(d.reason, `Entra ID token exchange failed (AADSTS${code})`);
    t.match(d.hint, hint, `AADSTS${code}`);
    t.match(
      d.hint,
      /The token presented: iss=https:\/\/oidc\.prod-aks\.azure\.com\/tenant\/issuer\/ sub=system:serviceaccount:shop:checkout aud=api:\/\/AzureADTokenExchange\./,
    );
    t.ok(d.identity);
  }
  const unknown = diagnose(new AuthenticationError(400, { error: 'invalid_grant', error_description: `Something new ${QUOTED}` }), target);
  t.match(unknown.hint, /^Entra ID refused the token exchange \(invalid_grant\)\. Check the client ID/);
  t.notOk(unknown.hint.includes(QUOTED), 'the description is not shown: only its OAuth error code');
  const unavailable = diagnose(new CredentialUnavailableError('WorkloadIdentityCredential: no token file'), target);
  t.match(unavailable, { identity: true, reason: /workload identity unavailable/, hint: /AZURE_FEDERATED_TOKEN_FILE/ });
});

t.test('token claims are decoded, the token never kept', async (t) => {
  const payload = Buffer.from(
    JSON.stringify({ iss: 'https://issuer', sub: 'system:serviceaccount:a:b', aud: ['api://AzureADTokenExchange'], exp: 1 }),
  ).toString('base64url');
  t.same(decodeTokenClaims(`eyJhbGciOiJSUzI1NiJ9.${payload}.c2ln`), {
    iss: 'https://issuer',
    sub: 'system:serviceaccount:a:b',
    aud: ['api://AzureADTokenExchange'],
  });
  t.equal(decodeTokenClaims('not-a-jwt'), undefined);
  t.equal(decodeTokenClaims('a.!!!.c'), undefined);
});

t.test('the summary: one line per object, identity explained once', async (t) => {
  const object = (name: string): ObjectSpec => ({
    objectName: name,
    objectType: 'secret',
    objectVersion: '',
    objectAlias: name,
    objectFormat: 'pem',
    objectEncoding: 'utf-8',
    filePermission: 0o644,
    objectVersionHistory: 1,
    optional: false,
  });
  const job = {
    clientId: CLIENT,
    tenantId: 'contoso.onmicrosoft.com',
    vaultUrl: 'https://kv1.vault.azure.net/',
    objects: [object('a'), object('b'), object('c')],
  } as FetchJob;
  const claims = { iss: 'https://i', sub: 'system:serviceaccount:x:y', aud: 'api://AzureADTokenExchange' };
  const refused = new AuthenticationError(400, { error: 'unauthorized_client', error_description: 'AADSTS700016: Application not found in the directory' });
  const identity = diagnose(refused, target, claims);
  const text = summarize(job, [
    { object: object('a'), diagnosis: identity },
    { object: object('b'), diagnosis: identity },
  ]);
  t.equal(
    text,
    [
      'akv-injector: 2 of 3 objects could not be fetched from https://kv1.vault.azure.net/; no files were written.',
      `Authentication as client ${CLIENT} in tenant contoso.onmicrosoft.com failed: Entra ID token exchange failed (AADSTS700016). ${identity.hint}`,
      '- secret "a": Entra ID token exchange failed (AADSTS700016)',
      '- secret "b": Entra ID token exchange failed (AADSTS700016)',
      '',
    ].join('\n'),
  );
  t.match(
    identity.hint,
    /^application .* was not found in the tenant\. Fix: .* The token presented: iss=https:\/\/i sub=system:serviceaccount:x:y aud=api:\/\/AzureADTokenExchange\.$/,
    'the claims are in the hint, once',
  );
});
