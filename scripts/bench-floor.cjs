// The floor of a fetch's reads, as its own process: what reading the objects costs with the chosen SDK and none of
// our code. Bare Node.js with @azure/keyvault-secrets, bundled as the fetch is and run from a code cache
// (bench-floor-script.cjs, which bench:fetch runs; `node scripts/bench-floor.cjs` loads the SDK from node_modules,
// compiling it at every start, as this floor did until 2026-11-30). The SecretClient reads through the least
// HTTP/2 client that carries it (one connection, no time or size limits, no fallback), with a credential that makes
// the token request as the bound does (bench-bound.cjs); the first read alone (it takes the vault's challenge), the
// others at once, each value written to a file of its own as it arrives (bench:fetch removes them). No job to read,
// no retries, no log lines, no atomic publish. bench:fetch sets its 40 vs 1 objects beside the fetch's: what the SDK
// and Node.js take for 39 more objects, and what ours takes on top. Run with the same preloads and CA as the fetch.

const fs = require('node:fs');
const path = require('node:path');
const { createHttpHeaders } = require('@azure/core-rest-pipeline');
const { accessToken, bareHttp2 } = require('./bench-bound.cjs');

const { BOUND_VAULT, BOUND_SECRETS, FLOOR_OUT } = process.env;

/** An HttpClient over bare node:http2 (bench-bound.cjs): the request as the SDK built it, the answer's text. */
function http2Client(origin) {
  const vault = bareHttp2(origin);
  return {
    async sendRequest(request) {
      const target = new URL(request.url);
      const { headers, body } = await vault.request({ ':method': request.method, ':path': `${target.pathname}${target.search}`, ...request.headers.toJSON() });
      const responseHeaders = createHttpHeaders();
      for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':')) responseHeaders.set(name, String(value));
      return { request, status: headers[':status'], headers: responseHeaders, bodyAsText: body.toString('utf8') };
    },
    close: vault.close,
  };
}

async function main() {
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
