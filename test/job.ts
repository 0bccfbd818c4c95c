// The fetch role's environment: a valid job, and every missing or invalid variable named at once.
import t from 'tap';
import { DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_MS, readJob, requestTimeoutMs } from '../src/fetch/job.js';

const VALID = {
  AZURE_CLIENT_ID: '11111111-2222-3333-4444-555555555555',
  AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/akv-injector/azure-identity-token',
  AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
  AKV_INJECTOR_VAULT_URL: 'https://My-Vault.vault.azure.net',
  AKV_INJECTOR_OBJECTS: '[{"objectName":"db-password","objectType":"secret"}]',
  AKV_INJECTOR_OUTPUT_DIR: '/mnt/secrets-store',
};

t.test('a valid environment', async (t) => {
  const { job, problems } = readJob(VALID);
  t.same(problems, []);
  t.match(job, {
    clientId: VALID.AZURE_CLIENT_ID,
    vaultUrl: 'https://my-vault.vault.azure.net/',
    outputDir: '/mnt/secrets-store',
    timeoutMs: DEFAULT_TIMEOUT_MS,
    concurrency: DEFAULT_CONCURRENCY,
    objects: [{ objectName: 'db-password', objectType: 'secret', objectAlias: 'db-password' }],
  });
});

t.test('timeout and concurrency from flags win over the environment', async (t) => {
  const env = { ...VALID, AKV_INJECTOR_TIMEOUT: '30s', AKV_INJECTOR_CONCURRENCY: '4' };
  t.match(readJob(env).job, { timeoutMs: 30_000, concurrency: 4 });
  t.match(readJob(env, { timeout: '1m30s', concurrency: '8' }).job, { timeoutMs: 90_000, concurrency: 8 });
});

t.test('every problem, each naming its variable', async (t) => {
  const cases: Array<{ name: string; env: Record<string, string>; problem: RegExp }> = [
    { name: 'missing client', env: { AZURE_CLIENT_ID: '' }, problem: /^AZURE_CLIENT_ID is not set/ },
    { name: 'client not a GUID', env: { AZURE_CLIENT_ID: 'my-app' }, problem: /AZURE_CLIENT_ID "my-app" is not a client ID/ },
    { name: 'tenant with a slash', env: { AZURE_TENANT_ID: 'a/b' }, problem: /AZURE_TENANT_ID "a\/b" is not a tenant ID/ },
    {
      name: 'http authority',
      env: { AZURE_AUTHORITY_HOST: 'http://login.microsoftonline.com/' },
      problem: /AZURE_AUTHORITY_HOST .* must be an https:\/\/ URL/,
    },
    {
      name: 'vault not key vault',
      env: { AKV_INJECTOR_VAULT_URL: 'https://evil.example.com/' },
      problem: /AKV_INJECTOR_VAULT_URL "https:\/\/evil.example.com\/" host "evil.example.com" is not a Key Vault host/,
    },
    { name: 'vault http', env: { AKV_INJECTOR_VAULT_URL: 'http://kv1.vault.azure.net/' }, problem: /must use https:\/\// },
    { name: 'relative output', env: { AKV_INJECTOR_OUTPUT_DIR: 'out' }, problem: /AKV_INJECTOR_OUTPUT_DIR "out" must be an absolute path/ },
    { name: 'objects not JSON', env: { AKV_INJECTOR_OBJECTS: '- objectName: a' }, problem: /AKV_INJECTOR_OBJECTS is not valid JSON/ },
    {
      name: 'objects invalid',
      env: { AKV_INJECTOR_OBJECTS: '[{"objectName":"a","objectType":"blob"}]' },
      problem: /AKV_INJECTOR_OBJECTS: object 0 "a": objectType "blob"/,
    },
    { name: 'timeout', env: { AKV_INJECTOR_TIMEOUT: 'soon' }, problem: /timeout "soon" .* must be a duration/ },
    // Past 2^31-1 ms a Node.js timer fires at once: 600h would fail before anything was fetched.
    {
      name: 'timeout beyond the range',
      env: { AKV_INJECTOR_TIMEOUT: '600h' },
      problem: /^timeout "600h" \(--timeout or AKV_INJECTOR_TIMEOUT\) must be a duration from 1s to 24h, such as 90s or 2m$/,
    },
    { name: 'timeout below the range', env: { AKV_INJECTOR_TIMEOUT: '500ms' }, problem: /timeout "500ms" .* from 1s to 24h/ },
    { name: 'timeout zero', env: { AKV_INJECTOR_TIMEOUT: '0' }, problem: /timeout "0" .* from 1s to 24h/ },
    { name: 'concurrency', env: { AKV_INJECTOR_CONCURRENCY: '0' }, problem: /concurrency "0" .* from 1 to 256/ },
  ];
  for (const c of cases) {
    const { job, problems } = readJob({ ...VALID, ...c.env });
    t.equal(job, undefined, `${c.name}: no job`);
    t.match(problems.join('\n'), c.problem, c.name);
  }
  t.equal(readJob({}).problems.length, 7, 'an empty environment lists all seven required variables');
});

t.test('the ends of the timeout range are accepted', async (t) => {
  t.match(readJob({ ...VALID, AKV_INJECTOR_TIMEOUT: '1s' }).job, { timeoutMs: 1000 });
  t.match(readJob({ ...VALID, AKV_INJECTOR_TIMEOUT: '24h' }).job, { timeoutMs: 86_400_000 });
});

t.test('one request waits a quarter of the deadline, from 1s to 20s', async (t) => {
  const cases: Array<[number, number]> = [
    [1000, 1000],
    [3000, 1000],
    [8000, 2000],
    [40_000, 10_000],
    [120_000, 20_000],
    [86_400_000, 20_000],
  ];
  for (const [timeoutMs, expected] of cases) t.equal(requestTimeoutMs({ timeoutMs }), expected, `deadline ${timeoutMs} ms`);
});
