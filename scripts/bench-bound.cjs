// The lower bound of a fetch, as its own process: bare Node.js start-up (no SDK, no bundle) plus three round trips
// over TLS, one after the other — the token request to Entra ID (the federated assertion read from the token file),
// the unauthenticated challenge to Key Vault, and one parallel round of authenticated reads — spoken the way the
// fetch speaks to each service: HTTP/1.1 to Entra ID, and to Key Vault HTTP/2 when the vault offers it (one
// connection for every read), else HTTP/1.1. Run with the same preloads and CA as the fetch.
const http2 = require('node:http2');
const https = require('node:https');
const tls = require('node:tls');
const fs = require('node:fs');
const { URLSearchParams } = require('node:url');

const { BOUND_VAULT, BOUND_SECRETS } = process.env;
const agent = new https.Agent({ keepAlive: true });

function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// A GET function for the vault: over one HTTP/2 session when the vault chooses h2, else HTTP/1.1.
function connectVault(url) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: url.hostname, port: Number(url.port || 443), servername: url.hostname, ALPNProtocols: ['h2', 'http/1.1'] });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') {
        socket.destroy();
        return resolve({ get: (target, headers) => request(target, { headers }).then((r) => r.status), close: () => {} });
      }
      const session = http2.connect(url.origin, { createConnection: () => socket });
      const get = (target, headers = {}) =>
        new Promise((done, fail) => {
          const { pathname, search } = new URL(target);
          const stream = session.request({ ':path': `${pathname}${search}`, ...headers });
          stream.on('response', (h) => {
            stream.resume();
            stream.on('end', () => done(h[':status']));
          });
          stream.on('error', fail);
          stream.end();
        });
      resolve({ get, close: () => session.close() });
    });
  });
}

/** The token request with the federated assertion from the token file: the access token (the first round trip). */
async function accessToken(env) {
  const form = new URLSearchParams({
    client_id: env.BOUND_CLIENT,
    scope: 'https://vault.azure.net/.default',
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: fs.readFileSync(env.BOUND_TOKEN_FILE, 'utf8').trim(),
  }).toString();
  const answer = await request(`${env.BOUND_AUTHORITY}${env.BOUND_TENANT}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(form) },
    body: form,
  });
  if (answer.status !== 200) throw new Error(`bound token request: ${answer.status}`);
  return JSON.parse(answer.body).access_token;
}

async function main() {
  const token = await accessToken(process.env);
  const vault = await connectVault(new URL(BOUND_VAULT));
  const names = BOUND_SECRETS.split(',');
  const challenge = await vault.get(`${BOUND_VAULT}secrets/${names[0]}/?api-version=7.6`);
  if (challenge !== 401) throw new Error(`bound challenge: ${challenge}`);
  const statuses = await Promise.all(names.map((name) => vault.get(`${BOUND_VAULT}secrets/${name}/?api-version=7.6`, { authorization: `Bearer ${token}` })));
  if (statuses.some((s) => s !== 200)) throw new Error(`bound reads failed: ${statuses.join(',')}`);
  vault.close();
  agent.destroy();
}

/**
 * Bare node:http2 to `origin`: one session over a TLS connection offering only h2, and a request that collects the
 * whole answer (its headers and body). The reads of bench-floor.cjs and of measure-transport.ts's bare side.
 */
function bareHttp2(origin) {
  const url = new URL(origin);
  const socket = tls.connect({ host: url.hostname, port: Number(url.port || 443), servername: url.hostname, ALPNProtocols: ['h2'] });
  const session = http2.connect(url.origin, { createConnection: () => socket });
  const request = (headers) =>
    new Promise((resolve, reject) => {
      const stream = session.request(headers, { endStream: true });
      stream.on('error', reject);
      stream.on('response', (raw) => {
        const chunks = [];
        stream.on('data', (chunk) => chunks.push(chunk));
        stream.on('end', () => resolve({ headers: raw, body: Buffer.concat(chunks) }));
      });
    });
  return { request, close: () => session.close() };
}

// bench-floor.cjs and scripts/measure-transport.ts take their token and make their reads the same way.
module.exports = { accessToken, bareHttp2 };

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
