// End to end: admission → patched pod → the injected init container's command, run with its own
// environment against the Entra ID and Key Vault emulators → the app container's files.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import t from 'tap';
import { CLOUDS } from '../src/clouds.js';
import { createMutator } from '../webhook/mutate.js';
import { applyResponse, loadReview } from './fixtures/admission-fixtures.js';
import { buildDist, runCli } from './fixtures/dist.js';
import { CLIENT_ID, ISSUER, startFetchWorld, SUBJECT, TENANT_ID } from './fixtures/fetch-world.js';
import { fakeServiceAccountToken } from './fixtures/jwt.js';
import { loopbackChildEnv } from './fixtures/loopback.js';
import { memoryLookups } from './fixtures/memory-lookups.js';

const world = await startFetchWorld();
t.teardown(() => world.close());
const cli = await buildDist(world.dir);

world.vault.setSecret('db-password', 'e2e-db-password');
world.vault.setSecret('api-key', 'e2e-api-key');

// The fixture's Deployment pod runs as ServiceAccount shop/checkout, the subject federated in the emulator.
const mutator = createMutator(
  { image: 'akv-injector:e2e', cloud: CLOUDS.AzurePublicCloud, namespace: 'akv-injector' },
  memoryLookups({
    namespaces: [{ metadata: { name: 'shop' } }],
    serviceAccounts: [
      {
        metadata: {
          namespace: 'shop',
          name: 'checkout',
          annotations: { 'azure.workload.identity/client-id': CLIENT_ID, 'azure.workload.identity/tenant-id': TENANT_ID },
        },
      },
    ],
  }),
);

t.test('the injected init container fetches what the annotations ask for', async (t) => {
  const review = loadReview('deployment-pod');
  Object.assign(review.request.object.metadata!.annotations!, {
    'akv-injector.io/vault': 'kv-shop',
    'akv-injector.io/objects':
      '- objectName: db-password\n  objectType: secret\n  filePermission: 0440\n- objectName: api-key\n  objectType: secret\n  objectAlias: keys/api-key\n',
  });
  const result = await mutator(review.request);
  t.equal(result.outcome, 'injected', result.reason);
  const pod = applyResponse(review.request.object, result.response);
  const init = pod.spec?.initContainers?.find((c) => c.name === 'akv-injector') as V1Container;
  const app = pod.spec?.containers[0] as V1Container;

  // The kubelet's part, in a temp folder: project the token, create the emptyDir, run the container.
  const root = join(world.dir, 'node');
  const remap = (path: string): string => join(root, path);
  const tokenMount = init.volumeMounts?.find((m) => m.name === 'akv-injector-token')?.mountPath as string;
  const secretsMount = init.volumeMounts?.find((m) => m.name === 'akv-injector-secrets')?.mountPath as string;
  await mkdir(remap(tokenMount), { recursive: true });
  await mkdir(remap(secretsMount), { recursive: true });
  const env: Record<string, string> = Object.fromEntries((init.env ?? []).map((e) => [e.name, e.value ?? '']));
  await writeFile(remap(env.AZURE_FEDERATED_TOKEN_FILE as string), fakeServiceAccountToken({ issuer: ISSUER, subject: SUBJECT }));
  // Only what cannot be the same on one machine is remapped: paths into the temp folder, the emulators' ports.
  const portOf = (url: string): string => new URL(url).port;
  const remapped = {
    ...env,
    AZURE_FEDERATED_TOKEN_FILE: remap(env.AZURE_FEDERATED_TOKEN_FILE as string),
    AKV_INJECTOR_OUTPUT_DIR: remap(env.AKV_INJECTOR_OUTPUT_DIR as string),
    AZURE_AUTHORITY_HOST: (env.AZURE_AUTHORITY_HOST as string).replace(/\/$/, `:${portOf(world.entra.url)}/`),
    AKV_INJECTOR_VAULT_URL: (env.AKV_INJECTOR_VAULT_URL as string).replace(/\/$/, `:${world.vault.port}/`),
    PATH: process.env.PATH ?? '',
  };
  t.equal(env.AKV_INJECTOR_VAULT_URL, 'https://kv-shop.vault.azure.net/');
  t.equal(env.AZURE_AUTHORITY_HOST, 'https://login.microsoftonline.com/');

  const run = await runCli(cli, init.args ?? [], loopbackChildEnv(world.caFile, remapped));
  t.equal(run.code, 0, run.stderr);

  // What the app container sees at its read-only mount.
  const appMount = app.volumeMounts?.find((m) => m.name === 'akv-injector-secrets');
  t.match(appMount, { mountPath: secretsMount, readOnly: true });
  const seen = remap(appMount?.mountPath as string);
  t.equal(await readFile(join(seen, 'db-password'), 'utf8'), 'e2e-db-password');
  t.equal((await stat(join(seen, 'db-password'))).mode & 0o777, 0o440);
  t.equal(await readFile(join(seen, 'keys/api-key'), 'utf8'), 'e2e-api-key');
});
