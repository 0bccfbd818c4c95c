// The stage of the image build's rehearsed fetch (rehearsal.ts): Entra ID's token endpoint and Key Vault's challenge
// and secret reads, in the REST protocol's shapes, served over HTTPS (HTTP/2 or HTTP/1.1 by ALPN, as Key Vault) on
// the loopback interface, with a certificate made for the occasion for their real host names. Only the warm-up loads
// it, outside the fetch's script: its code is not the fetch's and stays out of the fetch's code cache.
import { randomUUID } from 'node:crypto';
import http2, { type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { AddressInfo } from 'node:net';
import { generateCa, generateServingCert } from '../certs.js';
import type { RehearsalStage } from './rehearsal.js';

const ENTRA_HOST = 'login.microsoftonline.com';
const VAULT_HOST = 'rehearsal.vault.azure.net';
const SECRETS: Readonly<Record<string, string>> = { 'db-password': 'rehearsal-password', 'api-key': 'rehearsal-api-key' };
/** A request body the stage reads at most (a token request is about 2 KB). */
const MAX_BODY_BYTES = 64 * 1024;

/** Start the stage on 127.0.0.1; `close` stops it. */
export async function startRehearsalStage(): Promise<RehearsalStage & { close(): Promise<void> }> {
  const ca = await generateCa({ commonName: 'akv-injector rehearsal CA', validityDays: 1 });
  const serving = await generateServingCert(ca, { dnsNames: [ENTRA_HOST, VAULT_HOST], validityDays: 1 });
  const tenantId = randomUUID();
  const server = http2.createSecureServer({ key: serving.keyPem, cert: serving.certPem, allowHTTP1: true }, (request, response) =>
    answer(request, response, tenantId),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const lookup: LookupFunction = (hostname, options, callback) => {
    if (hostname !== ENTRA_HOST && hostname !== VAULT_HOST) {
      callback(Object.assign(new Error(`the rehearsal reaches only ${ENTRA_HOST} and ${VAULT_HOST}, not ${hostname}`), { code: 'ENOTFOUND' }), '', 4);
    } else if (options.all) {
      (callback as unknown as (error: null, addresses: Array<{ address: string; family: number }>) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
    } else {
      callback(null, '127.0.0.1', 4);
    }
  };
  const agent = new https.Agent({ ca: ca.certPem, lookup });
  return {
    authorityHost: `https://${ENTRA_HOST}:${port}/`,
    tenantId,
    vaultUrl: `https://${VAULT_HOST}:${port}/`,
    secrets: SECRETS,
    agent,
    close: async () => {
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function answer(request: Http2ServerRequest, response: Http2ServerResponse, tenantId: string): void {
  const url = new URL(request.url, `https://${request.headers.host ?? request.authority}`);
  const send = (status: number, body: object, headers: Record<string, string> = {}): void => {
    response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomUUID(), ...headers });
    response.end(JSON.stringify(body));
  };
  let bytes = 0;
  request.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > MAX_BODY_BYTES) request.destroy();
  });
  request.on('end', () => {
    if (url.hostname === ENTRA_HOST && request.method === 'POST' && url.pathname === `/${tenantId}/oauth2/v2.0/token`) {
      send(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: randomUUID() });
      return;
    }
    const [, collection, name = ''] = url.pathname.split('/');
    const value = SECRETS[name];
    if (url.hostname !== VAULT_HOST || request.method !== 'GET' || collection !== 'secrets' || value === undefined) {
      send(404, { error: { code: 'NotFound', message: 'The rehearsal has no such object.' } });
    } else if (request.headers.authorization === undefined) {
      send(
        401,
        { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
        { 'www-authenticate': `Bearer authorization="https://${ENTRA_HOST}/${tenantId}", resource="https://vault.azure.net"` },
      );
    } else {
      const attributes = { enabled: true, created: 1_767_225_600, updated: 1_767_225_600, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 };
      send(200, { value, id: `https://${VAULT_HOST}/secrets/${name}/${randomUUID().replaceAll('-', '')}`, attributes });
    }
  });
}
