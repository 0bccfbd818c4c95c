// The lower bound of a fetch, as its own process: Node start-up plus three round trips over TLS —
// a request to Entra ID, the unauthenticated challenge to Key Vault, and one parallel round of
// authenticated reads — spoken the way the fetch speaks to each service: HTTP/1.1 to Entra ID,
// and to Key Vault HTTP/2 when the vault offers it (one connection for every read), else HTTP/1.1.
// Run with the same preload and CA as the fetch.
const http2 = require('node:http2');
const https = require('node:https');
const tls = require('node:tls');

const { BOUND_AUTHORITY, BOUND_TENANT, BOUND_VAULT, BOUND_TOKEN, BOUND_SECRETS } = process.env;
const agent = new https.Agent({ keepAlive: true });

function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      })
      .on('error', reject);
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
        return resolve({ get, close: () => {} });
      }
      const session = http2.connect(url.origin, { createConnection: () => socket });
      const h2get = (target, headers = {}) =>
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
      resolve({ get: h2get, close: () => session.close() });
    });
  });
}

async function main() {
  await get(`${BOUND_AUTHORITY}${BOUND_TENANT}/v2.0/.well-known/openid-configuration`);
  const vault = await connectVault(new URL(BOUND_VAULT));
  const names = BOUND_SECRETS.split(',');
  await vault.get(`${BOUND_VAULT}secrets/${names[0]}/?api-version=7.6`);
  const statuses = await Promise.all(
    names.map((name) => vault.get(`${BOUND_VAULT}secrets/${name}/?api-version=7.6`, { authorization: `Bearer ${BOUND_TOKEN}` })),
  );
  if (statuses.some((s) => s !== 200)) throw new Error(`bound reads failed: ${statuses.join(',')}`);
  vault.close();
  agent.destroy();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
