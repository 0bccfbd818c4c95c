// The OpenID configuration of a known cloud's authority is answered by the fetch itself (authority-metadata.ts):
// MSAL's token request goes out with no round trip before it. Any other authority is asked, as MSAL would.
import { createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import t from 'tap';
import { knownAuthorityMetadata } from '../src/fetch/authority-metadata.js';
import { createWorkloadCredential } from '../src/fetch/credential.js';
import { createHttp2Client } from '../src/fetch/http2-client.js';
import { runFetch } from '../src/fetch/run.js';
import { captureLogger, startFetchWorld, TENANT_ID } from './fixtures/fetch-world.js';

const world = await startFetchWorld();
t.teardown(() => world.close());
const { entra } = world;
const SCOPE = 'https://vault.azure.net/.default';

async function tokenThrough(authorityHost: string): Promise<{ token: string | undefined; requests: string[] }> {
  const job = await world.job([], { authorityHost });
  const transport = createHttp2Client({ agent: world.agent });
  entra.requests.length = 0;
  try {
    const credential = await createWorkloadCredential(job, transport);
    const token = await credential.getToken(SCOPE);
    return { token: token?.token, requests: entra.requests.map((r) => `${r.method} ${r.path} ${r.status}`) };
  } finally {
    transport.close();
  }
}

for (const host of ['login.microsoftonline.com', 'login.microsoftonline.us', 'login.chinacloudapi.cn']) {
  t.test(`${host}: the token request is the only request to Entra ID`, async (t) => {
    const { token, requests } = await tokenThrough(entra.authorityHostFor(host));
    t.ok(token !== undefined && entra.verifyAccessToken(token) !== undefined, 'a token Entra ID issued');
    t.same(requests, [`POST /${TENANT_ID}/oauth2/v2.0/token 200`]);
  });
}

t.test('an authority of no known cloud is asked for its OpenID configuration first', async (t) => {
  const { token, requests } = await tokenThrough(entra.authorityHostFor('localhost'));
  t.ok(token !== undefined && entra.verifyAccessToken(token) !== undefined, 'a token Entra ID issued');
  t.same(requests, [`GET /${TENANT_ID}/v2.0/.well-known/openid-configuration 200`, `POST /${TENANT_ID}/oauth2/v2.0/token 200`]);
});

t.test('a whole fetch from a known cloud: one request to Entra ID', async (t) => {
  world.vault.setSecret('authority-test', 'value');
  const job = await world.job([{ objectName: 'authority-test', objectType: 'secret' }]);
  entra.requests.length = 0;
  const outcome = await runFetch(job, { logger: captureLogger().logger, agent: world.agent });
  t.equal(outcome.exitCode, 0, outcome.summary);
  t.equal(entra.openIdConfigurationRequests, 0, 'no OpenID configuration request');
  t.equal(entra.tokenRequests, 1, 'one token request');
});

t.test('a tenant Entra ID does not know: its token request is refused by Entra ID itself (AADSTS90002)', async (t) => {
  const tenantId = '00000000-0000-4000-8000-000000000000';
  const job = await world.job([], { tenantId });
  const transport = createHttp2Client({ agent: world.agent });
  t.teardown(() => transport.close());
  entra.requests.length = 0;
  const credential = await createWorkloadCredential(job, transport);
  await t.rejects(credential.getToken(SCOPE));
  t.match(entra.requests, [{ method: 'POST', path: `/${tenantId}/oauth2/v2.0/token`, status: 400, errorCode: 90002 }]);
  t.equal(entra.requests.length, 1, 'no other request');
});

t.test('only the GET of the configured known authority for the job tenant is answered here', async (t) => {
  const authority = 'https://login.microsoftonline.com/';
  const tenant = 'a0d0e2f8-0000-4000-8000-000000000001';
  const ask = (url: string, method: 'GET' | 'POST' = 'GET', authorityHost = authority) =>
    knownAuthorityMetadata(createPipelineRequest({ url, method, headers: createHttpHeaders() }), authorityHost, tenant);
  const answer = ask(`${authority}${tenant}/v2.0/.well-known/openid-configuration`);
  t.equal(answer?.status, 200);
  t.same(JSON.parse(answer?.bodyAsText ?? '{}'), {
    token_endpoint: `${authority}${tenant}/oauth2/v2.0/token`,
    issuer: `${authority}${tenant}/v2.0`,
    authorization_endpoint: `${authority}${tenant}/oauth2/v2.0/authorize`,
    end_session_endpoint: `${authority}${tenant}/oauth2/v2.0/logout`,
    jwks_uri: `${authority}${tenant}/discovery/v2.0/keys`,
  });
  t.ok(ask(`${authority}${tenant.toUpperCase()}/v2.0/.well-known/openid-configuration`), 'the tenant in any case');
  const refused: Array<[string, string, ('GET' | 'POST')?, string?]> = [
    ['another tenant', `${authority}common/v2.0/.well-known/openid-configuration`],
    ['a POST', `${authority}${tenant}/v2.0/.well-known/openid-configuration`, 'POST'],
    ['a query', `${authority}${tenant}/v2.0/.well-known/openid-configuration?x=1`],
    ['another path', `${authority}${tenant}/oauth2/v2.0/token`],
    ['another port', `https://login.microsoftonline.com:8443/${tenant}/v2.0/.well-known/openid-configuration`],
    ['plain HTTP', `http://login.microsoftonline.com/${tenant}/v2.0/.well-known/openid-configuration`, 'GET', 'http://login.microsoftonline.com/'],
    ['an unknown authority', `https://login.example.com/${tenant}/v2.0/.well-known/openid-configuration`, 'GET', 'https://login.example.com/'],
    ['a known host not configured', `https://login.microsoftonline.us/${tenant}/v2.0/.well-known/openid-configuration`],
    ['a malformed authority', `${authority}${tenant}/v2.0/.well-known/openid-configuration`, 'GET', 'not a url'],
  ];
  for (const [what, url, method, authorityHost] of refused) t.equal(ask(url, method, authorityHost), undefined, what);
});
