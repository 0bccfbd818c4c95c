// The Entra ID and Key Vault emulators against the real Azure SDK clients: what passes here is what the SDKs accept.
import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createGunzip, gunzipSync } from 'node:zlib';
import { WorkloadIdentityCredential, type WorkloadIdentityCredentialOptions } from '@azure/identity';
import { CertificateClient } from '@azure/keyvault-certificates';
import { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import t, { type Test } from 'tap';
import { GZIP_BOMB_BYTES, HUGE_BODY_BYTES, type RawFault } from './fixtures/emulator-server.js';
import { startEntraEmulator } from './fixtures/entra-emulator.js';
import { exactEnv } from './fixtures/exact-env.js';
import { fakeServiceAccountToken, type ServiceAccountTokenOptions } from './fixtures/jwt.js';
import { startKeyVaultEmulator } from './fixtures/keyvault-emulator.js';
import { loopbackAgent, loopbackChildEnv, loopbackLookup } from './fixtures/loopback.js';
import { makeTestPki } from './fixtures/tls.js';

const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const OTHER_TENANT_ID = '3f8b2c1d-0e9a-4b7c-8d6e-5f4a3b2c1d0e';
const CLIENT_ID = '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01';
/** Known to Entra ID, but without a role on the vault. */
const UNPRIVILEGED_CLIENT_ID = '5d1e6f0a-7b2c-4d3e-8f9a-0b1c2d3e4f50';
const ISSUER = 'https://oidc.prod-aks.azure.com/cluster-1/';
const SUBJECT = 'system:serviceaccount:default:app';
const VAULT = 'kv-emulated';
const SCOPE = 'https://vault.azure.net/.default';

const entra = await startEntraEmulator({
  tenantIds: [TENANT_ID, OTHER_TENANT_ID],
  apps: [
    { clientId: CLIENT_ID, tenantId: TENANT_ID, federatedCredentials: [{ issuer: ISSUER, subject: SUBJECT }] },
    { clientId: UNPRIVILEGED_CLIENT_ID, tenantId: TENANT_ID, federatedCredentials: [{ issuer: ISSUER, subject: SUBJECT }] },
    { clientId: CLIENT_ID, tenantId: OTHER_TENANT_ID, federatedCredentials: [{ issuer: ISSUER, subject: SUBJECT }] },
  ],
});
const vault = await startKeyVaultEmulator({
  tenantId: TENANT_ID,
  verifyToken: entra.verifyAccessToken,
  allowedClientIds: [CLIENT_ID],
  pageSize: 2,
});
const agent = loopbackAgent(entra.caCertPem);
const tokenDir = await mkdtemp(join(tmpdir(), 'akv-emulators-'));
// Fast retries: the SDK defaults (800 ms exponential) would make the fault tests slow.
const retryOptions = { retryDelayInMs: 5, maxRetryDelayInMs: 20 };

t.teardown(async () => {
  await vault.close();
  await entra.close();
  agent.destroy();
  await rm(tokenDir, { recursive: true, force: true });
});

let tokenFiles = 0;
async function credential(
  options: Partial<WorkloadIdentityCredentialOptions> = {},
  token: Partial<ServiceAccountTokenOptions> = {},
): Promise<WorkloadIdentityCredential> {
  const tokenFilePath = join(tokenDir, `token-${tokenFiles++}`);
  await writeFile(tokenFilePath, fakeServiceAccountToken({ issuer: ISSUER, subject: SUBJECT, ...token }));
  return new WorkloadIdentityCredential({
    tenantId: TENANT_ID,
    clientId: CLIENT_ID,
    tokenFilePath,
    authorityHost: entra.url,
    disableInstanceDiscovery: true,
    agent,
    ...options,
  });
}

async function secretClient(clientId = CLIENT_ID): Promise<SecretClient> {
  return new SecretClient(vault.vaultUrl(VAULT), await credential({ clientId }), { agent, retryOptions });
}

function clearLogs(): void {
  entra.requests.length = 0;
  vault.requests.length = 0;
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A GET to the vault without the SDK, to pin down the wire protocol. */
function rawGet(path: string, token?: string, vaultUrl = vault.vaultUrl(VAULT)): Promise<RawResponse> {
  const url = new URL(path, vaultUrl);
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined });
        });
      })
      .on('error', reject);
  });
}

t.test('WorkloadIdentityCredential gets a Key Vault token from the Entra emulator', async (t) => {
  clearLogs();
  const token = await (await credential()).getToken(SCOPE);
  const claims = entra.verifyAccessToken(token.token);
  t.match(claims, { aud: 'https://vault.azure.net', appid: CLIENT_ID, azp: CLIENT_ID, tid: TENANT_ID, idtyp: 'app' });
  t.ok(claims && claims.exp - claims.iat === 3599, 'expires_in 3599');
  t.equal(entra.verifyAccessToken('a.b.c'), undefined, 'a token it did not issue is refused');
  t.same(
    entra.requests.map((r) => `${r.method} ${r.path} ${r.status}`),
    [`GET /${TENANT_ID}/v2.0/.well-known/openid-configuration 200`, `POST /${TENANT_ID}/oauth2/v2.0/token 200`],
  );
  t.match(entra.requests[1], {
    form: {
      grant_type: 'client_credentials',
      client_id: CLIENT_ID,
      scope: SCOPE,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: '[redacted]',
    },
    assertion: { iss: ISSUER, sub: SUBJECT, aud: ['api://AzureADTokenExchange'] },
  });
});

t.test('a first getSecret is one challenge round trip, and CAE is requested', async (t) => {
  vault.setSecret('first', 'value');
  clearLogs();
  const secret = await (await secretClient()).getSecret('first');
  t.equal(secret.value, 'value');
  t.same(
    vault.requests.map((r) => [r.path, r.status, r.authenticated]),
    [
      ['/secrets/first/', 401, false],
      ['/secrets/first/', 200, true],
    ],
  );
  t.equal(entra.openIdConfigurationRequests, 1);
  t.equal(entra.tokenRequests, 1);
  t.match(entra.requests[1]?.form?.claims, /"xms_cc":\{"values":\["cp1"\]\}/);
});

t.test('parallel first requests each get a 401 but share one token request', async (t) => {
  vault.setSecret('parallel', 'value');
  const client = await secretClient();
  clearLogs();
  const secrets = await Promise.all([1, 2, 3].map(() => client.getSecret('parallel')));
  t.same(
    secrets.map((s) => s.value),
    ['value', 'value', 'value'],
  );
  t.equal(vault.challengeCount, 3);
  t.equal(vault.requests.filter((r) => r.status === 200).length, 3);
  t.equal(entra.tokenRequests, 1);
  t.equal(entra.openIdConfigurationRequests, 1);
});

t.test('one credential: OpenID configuration once per MSAL app (CAE and non-CAE are two)', async (t) => {
  vault.setSecret('cached', 'value');
  const cred = await credential();
  clearLogs();
  await new SecretClient(vault.vaultUrl(VAULT), cred, { agent }).getSecret('cached');
  await new KeyClient(vault.vaultUrl(VAULT), cred, { agent }).getKey('cached').catch(() => undefined);
  t.equal(entra.tokenRequests, 1, 'a second client reuses the cached CAE token');
  t.equal(vault.requests.filter((r) => r.status === 401).length, 2, 'but makes its own challenge request');
  await cred.getToken(SCOPE);
  t.equal(entra.openIdConfigurationRequests, 2, 'a non-CAE getToken builds a second MSAL app');
  t.equal(entra.tokenRequests, 2);
});

t.test('wire protocol', async (t) => {
  const version = vault.setSecret('wire', 'value');
  const token = (await (await credential()).getToken(SCOPE)).token;
  const management = await (await credential()).getToken('https://management.azure.com/.default');
  const otherTenant = await (await credential({ tenantId: OTHER_TENANT_ID })).getToken(SCOPE);
  const cases: Array<{ name: string; path: string; token?: string; status: number; body?: unknown }> = [
    {
      name: 'no token: challenge',
      path: '/secrets/wire/?api-version=2025-07-01',
      status: 401,
      body: { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
    },
    {
      name: 'missing api-version',
      path: '/secrets/wire/',
      token,
      status: 400,
      body: { error: { code: 'BadParameter', message: "The 'api-version' query parameter is missing." } },
    },
    { name: 'latest with a trailing slash', path: '/secrets/wire/?api-version=2025-07-01', token, status: 200 },
    { name: 'latest without a trailing slash', path: '/secrets/wire?api-version=2025-07-01', token, status: 200 },
    { name: 'percent-encoded api-version', path: `/secrets/wire/${version}?api%2Dversion=7.6`, token, status: 200 },
    {
      name: 'token not issued by the Entra emulator',
      path: '/secrets/wire?api-version=7.6',
      token: fakeServiceAccountToken({ issuer: ISSUER, subject: SUBJECT }),
      status: 401,
      body: { error: { code: 'Unauthorized', message: 'AKV10046: Unable to resolve the key used for signature validation.' } },
    },
    {
      name: 'token for another resource',
      path: '/secrets/wire?api-version=7.6',
      token: management.token,
      status: 401,
      body: {
        error: {
          code: 'Unauthorized',
          message: 'AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com.',
        },
      },
    },
    {
      name: 'token of another tenant',
      path: '/secrets/wire?api-version=7.6',
      token: otherTenant.token,
      status: 401,
      body: {
        error: {
          code: 'Unauthorized',
          message: `AKV10032: Invalid issuer. Expected one of https://sts.windows.net/${TENANT_ID}/, found https://sts.windows.net/${OTHER_TENANT_ID}/.`,
        },
      },
    },
    {
      name: 'invalid name',
      path: '/secrets/not_valid?api-version=7.6',
      token,
      status: 400,
      body: { error: { code: 'BadParameter', message: 'The request URI contains an invalid name: not_valid' } },
    },
  ];
  for (const c of cases) {
    const response = await rawGet(c.path, c.token);
    t.equal(response.status, c.status, c.name);
    if (c.body) t.same(response.body, c.body, `${c.name}: body`);
    if (c.status === 200) {
      t.match(response.body, { value: 'value', id: `https://${VAULT}.vault.azure.net:${vault.port}/secrets/wire/${version}` });
    }
    t.equal(response.headers['content-type'], 'application/json; charset=utf-8', `${c.name}: content-type`);
    t.equal(response.headers['cache-control'], 'no-cache');
    t.match(response.headers, {
      'x-ms-request-id': /^[0-9a-f-]{36}$/,
      'x-ms-keyvault-service-version': String,
      'x-ms-keyvault-network-info': /conn_type=Ipv4/,
    });
    if (c.status === 401) {
      t.equal(
        response.headers['www-authenticate'],
        `Bearer authorization="https://login.microsoftonline.com/${TENANT_ID}", resource="https://vault.azure.net"`,
      );
    }
  }
});

t.test('getSecret: latest and by version', async (t) => {
  const created = new Date('2024-01-02T03:04:05Z');
  const v1 = vault.setSecret('db-password', 'one', { contentType: 'text/plain', tags: { env: 'test' }, created });
  const v2 = vault.setSecret('db-password', 'two');
  const client = await secretClient();
  const cases = [
    { name: 'latest', version: undefined, value: 'two', id: v2 },
    { name: 'by version', version: v1, value: 'one', id: v1 },
    { name: 'by upper-case version', version: v1.toUpperCase(), value: 'one', id: v1 },
  ];
  for (const c of cases) {
    const secret = await client.getSecret('db-password', { version: c.version });
    t.equal(secret.value, c.value, c.name);
    t.equal(secret.properties.version, c.id, `${c.name}: version`);
    t.equal(secret.properties.id, `https://${VAULT}.vault.azure.net:${vault.port}/secrets/db-password/${c.id}`);
    t.equal(secret.properties.vaultUrl, `https://${VAULT}.vault.azure.net:${vault.port}`);
  }
  const first = await client.getSecret('db-password', { version: v1 });
  t.equal(first.properties.contentType, 'text/plain');
  t.same(first.properties.tags, { env: 'test' });
  t.same(first.properties.createdOn, created);
  t.equal(first.properties.recoveryLevel, 'Recoverable+Purgeable');
  t.equal(first.properties.recoverableDays, 90);
  t.match(v1, /^[0-9a-f]{32}$/);
});

t.test('listPropertiesOfSecretVersions pages through nextLink', async (t) => {
  const versions = [1, 2, 3, 4, 5].map((n) => vault.setSecret('rotated', `value-${n}`, { created: 1_700_000_000 + n }));
  const client = await secretClient();
  await client.getSecret('rotated');
  vault.requests.length = 0;
  const listed: string[] = [];
  for await (const properties of client.listPropertiesOfSecretVersions('rotated')) listed.push(properties.version ?? '');
  t.same([...listed].sort(), [...versions].sort(), 'every version');
  t.same(listed, [...versions].sort(), 'in identifier order, as Key Vault lists them');
  t.equal(vault.requests.length, 3, 'three pages of two');
  t.match(vault.requests[1]?.query, /\$skiptoken=/);

  vault.requests.length = 0;
  const pageSizes: number[] = [];
  for await (const page of client.listPropertiesOfSecretVersions('rotated').byPage({ maxPageSize: 4 })) pageSizes.push(page.length);
  t.same(pageSizes, [4, 1], 'maxresults is honoured');
  t.match(vault.requests[0]?.query, /maxresults=4/);

  const none: string[] = [];
  for await (const properties of client.listPropertiesOfSecretVersions('never-set')) none.push(properties.name);
  t.same(none, [], 'versions of a missing secret: an empty list');
});

t.test('getKey: the JsonWebKey converts back to the same public key', async (t) => {
  const cases: Array<{ name: string; key: KeyObject; kty: string; curve?: string }> = [
    { name: 'rsa-2048', key: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, kty: 'RSA' },
    { name: 'ec-p256', key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, kty: 'EC', curve: 'P-256' },
    { name: 'ec-p384', key: generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey, kty: 'EC', curve: 'P-384' },
    { name: 'ec-p521', key: generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey, kty: 'EC', curve: 'P-521' },
  ];
  const client = new KeyClient(vault.vaultUrl(VAULT), await credential(), { agent, retryOptions });
  for (const c of cases) {
    const version = vault.setKey(c.name, c.key);
    const key = await client.getKey(c.name);
    t.equal(key.properties.version, version, c.name);
    t.equal(key.keyType, c.kty);
    t.equal(key.key?.crv, c.curve);
    t.equal(key.id, `https://${VAULT}.vault.azure.net:${vault.port}/keys/${c.name}/${version}`);
    const roundTrip = createPublicKey({ key: jwkFromSdk(key.key ?? {}), format: 'jwk' });
    t.ok(roundTrip.equals(c.key), `${c.name}: same public key`);
  }
  vault.setKey('hsm', cases[0]?.key ?? generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, { kty: 'RSA-HSM' });
  t.equal((await client.getKey('hsm')).keyType, 'RSA-HSM');
});

t.test('getCertificate: cer bytes round-trip; the backing secret and key come with it', async (t) => {
  const pki = makeTestPki();
  const certDer = new X509Certificate(pki.certPem).raw;
  const secretValue = `${pki.keyPem}${pki.certPem}`;
  const version = vault.setCertificate('tls', { certDer, secretValue, contentType: 'application/x-pem-file' });
  const cred = await credential();
  const certificates = new CertificateClient(vault.vaultUrl(VAULT), cred, { agent, retryOptions });

  const certificate = await certificates.getCertificate('tls');
  t.ok(Buffer.from(certificate.cer ?? []).equals(certDer), 'cer is the DER');
  t.equal(certificate.properties.version, version);
  t.equal(certificate.secretId, `https://${VAULT}.vault.azure.net:${vault.port}/secrets/tls/${version}`);
  t.equal(certificate.keyId, `https://${VAULT}.vault.azure.net:${vault.port}/keys/tls/${version}`);
  t.equal(certificate.policy?.contentType, 'application/x-pem-file', 'latest comes with its policy');
  t.same(certificate.properties.expiresOn, new Date(new X509Certificate(certDer).validTo));
  const byVersion = await certificates.getCertificateVersion('tls', version);
  t.ok(Buffer.from(byVersion.cer ?? []).equals(certDer));

  const secret = await new SecretClient(vault.vaultUrl(VAULT), cred, { agent }).getSecret('tls');
  t.equal(secret.value, secretValue);
  t.equal(secret.properties.contentType, 'application/x-pem-file');
  t.equal(secret.properties.managed, true);
  t.equal(secret.properties.certificateKeyId, certificate.keyId);

  const key = await new KeyClient(vault.vaultUrl(VAULT), cred, { agent }).getKey('tls');
  t.equal(key.properties.managed, true);
  t.ok(createPublicKey({ key: jwkFromSdk(key.key ?? {}), format: 'jwk' }).equals(new X509Certificate(certDer).publicKey));
});

t.test('a secret that backs a certificate carries its kid and managed: true; a plain secret neither', async (t) => {
  const token = (await (await credential()).getToken(SCOPE)).token;
  const client = await secretClient();
  const base = `https://${VAULT}.vault.azure.net:${vault.port}`;
  const cases = [
    { name: 'backing-pfx', options: { contentType: 'application/x-pkcs12', certificateBacked: true }, backed: true },
    { name: 'backing-pem', options: { contentType: 'application/x-pem-file', certificateBacked: true }, backed: true },
    { name: 'plain-pfx-content', options: { contentType: 'application/x-pkcs12' }, backed: false },
    { name: 'plain-no-type', options: {}, backed: false },
  ];
  for (const c of cases) {
    const version = vault.setSecret(c.name, 'value', c.options);
    const kid = `${base}/keys/${c.name}/${version}`;
    const secret = await client.getSecret(c.name);
    t.equal(secret.properties.certificateKeyId, c.backed ? kid : undefined, `${c.name}: certificateKeyId`);
    t.equal(secret.properties.managed, c.backed ? true : undefined, `${c.name}: managed`);
    const wire = (await rawGet(`/secrets/${c.name}/?api-version=7.6`, token)).body as Record<string, unknown>;
    t.equal(wire.kid, c.backed ? kid : undefined, `${c.name}: kid on the wire`);
    t.equal('kid' in wire, c.backed, `${c.name}: kid present only when backed`);
    t.equal('managed' in wire, c.backed, `${c.name}: managed present only when backed`);
    const listed: Array<boolean | undefined> = [];
    for await (const properties of client.listPropertiesOfSecretVersions(c.name)) listed.push(properties.managed);
    t.same(listed, [c.backed ? true : undefined], `${c.name}: the version list says managed too`);
  }
});

t.test('HSM keys and any curve from a JWK: kty as given, public members only', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const k256 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
  const cases: Array<{ name: string; jwk: JsonWebKey; kty: string; crv?: string; key: KeyObject }> = [
    { name: 'jwk-rsa-hsm', jwk: { ...rsa.export({ format: 'jwk' }), kty: 'RSA-HSM' }, kty: 'RSA-HSM', key: rsa },
    { name: 'jwk-ec-hsm', jwk: { ...ec.export({ format: 'jwk' }), kty: 'EC-HSM' }, kty: 'EC-HSM', crv: 'P-256', key: ec },
    { name: 'jwk-ec-p256k', jwk: { ...k256.export({ format: 'jwk' }), crv: 'P-256K' }, kty: 'EC', crv: 'P-256K', key: k256 },
    { name: 'jwk-rsa', jwk: rsa.export({ format: 'jwk' }), kty: 'RSA', key: rsa },
  ];
  const client = new KeyClient(vault.vaultUrl(VAULT), await credential(), { agent, retryOptions });
  for (const c of cases) {
    vault.setKey(c.name, c.jwk);
    const key = await client.getKey(c.name);
    t.equal(key.keyType, c.kty, `${c.name}: kty`);
    t.equal(key.key?.crv, c.crv, `${c.name}: crv`);
    const present = Object.entries(key.key ?? {})
      .filter(([, value]) => value !== undefined)
      .map(([member]) => member);
    t.same(
      present.filter((m) => ['d', 'p', 'q', 'dp', 'dq', 'qi'].includes(m)),
      [],
      `${c.name}: no private member`,
    );
    // Node.js has no JWK name for secp256k1: compare the points.
    const members = c.kty.startsWith('EC') ? ['x', 'y'] : ['n', 'e'];
    for (const m of members) t.equal(jwkFromSdk(key.key ?? {})[m], c.key.export({ format: 'jwk' })[m], `${c.name}: ${m}`);
  }
});

t.test('a certificate object alone: its cer as given, or pending without one, as Key Vault answers then', async (t) => {
  const token = (await (await credential()).getToken(SCOPE)).token;
  const certificates = new CertificateClient(vault.vaultUrl(VAULT), await credential(), { agent, retryOptions });
  const base = `https://${VAULT}.vault.azure.net:${vault.port}`;
  const der = new X509Certificate(makeTestPki().certPem).raw;
  const cases = [
    { name: 'cert-alone', cer: der, enabled: true, expiresOn: new Date(new X509Certificate(der).validTo) },
    { name: 'cert-mock-bytes', cer: Buffer.from('test'), enabled: true, expiresOn: undefined },
    { name: 'cert-pending', cer: undefined, enabled: false, expiresOn: undefined },
  ];
  for (const c of cases) {
    const version = vault.setCertificateObject(c.name, c.cer ? { cer: c.cer } : {});
    const certificate = await certificates.getCertificate(c.name);
    t.equal(certificate.properties.version, version, `${c.name}: version`);
    t.same(certificate.cer === undefined ? undefined : Buffer.from(certificate.cer), c.cer, `${c.name}: cer`);
    t.equal(certificate.properties.enabled, c.enabled, `${c.name}: enabled`);
    t.same(certificate.properties.expiresOn, c.expiresOn, `${c.name}: expiresOn`);
    t.equal(certificate.policy?.contentType, 'application/x-pkcs12', `${c.name}: the policy comes with the latest`);
    const byVersion = await certificates.getCertificateVersion(c.name, version);
    t.same(byVersion.cer === undefined ? undefined : Buffer.from(byVersion.cer), c.cer, `${c.name}: cer by version`);
    const wire = (await rawGet(`/certificates/${c.name}/?api-version=7.6`, token)).body as Record<string, unknown>;
    const pending = c.cer === undefined;
    t.same(
      ['cer', 'x5t', 'kid', 'sid'].filter((field) => field in wire),
      pending ? [] : ['cer', 'x5t', 'kid', 'sid'],
      `${c.name}: identifiers and content only once issued`,
    );
    t.same(wire.pending, pending ? { id: `${base}/certificates/${c.name}/pending` } : undefined, `${c.name}: the pending operation named`);
  }
  await t.rejects(
    new SecretClient(vault.vaultUrl(VAULT), await credential(), { agent }).getSecret('cert-alone'),
    { name: 'RestError', statusCode: 404, code: 'SecretNotFound' },
    'no backing secret made',
  );
});

t.test('a rewriting fault delivers the real answer with its body changed, headers kept', async (t) => {
  const version = vault.setSecret('rewritten', 'value');
  const client = await secretClient();
  await client.getSecret('rewritten');
  vault.requests.length = 0;
  vault.addFault({
    match: '/secrets/rewritten',
    rewrite: (body) => ({ ...(body as Record<string, unknown>), value: undefined, tags: { rewritten: 'yes' } }),
  });
  const rewritten = await client.getSecret('rewritten');
  t.equal(rewritten.value, undefined, 'the value is gone');
  t.same(rewritten.properties.tags, { rewritten: 'yes' });
  t.equal(rewritten.properties.version, version, 'the rest is the real answer');
  t.match(vault.requests, [{ status: 200, injected: true }]);
  t.equal((await client.getSecret('rewritten')).value, 'value', 'once: the next answer is whole');
});

t.test('Key Vault errors surface as RestError with the service code', async (t) => {
  const disabled = vault.setSecret('switched-off', 'value', { enabled: false });
  vault.setSecret('rbac-protected', 'value');
  const client = await secretClient();
  const unprivileged = await secretClient(UNPRIVILEGED_CLIENT_ID);
  const keys = new KeyClient(vault.vaultUrl(VAULT), await credential(), { agent });
  const certificates = new CertificateClient(vault.vaultUrl(VAULT), await credential(), { agent });
  const notFound = (kind: string, id: string) =>
    `A ${kind} with (name/id) ${id} was not found in this key vault. If you recently deleted this ${kind} you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`;
  const cases: Array<{ name: string; call: () => Promise<unknown>; status: number; code: string; message: string | RegExp }> = [
    { name: 'missing secret', call: () => client.getSecret('absent'), status: 404, code: 'SecretNotFound', message: notFound('secret', 'absent') },
    {
      name: 'missing version',
      call: () => client.getSecret('rbac-protected', { version: 'abc' }),
      status: 404,
      code: 'SecretNotFound',
      message: notFound('secret', 'rbac-protected/abc'),
    },
    { name: 'missing key', call: () => keys.getKey('absent'), status: 404, code: 'KeyNotFound', message: notFound('key', 'absent') },
    {
      name: 'missing certificate',
      call: () => certificates.getCertificate('absent'),
      status: 404,
      code: 'CertificateNotFound',
      message: notFound('certificate', 'absent'),
    },
    {
      name: 'disabled secret',
      call: () => client.getSecret('switched-off', { version: disabled }),
      status: 403,
      code: 'Forbidden',
      message: 'Operation get is not allowed on a disabled secret.',
    },
    {
      name: 'disabled current version',
      call: () => client.getSecret('switched-off'),
      status: 403,
      code: 'Forbidden',
      message: 'Operation get is not allowed on a disabled secret.',
    },
    {
      name: 'caller without a role',
      call: () => unprivileged.getSecret('rbac-protected'),
      status: 403,
      code: 'Forbidden',
      message: new RegExp(
        `^Caller is not authorized to perform action on resource\\.\\r\\n.*Caller: appid=${UNPRIVILEGED_CLIENT_ID};oid=.*\\r\\nAction: 'Microsoft\\.KeyVault/vaults/secrets/getSecret/action'\\r\\n.*DecisionReason: 'DeniedWithNoValidRBAC' \\r\\nVault: ${VAULT};location=eastus\\r\\n$`,
        's',
      ),
    },
  ];
  for (const c of cases) {
    await t.rejects(c.call(), { name: 'RestError', statusCode: c.status, code: c.code, message: c.message }, c.name);
  }
  t.match(
    vault.requests.find((r) => r.status === 403 && r.appid === UNPRIVILEGED_CLIENT_ID),
    { errorCode: 'Forbidden', authenticated: true },
  );

  vault.deny({ collection: 'secrets', name: 'rbac-protected' });
  await t.rejects(client.getSecret('rbac-protected'), { name: 'RestError', statusCode: 403, code: 'Forbidden' }, 'per-object deny');
});

t.test('Entra ID errors surface from the credential with the AADSTS code', async (t) => {
  const scope = SCOPE;
  const cases: Array<{ name: string; cred: () => Promise<WorkloadIdentityCredential>; error: string; code: number }> = [
    {
      name: 'subject without a federated credential',
      cred: () => credential({}, { subject: 'system:serviceaccount:other:app' }),
      error: 'AuthenticationRequiredError',
      code: 70021,
    },
    {
      name: 'audience without a federated credential',
      cred: () => credential({}, { audience: 'api://SomethingElse' }),
      error: 'AuthenticationRequiredError',
      code: 70021,
    },
    {
      name: 'unknown client id',
      cred: () => credential({ clientId: 'ffffffff-0000-0000-0000-000000000000' }),
      error: 'AuthenticationRequiredError',
      code: 700016,
    },
    {
      name: 'unknown issuer',
      cred: () => credential({}, { issuer: 'https://oidc.example.test/other' }),
      error: 'AuthenticationRequiredError',
      code: 700211,
    },
    { name: 'expired assertion', cred: () => credential({}, { lifetimeSeconds: -60 }), error: 'AuthenticationRequiredError', code: 700024 },
  ];
  for (const c of cases) {
    clearLogs();
    const cred = await c.cred();
    await t.rejects(cred.getToken(scope), { name: c.error, message: new RegExp(`Error\\(s\\): ${c.code} - .*AADSTS${c.code}: `) }, c.name);
    t.equal(entra.requests.at(-1)?.errorCode, c.code, `${c.name}: the emulator answered AADSTS${c.code}`);
  }

  // An unknown tenant fails OpenID discovery; MSAL reports endpoints_resolution_error and drops the AADSTS90002 body.
  clearLogs();
  const unknownTenant = await credential({ tenantId: '00000000-1111-2222-3333-444444444444' });
  await t.rejects(unknownTenant.getToken(scope), { name: 'CredentialUnavailableError', message: /endpoints_resolution_error/ });
  t.match(entra.requests, [{ path: /openid-configuration$/, status: 400, errorCode: 90002 }]);
});

t.test('fault injection: Key Vault', async (t) => {
  vault.setSecret('flaky', 'value');
  const client = await secretClient();
  await client.getSecret('flaky');
  const cases: Array<{ name: string; fault: Parameters<typeof vault.addFault>[0]; statuses: number[]; fails?: number }> = [
    { name: '503 is retried', fault: { status: 503 }, statuses: [503, 200] },
    { name: '429 with Retry-After is retried', fault: { status: 429, retryAfter: '0' }, statuses: [429, 200] },
    { name: '429 without Retry-After is not retried', fault: { status: 429 }, statuses: [429], fails: 429 },
    { name: 'a reset connection is retried', fault: { raw: 'reset' }, statuses: [0, 200] },
    { name: 'retries run out', fault: { status: 500, times: 4 }, statuses: [500, 500, 500, 500], fails: 500 },
  ];
  for (const c of cases) {
    vault.requests.length = 0;
    vault.addFault({ match: '/secrets/flaky', ...c.fault });
    if (c.fails) await t.rejects(client.getSecret('flaky'), { name: 'RestError', statusCode: c.fails }, c.name);
    else t.equal((await client.getSecret('flaky')).value, 'value', c.name);
    t.same(
      vault.requests.map((r) => r.status),
      c.statuses,
      `${c.name}: requests`,
    );
  }
  vault.requests.length = 0;
  vault.addFault({ status: 429 });
  const throttled = await rawGet('/secrets/flaky?api-version=7.6');
  t.match(throttled.body, { error: { code: 'Throttled', message: /^Request was not allowed because application is throttled/ } });
  vault.clearFaults();
});

t.test('fault injection: Entra ID', async (t) => {
  clearLogs();
  entra.failNext(1, { status: 503, retryAfter: '0' });
  await t.resolves((await credential()).getToken(SCOPE), 'a 503 with Retry-After is retried by the identity pipeline');
  t.same(
    entra.requests.map((r) => [r.status, r.injected]),
    [
      [200, false],
      [503, true],
      [200, false],
    ],
  );

  clearLogs();
  const cred = await credential({ retryOptions: { maxRetries: 1, ...retryOptions } });
  entra.failNext(2, { status: 500 });
  await t.rejects(cred.getToken(SCOPE), { name: 'AuthenticationRequiredError', message: /AADSTS50000/ }, 'retries run out');
  const before = entra.tokenRequests;
  await t.rejects(cred.getToken(SCOPE), { message: /AADSTS50000/ }, 'MSAL throttles the same request locally');
  t.equal(entra.tokenRequests, before, 'without a network request');
});

t.test('latency', async (t) => {
  const latencyMs = 100;
  const slow = await startKeyVaultEmulator({ tenantId: TENANT_ID, verifyToken: entra.verifyAccessToken, latencyMs });
  t.teardown(() => slow.close());
  slow.setSecret('slow', 'value');
  const client = new SecretClient(slow.vaultUrl(VAULT), await credential(), { agent });
  const started = performance.now();
  t.equal((await client.getSecret('slow')).value, 'value');
  const elapsed = performance.now() - started;
  t.equal(slow.requests.length, 2, 'two requests: the challenge and the read');
  // A timer counts from the event loop's clock as it was when its iteration began, so a delay can be seen a few ms
  // short; a quarter of it is far more than that, and one undelayed request would still fall short of the bound.
  t.ok(elapsed >= 2 * latencyMs * 0.75, `each delayed: ${Math.round(elapsed)} ms for two answers of ${latencyMs} ms`);
});

t.test('a child process reaches the emulators through the preload and NODE_EXTRA_CA_CERTS', async (t) => {
  const caFile = join(tokenDir, 'ca.crt');
  await writeFile(caFile, entra.caCertPem);
  const script = `require('node:https').get(process.argv[1], (res) => {
    console.log(res.statusCode, res.headers['www-authenticate']);
    res.resume();
  }).on('error', (error) => { console.error(error.message); process.exit(1); });`;
  const url = `${vault.vaultUrl(VAULT)}secrets/child?api-version=7.6`;
  const { stdout } = await promisify(execFile)(...exactEnv(process.execPath, ['-e', script, url], loopbackChildEnv(caFile, { PATH: process.env.PATH })));
  t.equal(stdout.trim(), `401 Bearer authorization="https://login.microsoftonline.com/${TENANT_ID}", resource="https://vault.azure.net"`);
});

t.test('the challenge names the cloud of the vault host', async (t) => {
  const cases = [
    { suffix: 'vault.usgovcloudapi.net', authority: 'https://login.microsoftonline.us', resource: 'https://vault.usgovcloudapi.net' },
    { suffix: 'vault.azure.cn', authority: 'https://login.chinacloudapi.cn', resource: 'https://vault.azure.cn' },
  ];
  for (const c of cases) {
    const response = await rawGet('/secrets/any?api-version=7.6', undefined, vault.vaultUrl(VAULT, c.suffix));
    t.equal(response.headers['www-authenticate'], `Bearer authorization="${c.authority}/${TENANT_ID}", resource="${c.resource}"`, c.suffix);
  }
});

t.test('a sovereign login host serves the same protocol', async (t) => {
  const cred = await credential({ authorityHost: entra.authorityHostFor('login.microsoftonline.us') });
  clearLogs();
  t.ok(entra.verifyAccessToken((await cred.getToken('https://vault.usgovcloudapi.net/.default')).token));
  t.equal(entra.tokenRequests, 1);
});

/** What a plain Node.js client saw of one answer, read until it ended, broke, or `stopAfter` bytes arrived. */
interface WireView {
  status?: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: Buffer;
  /** complete: the body ended as the protocol says a body ends; cut: the transfer broke; stopped: we stopped reading. */
  end: 'complete' | 'cut' | 'stopped' | 'silent';
  /** HTTP/2: the RST_STREAM code the stream closed with. */
  rstCode?: number;
}

/** GET `url` over HTTP/1.1 or HTTP/2 with a fresh connection, and report what arrived. */
function wireGet(url: string, protocol: '1.1' | '2', options: { token?: string; stopAfter?: number; silentAfterMs?: number } = {}): Promise<WireView> {
  const headers: Record<string, string> = { 'accept-encoding': 'gzip', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) };
  const tls = { ca: entra.caCertPem, lookup: loopbackLookup };
  return new Promise((resolve) => {
    const view: WireView = { headers: {}, bytes: Buffer.alloc(0), end: 'cut' };
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (end: WireView['end'], close: () => void, rstCode?: number): void => {
      if (done) return;
      done = true;
      close();
      resolve({ ...view, bytes: Buffer.concat(chunks), end, ...(rstCode !== undefined ? { rstCode } : {}) });
    };
    const onData = (chunk: Buffer, close: () => void): void => {
      chunks.push(chunk);
      if (options.stopAfter !== undefined && Buffer.concat(chunks).length >= options.stopAfter) finish('stopped', close);
    };
    if (protocol === '1.1') {
      const req = https.get(url, { ...tls, agent: false, headers }, (res) => {
        view.status = res.statusCode;
        view.headers = res.headers;
        res.on('data', (chunk: Buffer) => onData(chunk, () => req.destroy()));
        res.on('end', () => finish(res.complete ? 'complete' : 'cut', () => req.destroy()));
        res.on('error', () => finish('cut', () => req.destroy()));
      });
      req.on('error', () => finish('cut', () => req.destroy()));
      if (options.silentAfterMs !== undefined) setTimeout(() => finish('silent', () => req.destroy()), options.silentAfterMs);
      return;
    }
    const target = new URL(url);
    const session = http2.connect(target.origin, tls);
    session.on('error', () => {});
    const stream = session.request({ ':path': `${target.pathname}${target.search}`, ...headers });
    let endStream = false;
    // See src/fetch/http2-client.ts: Node pushes the end of the body while the stream is open only on END_STREAM.
    const push = stream.push.bind(stream);
    stream.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (chunk === null && !stream.closed) endStream = true;
      return push(chunk, encoding);
    };
    const close = (): void => void session.destroy();
    stream.on('response', (h) => {
      view.status = Number(h[':status']);
      view.headers = h;
    });
    stream.on('data', (chunk: Buffer) => onData(chunk, close));
    stream.on('error', () => {});
    stream.on('close', () => finish(endStream ? 'complete' : 'cut', close, stream.rstCode));
    if (options.silentAfterMs !== undefined) setTimeout(() => finish('silent', close), options.silentAfterMs);
  });
}

t.test('raw faults: what reaches a plain client, over HTTP/1.1 and HTTP/2, from Key Vault and Entra ID', async (t) => {
  const h1Vault = await startKeyVaultEmulator({ tenantId: TENANT_ID, verifyToken: entra.verifyAccessToken, http2: false });
  t.teardown(() => h1Vault.close());
  const value = `raw-fault-value-${'v'.repeat(200)}`;
  for (const v of [vault, h1Vault]) v.setSecret('raw', value);
  const token = (await (await credential()).getToken(SCOPE)).token;
  const real = await rawGet('/secrets/raw?api-version=7.6', token);
  const realBody = Buffer.from(JSON.stringify(real.body));
  const half = realBody.subarray(0, Math.floor(realBody.length / 2));

  interface Case {
    raw: RawFault;
    protocols: Array<'1.1' | '2'>;
    options?: { stopAfter?: number; silentAfterMs?: number };
    check: (t: Test, view: WireView, protocol: '1.1' | '2') => void;
  }
  const cases: Case[] = [
    { raw: 'reset', protocols: ['1.1', '2'], check: (t, v) => t.match(v, { status: undefined, end: 'cut' }) },
    {
      raw: 'reset-before-body',
      protocols: ['1.1', '2'],
      check: (t, v) => {
        t.match(v, { status: 200, end: 'cut' });
        t.equal(Number(v.headers['content-length']), realBody.length, 'the whole answer was announced');
        t.equal(v.bytes.length, 0, 'no byte of it came');
      },
    },
    {
      raw: 'reset-mid-body',
      protocols: ['1.1', '2'],
      check: (t, v, p) => {
        t.match(v, { status: 200, end: 'cut' });
        t.same(v.bytes, half, 'the first half of the real answer, then the connection went');
        if (p === '2') t.not(v.rstCode, 0, 'the stream closed with the connection, not with NO_ERROR');
      },
    },
    {
      raw: 'rst-stream',
      protocols: ['2'],
      check: (t, v) => {
        t.match(v, { status: 200, end: 'cut', rstCode: http2.constants.NGHTTP2_NO_ERROR });
        t.equal(v.headers['content-length'], undefined, 'no length announced: only END_STREAM says the body is whole');
        t.same(v.bytes, half, 'half the real answer, then RST_STREAM(NO_ERROR)');
      },
    },
    { raw: 'hang', protocols: ['1.1', '2'], options: { silentAfterMs: 300 }, check: (t, v) => t.match(v, { status: undefined, end: 'silent' }) },
    {
      raw: 'trickle',
      protocols: ['1.1', '2'],
      options: { stopAfter: 3 },
      check: (t, v) => {
        t.match(v, { status: 200, end: 'stopped' });
        t.equal(Number(v.headers['content-length']), realBody.length);
        t.same(v.bytes, realBody.subarray(0, 3), 'the real answer, one byte at a time');
      },
    },
    {
      raw: 'huge',
      protocols: ['1.1', '2'],
      options: { stopAfter: 4 * 1024 * 1024 },
      check: (t, v) => {
        t.match(v, { status: 200, end: 'stopped' });
        t.equal(v.headers['content-length'], undefined, 'no length announced: only counting tells');
        t.ok(v.bytes.length >= 4 * 1024 * 1024, `megabytes arrive as fast as they are read (of ${HUGE_BODY_BYTES})`);
        t.equal(v.bytes.subarray(0, 10).toString(), '{"value":"');
      },
    },
    {
      raw: 'malformed-json',
      protocols: ['1.1', '2'],
      check: (t, v) => {
        t.match(v, { status: 200, end: 'complete' });
        t.same(v.bytes, half, 'a complete transfer of half the real answer');
        t.throws(() => JSON.parse(v.bytes.toString('utf8')) as unknown, SyntaxError);
      },
    },
    {
      raw: 'gzip-bomb',
      protocols: ['1.1', '2'],
      check: (t, v) => {
        t.match(v, { status: 200, end: 'complete', headers: { 'content-encoding': 'gzip' } });
        t.ok(v.bytes.length < 512 * 1024, `${v.bytes.length} bytes on the wire`);
        t.throws(() => gunzipSync(v.bytes, { maxOutputLength: 1024 * 1024 }), { code: 'ERR_BUFFER_TOO_LARGE' });
      },
    },
  ];
  for (const c of cases) {
    for (const protocol of c.protocols) {
      const v = protocol === '2' ? vault : h1Vault;
      v.requests.length = 0;
      v.addFault({ match: '/secrets/raw', raw: c.raw });
      const view = await wireGet(`${v.vaultUrl(VAULT)}secrets/raw?api-version=7.6`, protocol, { token, ...c.options });
      await t.test(`${c.raw} over HTTP/${protocol}`, async (t) => {
        c.check(t, view, protocol);
        t.match(v.requests, [{ raw: c.raw, injected: true, httpVersion: protocol === '2' ? '2.0' : '1.1' }], 'recorded as injected');
      });
      v.clearFaults();
    }
  }

  await t.test('the bomb expands to what it claims', async (t) => {
    vault.addFault({ match: '/secrets/raw', raw: 'gzip-bomb' });
    const view = await wireGet(`${vault.vaultUrl(VAULT)}secrets/raw?api-version=7.6`, '2', { token });
    let expanded = 0;
    const gunzip = createGunzip();
    gunzip.on('data', (chunk: Buffer) => (expanded += chunk.length));
    await new Promise((resolve) => gunzip.on('end', resolve).end(view.bytes));
    t.equal(expanded, GZIP_BOMB_BYTES);
  });

  await t.test('Entra ID: the token answer cut by a truncating proxy', async (t) => {
    clearLogs();
    entra.failNext(1, { raw: 'malformed-json' });
    const cred = await credential({ retryOptions: { maxRetries: 0 } });
    await t.rejects(cred.getToken(SCOPE), 'the SDK cannot use half a token answer');
    t.match(entra.requests.at(-1), { method: 'POST', path: /\/oauth2\/v2\.0\/token$/, status: 200, raw: 'malformed-json', injected: true });
  });
});

/** The SDK returns the key's members as bytes; a JWK wants them base64url. */
function jwkFromSdk(key: object): JsonWebKey {
  const jwk: JsonWebKey = {};
  for (const [name, value] of Object.entries(key)) {
    if (value instanceof Uint8Array) jwk[name] = Buffer.from(value).toString('base64url');
    else if (name === 'kty' || name === 'crv') jwk[name] = String(value).replace(/-HSM$/, '');
  }
  return jwk;
}
