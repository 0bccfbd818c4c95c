// The floor of a fetch's reads, as its own process: what reading the objects costs with the chosen SDK and none of
// our code. Bare Node.js loads @azure/keyvault-secrets from node_modules; the SecretClient reads through the least
// HTTP/2 client that carries it (one connection, no time or size limits, no fallback), with a credential that makes
// the token request as the bound does (bench-bound.cjs); the first read alone (it takes the vault's challenge), the
// others at once, each value written to a file of its own as it arrives (bench:fetch removes them). No job to read,
// no retries, no log lines, no atomic publish. bench:fetch sets its 40 vs 1 objects beside the fetch's: what the SDK
// and Node.js take for 39 more objects, and what ours takes on top. Run with the same preloads and CA as the fetch.
const http2 = require('node:http2');
const tls = require('node:tls');
const fs = require('node:fs');
const path = require('node:path');
const { accessToken } = require('./bench-bound.cjs');

const { BOUND_VAULT, BOUND_SECRETS, FLOOR_OUT } = process.env;

/** An HttpClient over one HTTP/2 session to the vault: the request as the SDK built it, the answer's text. */
function http2Client(origin) {
  const url = new URL(origin);
  const socket = tls.connect({ host: url.hostname, port: Number(url.port || 443), servername: url.hostname, ALPNProtocols: ['h2'] });
  const session = http2.connect(url.origin, { createConnection: () => socket });
  const { createHttpHeaders } = require('@azure/core-rest-pipeline');
  return {
    sendRequest(request) {
      return new Promise((resolve, reject) => {
        const target = new URL(request.url);
        const headers = { ':method': request.method, ':path': `${target.pathname}${target.search}` };
        Object.assign(headers, request.headers.toJSON());
        const stream = session.request(headers, { endStream: true });
        stream.on('error', reject);
        stream.on('response', (raw) => {
          const chunks = [];
          stream.on('data', (chunk) => chunks.push(chunk));
          stream.on('end', () => {
            const responseHeaders = createHttpHeaders();
            for (const [name, value] of Object.entries(raw)) if (!name.startsWith(':')) responseHeaders.set(name, String(value));
            resolve({ request, status: raw[':status'], headers: responseHeaders, bodyAsText: Buffer.concat(chunks).toString('utf8') });
          });
        });
      });
    },
    close: () => session.close(),
  };
}

async function main() {
  // The fetch's V8 flags (src/fetch/compile-cache.ts): no TurboFan on Node.js ≥ 22.
  if (Number(process.versions.node.split('.')[0]) >= 22) require('node:v8').setFlagsFromString('--no-turbofan');
  const { SecretClient } = require('@azure/keyvault-secrets');
  const httpClient = http2Client(BOUND_VAULT);
  const credential = { getToken: async () => ({ token: await accessToken(process.env), expiresOnTimestamp: Date.now() + 3_600_000 }) };
  const client = new SecretClient(BOUND_VAULT, credential, { httpClient, retryOptions: { maxRetries: 0 } });
  const out = fs.mkdtempSync(path.join(FLOOR_OUT, 'floor-'));
  const read = async (name) => fs.writeFileSync(path.join(out, name), (await client.getSecret(name)).value ?? '', { mode: 0o644 });
  const [first, ...rest] = BOUND_SECRETS.split(',');
  await read(first);
  await Promise.all(rest.map(read));
  httpClient.close();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
