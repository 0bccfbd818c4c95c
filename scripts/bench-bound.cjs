// The lower bound of a fetch, as its own process: Node start-up plus three round trips over TLS —
// a token-endpoint request to Entra ID, the unauthenticated challenge to Key Vault, and one
// parallel round of authenticated reads. Run with the same preload and CA as the fetch.
const https = require('node:https');

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

async function main() {
  await get(`${BOUND_AUTHORITY}${BOUND_TENANT}/v2.0/.well-known/openid-configuration`);
  await get(`${BOUND_VAULT}secrets/${BOUND_SECRETS.split(',')[0]}/?api-version=7.6`);
  const statuses = await Promise.all(
    BOUND_SECRETS.split(',').map((name) => get(`${BOUND_VAULT}secrets/${name}/?api-version=7.6`, { authorization: `Bearer ${BOUND_TOKEN}` })),
  );
  if (statuses.some((s) => s !== 200)) throw new Error(`bound reads failed: ${statuses.join(',')}`);
  agent.destroy();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
