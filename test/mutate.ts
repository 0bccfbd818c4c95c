// Admission end to end without HTTP: every fixture pod through decide → resolve → inject → patch,
// the patch applied and the resulting pod checked against the API server's rules.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import t from 'tap';
import { CLOUDS } from '../src/clouds.js';
import { createMutator, type MutationResult } from '../webhook/mutate.js';
import type { WebhookSettings } from '../webhook/settings.js';
import { applyResponse, loadReview, type FixtureName } from './fixtures/admission-fixtures.js';
import { memoryLookups, type MemoryCluster } from './fixtures/memory-lookups.js';
import { podViolations } from './fixtures/pod-rules.js';

const CLIENT = '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SETTINGS: WebhookSettings = {
  image: 'ghcr.io/akv-injector/akv-injector:0.1.0',
  windowsImage: 'ghcr.io/akv-injector/akv-injector:0.1.0-windows',
  cloud: CLOUDS.AzurePublicCloud,
  namespace: 'akv-injector',
  tenantId: TENANT,
};

const sa = (namespace: string, name: string, annotations: Record<string, string> = { 'azure.workload.identity/client-id': CLIENT }) => ({
  metadata: { namespace, name, annotations },
});
const CLUSTER: MemoryCluster = {
  namespaces: [
    { metadata: { name: 'shop' } },
    { metadata: { name: 'finance', annotations: { 'akv-injector.io/cloud': 'AzureUSGovernmentCloud' } } },
    {
      metadata: {
        name: 'team-wide',
        labels: { 'akv-injector.io/inject': 'enabled' },
        annotations: {
          'akv-injector.io/vault': 'kv-team',
          'akv-injector.io/objects': '[{"objectName":"team-secret","objectType":"secret"}]',
          'akv-injector.io/mount-path': '/etc/team-secrets',
        },
      },
    },
  ],
  serviceAccounts: [
    sa('shop', 'checkout', { 'azure.workload.identity/client-id': CLIENT, 'azure.workload.identity/tenant-id': 'contoso.onmicrosoft.com' }),
    sa('finance', 'ledger'),
    sa('shop', 'reports'),
    sa('shop', 'payments'),
    sa('shop', 'orders'),
    sa('shop', 'legacy-api'),
    sa('team-wide', 'checkout'),
  ],
  secretProviderClasses: [
    {
      metadata: { namespace: 'shop', name: 'checkout-csi' },
      spec: {
        provider: 'azure',
        parameters: {
          keyvaultName: ' kv-legacy ',
          clientID: CLIENT,
          tenantId: 'legacy-tenant.onmicrosoft.com',
          cloudName: 'AzureCloud',
          usePodIdentity: 'false',
          objects:
            'array:\n  - |\n    objectName: legacy-password\n    objectType: secret\n    objectVersion: ""\n  - |\n    objectName: legacy-cert\n    objectType: cert\n    filePermission: 0400\n',
        },
        secretObjects: [{ secretName: 'synced', type: 'Opaque', data: [{ objectName: 'legacy-password', key: 'password' }] }],
      },
    },
    { metadata: { namespace: 'shop', name: 'gcp-class' }, spec: { provider: 'gcp', parameters: {} } },
    {
      metadata: { namespace: 'shop', name: 'pod-identity' },
      spec: { provider: 'azure', parameters: { keyvaultName: 'kv-x', usePodIdentity: 'True', objects: '[]' } },
    },
  ],
};

const mutator = createMutator(SETTINGS, memoryLookups(CLUSTER));

async function admit(
  name: FixtureName,
  edit: (pod: V1Pod) => void = () => {},
  options: { namespace?: string; mutate?: typeof mutator } = {},
): Promise<{ result: MutationResult; before: V1Pod; after: V1Pod }> {
  const review = loadReview(name);
  edit(review.request.object);
  if (options.namespace !== undefined) review.request.namespace = options.namespace;
  const result = await (options.mutate ?? mutator)(review.request);
  return { result, before: review.request.object, after: applyResponse(review.request.object, result.response) };
}

const env = (c: V1Container | undefined, name: string): string | undefined => c?.env?.find((e) => e.name === name)?.value;
const names = (list: Array<{ name: string }> | undefined): string[] => (list ?? []).map((x) => x.name);

interface Case {
  fixture: FixtureName;
  initOrder: string[];
  mounted: string[];
  vaultUrl: string;
  tenant: string;
  windows?: boolean;
}

const CASES: Case[] = [
  {
    fixture: 'deployment-pod',
    initOrder: ['akv-injector'],
    mounted: ['checkout'],
    vaultUrl: 'https://kv-shop.vault.azure.net/',
    tenant: 'contoso.onmicrosoft.com',
  },
  { fixture: 'statefulset-pod', initOrder: ['akv-injector'], mounted: ['ledger'], vaultUrl: 'https://kv-shop.vault.usgovcloudapi.net/', tenant: TENANT },
  { fixture: 'job-pod', initOrder: ['akv-injector'], mounted: ['report'], vaultUrl: 'https://kv-shop.vault.azure.net/', tenant: TENANT },
  {
    fixture: 'istio-pod',
    initOrder: ['istio-validation', 'istio-proxy', 'akv-injector'],
    mounted: ['payments'],
    vaultUrl: 'https://kv-shop.vault.azure.net/',
    tenant: TENANT,
  },
  { fixture: 'multi-container-pod', initOrder: ['akv-injector'], mounted: ['api', 'worker'], vaultUrl: 'https://kv-shop.vault.azure.net/', tenant: TENANT },
  { fixture: 'windows-pod', initOrder: ['akv-injector'], mounted: ['legacy-api'], vaultUrl: 'https://kv-shop.vault.azure.net/', tenant: TENANT, windows: true },
];

t.test('every fixture pod is injected into a valid pod, keeping all it had', async (t) => {
  for (const c of CASES) {
    const { result, before, after } = await admit(c.fixture);
    t.equal(result.outcome, 'injected', `${c.fixture}: ${result.reason}`);
    t.same(podViolations(after), [], `${c.fixture}: the resulting pod passes the schema and the API server's rules`);
    t.same(names(after.spec?.initContainers), c.initOrder, `${c.fixture}: init container order`);
    t.equal(after.metadata?.annotations?.['akv-injector.io/status'], 'injected');

    // Nothing the user wrote is removed or changed.
    t.same(after.spec?.volumes?.slice(0, before.spec?.volumes?.length ?? 0), before.spec?.volumes ?? [], `${c.fixture}: volumes kept in place`);
    for (const original of [...(before.spec?.containers ?? []), ...(before.spec?.initContainers ?? [])]) {
      const now = [...(after.spec?.containers ?? []), ...(after.spec?.initContainers ?? [])].find((x) => x.name === original.name);
      t.same(now?.env, original.env, `${c.fixture}/${original.name}: env kept`);
      t.same(now?.volumeMounts?.slice(0, original.volumeMounts?.length ?? 0), original.volumeMounts, `${c.fixture}/${original.name}: mounts kept`);
    }

    const init = after.spec?.initContainers?.find((x) => x.name === 'akv-injector');
    t.equal(init?.image, c.windows ? SETTINGS.windowsImage : SETTINGS.image, `${c.fixture}: image`);
    t.same(init?.args, ['fetch']);
    t.equal(init?.terminationMessagePolicy, 'FallbackToLogsOnError');
    t.same(
      init?.volumeMounts,
      [
        { name: 'akv-injector-token', mountPath: '/var/run/secrets/akv-injector', readOnly: true },
        { name: 'akv-injector-secrets', mountPath: '/mnt/secrets-store' },
      ],
      `${c.fixture}: the init container mounts the token read-only and the secrets read-write`,
    );
    t.equal(env(init, 'AZURE_CLIENT_ID'), CLIENT);
    t.equal(env(init, 'AZURE_TENANT_ID'), c.tenant, `${c.fixture}: tenant`);
    t.equal(env(init, 'AZURE_FEDERATED_TOKEN_FILE'), '/var/run/secrets/akv-injector/azure-identity-token');
    t.equal(env(init, 'AKV_INJECTOR_VAULT_URL'), c.vaultUrl, `${c.fixture}: vault URL`);
    t.equal(env(init, 'AZURE_AUTHORITY_HOST'), c.vaultUrl.includes('usgov') ? 'https://login.microsoftonline.us/' : 'https://login.microsoftonline.com/');
    t.equal(env(init, 'AKV_INJECTOR_OUTPUT_DIR'), '/mnt/secrets-store');
    t.ok(Array.isArray(JSON.parse(env(init, 'AKV_INJECTOR_OBJECTS') ?? 'null')), 'the objects are a JSON array');

    const token = after.spec?.volumes?.find((v) => v.name === 'akv-injector-token');
    t.same(token?.projected?.sources, [
      { serviceAccountToken: { audience: 'api://AzureADTokenExchange', expirationSeconds: 3600, path: 'azure-identity-token' } },
    ]);
    const secrets = after.spec?.volumes?.find((v) => v.name === 'akv-injector-secrets');
    t.same(secrets?.emptyDir, c.windows ? { sizeLimit: '16Mi' } : { medium: 'Memory', sizeLimit: '16Mi' }, `${c.fixture}: tmpfs on Linux, disk on Windows`);

    for (const container of [...(after.spec?.containers ?? []), ...(after.spec?.initContainers ?? [])]) {
      const mounts = container.volumeMounts ?? [];
      if (container.name !== 'akv-injector')
        t.notOk(
          mounts.some((m) => m.name === 'akv-injector-token'),
          `${c.fixture}/${container.name}: no token mount`,
        );
      const secretsMount = mounts.find((m) => m.name === 'akv-injector-secrets');
      if (c.mounted.includes(container.name))
        t.same(
          secretsMount,
          { name: 'akv-injector-secrets', mountPath: '/mnt/secrets-store', readOnly: true },
          `${c.fixture}/${container.name}: read-only mount`,
        );
      else if (container.name !== 'akv-injector') t.equal(secretsMount, undefined, `${c.fixture}/${container.name}: not mounted`);
    }
    if (c.windows) t.equal(init?.securityContext, undefined, 'no Linux-only security fields on Windows');
    else
      t.same(init?.securityContext, {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });

    // Idempotent: the injected pod sent again (reinvocation, retry) gets no patch.
    const again = await mutator({ ...loadReview(c.fixture).request, object: after });
    t.equal(again.response.patch, undefined, `${c.fixture}: no patch the second time`);
    t.equal(again.outcome, 'skipped');
    const withoutStatus = structuredClone(after);
    delete withoutStatus.metadata?.annotations?.['akv-injector.io/status'];
    const reinvoked = await mutator({ ...loadReview(c.fixture).request, object: withoutStatus });
    t.same(applyResponse(withoutStatus, reinvoked.response), after, `${c.fixture}: re-running on an injected pod only restores the status`);
  }
});

t.test('annotations change the injection', async (t) => {
  const { after } = await admit('deployment-pod', (pod) => {
    Object.assign(pod.metadata!.annotations!, {
      'akv-injector.io/init-first': 'true',
      'akv-injector.io/mount-path': '/etc/secrets/',
      'akv-injector.io/token-expiration': '7200',
      'akv-injector.io/client-id': '11111111-2222-3333-4444-555555555555',
      'akv-injector.io/tenant-id': 'fabrikam.onmicrosoft.com',
      'akv-injector.io/cloud': 'azurechinacloud',
      'akv-injector.io/vault': 'https://KV-Shop.vault.azure.cn:443/',
    });
    pod.spec!.initContainers = [{ name: 'migrate', image: 'migrate:1' }];
    pod.spec!.securityContext = { runAsUser: 1000 };
  });
  t.same(podViolations(after), []);
  t.same(names(after.spec?.initContainers), ['akv-injector', 'migrate'], 'init-first');
  const init = after.spec?.initContainers?.[0];
  t.equal(env(init, 'AKV_INJECTOR_OUTPUT_DIR'), '/etc/secrets');
  t.equal(env(init, 'AZURE_CLIENT_ID'), '11111111-2222-3333-4444-555555555555', 'pod annotation beats the ServiceAccount');
  t.equal(env(init, 'AZURE_TENANT_ID'), 'fabrikam.onmicrosoft.com');
  t.equal(env(init, 'AZURE_AUTHORITY_HOST'), 'https://login.chinacloudapi.cn/');
  t.equal(env(init, 'AKV_INJECTOR_VAULT_URL'), 'https://kv-shop.vault.azure.cn/');
  t.equal(init?.securityContext?.runAsUser, undefined, 'the pod runs as 1000: the init container too, so the app owns its files');
  t.equal(after.spec?.volumes?.find((v) => v.name === 'akv-injector-token')?.projected?.sources?.[0]?.serviceAccountToken?.expirationSeconds, 7200);
  t.same(after.spec?.containers[0]?.volumeMounts?.at(-1), { name: 'akv-injector-secrets', mountPath: '/etc/secrets', readOnly: true });
  t.same(
    JSON.parse(env(init, 'AKV_INJECTOR_OBJECTS') ?? ''),
    [
      {
        objectName: 'db-password',
        objectType: 'secret',
        objectVersion: '',
        objectAlias: 'db-password',
        objectFormat: 'pem',
        objectEncoding: 'utf-8',
        filePermission: '0440',
        objectVersionHistory: 1,
        optional: false,
      },
      {
        objectName: 'web-tls',
        objectType: 'secret',
        objectVersion: '',
        objectAlias: 'tls/tls.pem',
        objectFormat: 'pem',
        objectEncoding: 'utf-8',
        filePermission: '0644',
        objectVersionHistory: 1,
        optional: false,
      },
    ],
    'the job is normalized: every field explicit',
  );
});

t.test('a SecretProviderClass carries over, pod annotations win over it', async (t) => {
  const { result, after } = await admit('deployment-pod', (pod) => {
    const a = pod.metadata!.annotations!;
    delete a['akv-injector.io/vault'];
    delete a['akv-injector.io/objects'];
    a['akv-injector.io/secret-provider-class'] = 'checkout-csi';
  });
  t.equal(result.outcome, 'injected', result.reason);
  const init = after.spec?.initContainers?.find((c) => c.name === 'akv-injector');
  t.equal(env(init, 'AKV_INJECTOR_VAULT_URL'), 'https://kv-legacy.vault.azure.net/', 'keyvaultName trimmed, cloudName alias AzureCloud');
  t.equal(env(init, 'AZURE_TENANT_ID'), 'legacy-tenant.onmicrosoft.com', 'the legacy tenantId when tenantID is empty, over the ServiceAccount');
  t.match(JSON.parse(env(init, 'AKV_INJECTOR_OBJECTS') ?? ''), [
    { objectName: 'legacy-password' },
    { objectName: 'legacy-cert', objectType: 'cert', filePermission: '0400' },
  ]);
  t.match(result.response.warnings, [/secretObjects \(sync to Kubernetes Secrets\) is ignored/], 'admitted with a warning');

  const overridden = await admit('deployment-pod', (pod) => {
    pod.metadata!.annotations!['akv-injector.io/secret-provider-class'] = 'checkout-csi';
  });
  t.equal(env(overridden.after.spec?.initContainers?.at(-1), 'AKV_INJECTOR_VAULT_URL'), 'https://kv-shop.vault.azure.net/', 'the pod annotation wins');
});

t.test('namespace opt-in and namespace defaults', async (t) => {
  const { result, after } = await admit(
    'deployment-pod',
    (pod) => {
      const a = pod.metadata!.annotations!;
      delete a['akv-injector.io/inject'];
      delete a['akv-injector.io/vault'];
      delete a['akv-injector.io/objects'];
    },
    { namespace: 'team-wide' },
  );
  t.equal(result.outcome, 'injected');
  t.equal(result.reason, 'namespace label');
  const init = after.spec?.initContainers?.at(-1);
  t.equal(env(init, 'AKV_INJECTOR_VAULT_URL'), 'https://kv-team.vault.azure.net/');
  t.equal(env(init, 'AKV_INJECTOR_OUTPUT_DIR'), '/etc/team-secrets');

  const optOut = await admit(
    'deployment-pod',
    (pod) => {
      pod.metadata!.annotations!['akv-injector.io/inject'] = 'false';
    },
    { namespace: 'team-wide' },
  );
  t.match(optOut.result, { outcome: 'skipped', reason: 'pod opted out', response: { allowed: true } });
  t.equal(optOut.result.response.patch, undefined);
});

t.test('requests that are never injected: allowed, no patch, with the reason', async (t) => {
  const cases: Array<{ name: string; change: (r: ReturnType<typeof loadReview>['request']) => void; reason: RegExp }> = [
    { name: 'UPDATE', change: (r) => (r.operation = 'UPDATE'), reason: /operation UPDATE/ },
    { name: 'DELETE', change: (r) => (r.operation = 'DELETE'), reason: /operation DELETE/ },
    { name: 'a deployment', change: (r) => (r.resource = { group: 'apps', version: 'v1', resource: 'deployments' }), reason: /apps\/deployments is not a pod/ },
    { name: 'a subresource', change: (r) => (r.subResource = 'ephemeralcontainers'), reason: /pods\/ephemeralcontainers is not a pod/ },
    { name: 'kube-system', change: (r) => (r.namespace = 'kube-system'), reason: /namespace kube-system is never injected/ },
    { name: 'kube-public', change: (r) => (r.namespace = 'kube-public'), reason: /never injected/ },
    { name: 'own namespace', change: (r) => (r.namespace = 'akv-injector'), reason: /the webhook's own/ },
    { name: 'no opt-in', change: (r) => delete r.object.metadata!.annotations!['akv-injector.io/inject'], reason: /not opted in/ },
  ];
  for (const c of cases) {
    const review = loadReview('deployment-pod');
    c.change(review.request);
    const result = await mutator(review.request);
    t.equal(result.outcome, 'skipped', c.name);
    t.match(result.reason, c.reason, c.name);
    t.same(result.response, { uid: review.request.uid, allowed: true }, `${c.name}: plain allow`);
  }
  const dryRun = loadReview('deployment-pod');
  dryRun.request.dryRun = true;
  t.equal((await mutator(dryRun.request)).outcome, 'injected', 'dry-run requests are mutated like any other');
});

t.test('invalid configuration: denied with one message listing every problem', async (t) => {
  const cases: Array<{ name: string; edit: (pod: V1Pod) => void; fixture?: FixtureName; mutate?: typeof mutator; expect: RegExp[] }> = [
    {
      name: 'many problems at once',
      edit: (pod) =>
        Object.assign(pod.metadata!.annotations!, {
          'akv-injector.io/vault': 'https://evil.example.com/',
          'akv-injector.io/objects': '[{"objectName":"a","objectType":"blob"},{"objectName":"b","objectType":"secret","objectAlias":"../../etc/passwd"}]',
          'akv-injector.io/mount-path': 'relative/path',
          'akv-injector.io/token-expiration': '60',
          'akv-injector.io/containers': 'checkout,missing',
          'akv-injector.io/init-first': 'maybe',
          'akv-injector.io/cloud': 'AzureGermanCloud',
          'akv-injector.io/client-id': 'not-a-guid',
        }),
      expect: [
        /^akv-injector: pod shop\/checkout-7d9f8b6c5-\* cannot be injected:$/m,
        /^- annotation akv-injector.io\/cloud on the pod: "AzureGermanCloud" is not a known cloud; use one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud$/m,
        /^- annotation akv-injector.io\/vault on the pod: "https:\/\/evil.example.com\/" host "evil.example.com" is not a Key Vault host; it must end in .vault.azure.net \(cloud AzurePublicCloud\)$/m,
        /^- annotation akv-injector.io\/objects on the pod: object 0 "a": objectType "blob" is not one of secret, key, cert$/m,
        /^- annotation akv-injector.io\/objects on the pod: object 1 "b": objectAlias "..\/..\/etc\/passwd" must not contain ".."/m,
        /^- annotation akv-injector.io\/client-id on the pod: "not-a-guid" is not a client ID/m,
        /^- annotation akv-injector.io\/mount-path on the pod: "relative\/path" must be an absolute path, such as \/mnt\/secrets-store$/m,
        /^- annotation akv-injector.io\/containers on the pod: "missing" is not a container of this pod; its containers are checkout$/m,
        /^- annotation akv-injector.io\/token-expiration on the pod: "60" must be a whole number of seconds from 600 to 86400$/m,
        /^- annotation akv-injector.io\/init-first on the pod: "maybe" must be "true" or "false"$/m,
      ],
    },
    {
      name: 'inject value',
      edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/inject'] = 'yes'),
      expect: [/annotation akv-injector.io\/inject: "yes" must be "true" or "false"/],
    },
    {
      name: 'no vault, no objects',
      edit: (pod) => {
        delete pod.metadata!.annotations!['akv-injector.io/vault'];
        delete pod.metadata!.annotations!['akv-injector.io/objects'];
      },
      expect: [/no vault: set annotation akv-injector.io\/vault/, /no objects: set annotation akv-injector.io\/objects/],
    },
    {
      name: 'objects not YAML',
      edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/objects'] = '[{"objectName": '),
      expect: [/annotation akv-injector.io\/objects on the pod: is not valid YAML or JSON/],
    },
    {
      name: 'vault URL of another cloud',
      edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/vault'] = 'https://kv1.vault.azure.cn/'),
      expect: [/must end in .vault.azure.net \(cloud AzurePublicCloud\)/],
    },
    {
      name: 'no client ID anywhere',
      edit: (pod) => (pod.spec!.serviceAccountName = 'nobody'),
      expect: [
        /no client ID: set annotation akv-injector.io\/client-id on the pod, or azure.workload.identity\/client-id on ServiceAccount shop\/nobody \(which does not exist\)/,
      ],
    },
    {
      name: 'no tenant anywhere',
      mutate: createMutator({ ...SETTINGS, tenantId: undefined }, memoryLookups(CLUSTER)),
      fixture: 'job-pod',
      edit: () => {},
      expect: [
        /no tenant ID: set annotation akv-injector.io\/tenant-id on the pod, azure.workload.identity\/tenant-id on ServiceAccount shop\/reports, or the webhook's --tenant-id/,
      ],
    },
    {
      name: 'mount path clash',
      edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/mount-path'] = '/var/run/secrets/kubernetes.io/serviceaccount'),
      expect: [/container checkout already mounts volume kube-api-access-7kq2x at \/var\/run\/secrets\/kubernetes.io\/serviceaccount/],
    },
    {
      name: 'mount path over the token',
      edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/mount-path'] = '/var/run/secrets'),
      expect: [/must not overlap \/var\/run\/secrets\/akv-injector/],
    },
    {
      name: 'Windows without an image',
      fixture: 'windows-pod',
      mutate: createMutator({ ...SETTINGS, windowsImage: undefined }, memoryLookups(CLUSTER)),
      edit: () => {},
      expect: [/this is a Windows pod \(spec.os.name: windows\) but the webhook has no Windows image: start it with --windows-image/],
    },
    {
      name: 'SecretProviderClass missing',
      edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/secret-provider-class'] = 'nope'),
      expect: [/annotation akv-injector.io\/secret-provider-class on the pod: SecretProviderClass "nope" not found in namespace shop/],
    },
    {
      name: 'SecretProviderClass of another provider',
      edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/secret-provider-class'] = 'gcp-class'),
      expect: [/SecretProviderClass shop\/gcp-class: provider "gcp" is not supported; akv-injector reads only provider "azure"/],
    },
    {
      name: 'pod identity',
      edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/secret-provider-class'] = 'pod-identity'),
      expect: [/SecretProviderClass shop\/pod-identity parameter usePodIdentity: "True": only workload identity is supported/],
    },
    {
      name: 'CRD not installed',
      mutate: createMutator(SETTINGS, memoryLookups({ ...CLUSTER, secretProviderClasses: 'crd-missing' })),
      edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/secret-provider-class'] = 'checkout-csi'),
      expect: [
        /the SecretProviderClass CRD \(secrets-store.csi.x-k8s.io\/v1\) is not installed in this cluster; set akv-injector.io\/vault and akv-injector.io\/objects instead/,
      ],
    },
  ];
  for (const c of cases) {
    const { result, after, before } = await admit(c.fixture ?? 'deployment-pod', c.edit, c.mutate ? { mutate: c.mutate } : {});
    t.equal(result.outcome, 'denied', c.name);
    t.equal(result.response.allowed, false);
    t.equal(result.response.status?.code, 400);
    for (const pattern of c.expect) t.match(result.response.status?.message, pattern, `${c.name}: ${pattern}`);
    t.same(after, before, `${c.name}: no patch`);
  }
});

t.test('an unreachable API server: the admission errors with a message, no crash', async (t) => {
  const { result } = await admit('deployment-pod', () => {}, { mutate: createMutator(SETTINGS, memoryLookups({ failing: true })) });
  t.match(result, {
    outcome: 'error',
    response: {
      allowed: false,
      status: { code: 500, message: /could not resolve the configuration of pod shop\/checkout-7d9f8b6c5-\*: connect ECONNREFUSED/ },
    },
  });
});

t.test('a CREATE without a pod object is an error, not a crash', async (t) => {
  const review = loadReview('deployment-pod');
  (review.request as { object?: unknown }).object = 'nonsense';
  t.match(await mutator(review.request), {
    outcome: 'denied',
    response: { allowed: false, status: { code: 400, message: /request\.object must be a Pod object, got a string/ } },
  });
});

t.test('a very large pod (about 3 MiB) is injected like any other', async (t) => {
  const { result, before, after } = await admit('deployment-pod', (pod) => {
    const template = pod.spec!.containers[0]!;
    pod.spec!.containers = Array.from({ length: 20 }, (_, i) => ({
      ...structuredClone(template),
      name: `worker-${i}`,
      env: Array.from({ length: 400 }, (_, j) => ({ name: `SETTING_${j}`, value: `${'v'.repeat(300)}-${i}-${j}` })),
    }));
    pod.metadata!.annotations!['kubectl.kubernetes.io/last-applied-configuration'] = JSON.stringify({ padding: 'x'.repeat(512 * 1024) });
  });
  t.ok(JSON.stringify(before).length > 2.5 * 1024 * 1024, 'the pod is large');
  t.equal(result.outcome, 'injected');
  t.same(podViolations(after), []);
  t.equal(after.spec?.containers.filter((c) => c.volumeMounts?.some((m) => m.name === 'akv-injector-secrets')).length, 20, 'every container gets the mount');
  t.ok(Buffer.from(result.response.patch ?? '', 'base64').length < 16 * 1024, 'the patch holds only the additions');
});

t.test('the init container never runs as root, whatever user the pod runs as', async (t) => {
  const cases: Array<{ podUser: number | undefined; initUser: number | undefined }> = [
    { podUser: undefined, initUser: 65532 },
    { podUser: 0, initUser: 65532 },
    { podUser: 1000, initUser: undefined },
  ];
  for (const c of cases) {
    const { after } = await admit('deployment-pod', (pod) => {
      pod.spec!.securityContext = c.podUser === undefined ? {} : { runAsUser: c.podUser };
    });
    const init = after.spec?.initContainers?.find((x) => x.name === 'akv-injector');
    t.equal(init?.securityContext?.runAsUser, c.initUser, `pod user ${c.podUser}: init container user ${c.initUser ?? "the pod's"}`);
    t.equal(init?.securityContext?.runAsNonRoot, true);
    const effective = init?.securityContext?.runAsUser ?? after.spec?.securityContext?.runAsUser;
    t.not(effective, 0, `pod user ${c.podUser}: the init container's effective user is not root`);
  }
});

t.test('a list of no object is admitted with a warning: nothing is written, as with the provider', async (t) => {
  for (const list of ['array:\n', '[]', 'array: []']) {
    const { result, after } = await admit('deployment-pod', (pod) => {
      pod.metadata!.annotations!['akv-injector.io/objects'] = list;
    });
    t.equal(result.outcome, 'injected', `${JSON.stringify(list)}: injected`);
    t.match(
      result.response.warnings,
      [/annotation akv-injector\.io\/objects on the pod: lists no object, so the init container writes no file/],
      `${JSON.stringify(list)}: warned`,
    );
    t.equal(
      env(
        after.spec?.initContainers?.find((c) => c.name === 'akv-injector'),
        'AKV_INJECTOR_OBJECTS',
      ),
      '[]',
    );
  }
});
