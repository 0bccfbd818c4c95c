// Offline render: the pod templates of every workload kind injected by the webhook's own code path;
// everything else passes through byte for byte.
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { CLOUDS } from '../src/clouds.js';
import { renderManifests, type RenderOptions } from '../webhook/render.js';
import { podViolations } from './fixtures/pod-rules.js';

const CLIENT = '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01';
const OPTIONS: RenderOptions = {
  settings: {
    image: 'ghcr.io/akv-injector/akv-injector:0.1.0',
    cloud: CLOUDS.AzurePublicCloud,
    namespace: 'akv-injector',
    tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  },
  namespace: 'shop',
  serviceAccountAnnotations: { 'azure.workload.identity/client-id': CLIENT },
};

const ANNOTATED = `      annotations:
        akv-injector.io/inject: "true"
        akv-injector.io/vault: kv-shop
        akv-injector.io/objects: |
          - objectName: db-password
            objectType: secret
`;
const workload = (kind: string, apiVersion: string, templatePrefix: string, indent: string): string => {
  const pad = (text: string): string =>
    text
      .split('\n')
      .map((l) => (l === '' ? l : `${indent}${l}`))
      .join('\n');
  return `apiVersion: ${apiVersion}
kind: ${kind}
metadata:
  name: ${kind.toLowerCase()}-app
spec:
${templatePrefix}${pad(`  template:
    metadata:
      labels: { app: demo }
${ANNOTATED}    spec:
      containers:
        - name: app
          image: contoso.azurecr.io/app:1
`)}`;
};

const SERVICE = `# The service keeps its comments and its flow style.
apiVersion: v1
kind: Service
metadata: {name: checkout,   namespace: shop}
spec:
  ports: [{port: 80}]
`;

t.test('every workload kind, multi-document, other documents untouched', async (t) => {
  const docs = [
    workload('Deployment', 'apps/v1', '  selector: {matchLabels: {app: demo}}\n', ''),
    workload('StatefulSet', 'apps/v1', '  serviceName: demo\n  selector: {matchLabels: {app: demo}}\n', ''),
    workload('DaemonSet', 'apps/v1', '  selector: {matchLabels: {app: demo}}\n', ''),
    workload('ReplicaSet', 'apps/v1', '  selector: {matchLabels: {app: demo}}\n', ''),
    workload('Job', 'batch/v1', '', ''),
    `apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            akv-injector.io/inject: "true"
            akv-injector.io/vault: kv-shop
            akv-injector.io/objects: '[{"objectName": "db-password", "objectType": "secret"}]'
        spec:
          restartPolicy: Never
          containers:
            - name: report
              image: contoso.azurecr.io/report:1
`,
    `apiVersion: v1
kind: Pod
metadata:
  name: bare
${ANNOTATED.replace(/^ {4}/gm, '')}spec:
  containers:
    - name: app
      image: contoso.azurecr.io/app:1
`,
    SERVICE,
  ];
  const input = docs.join('---\n');
  const result = await renderManifests(input, OPTIONS);
  t.same(result.problems, []);
  t.same(result.injected, [
    'Deployment shop/deployment-app',
    'StatefulSet shop/statefulset-app',
    'DaemonSet shop/daemonset-app',
    'ReplicaSet shop/replicaset-app',
    'Job shop/job-app',
    'CronJob shop/nightly',
    'Pod shop/bare',
  ]);
  const out = parseAllDocuments(result.output).map((d) => d.toJS() as Record<string, unknown>);
  t.equal(out.length, docs.length, 'one output document per input document');
  const templates: V1PodTemplateSpec[] = [
    ...out.slice(0, 5).map((d) => (d.spec as { template: V1PodTemplateSpec }).template),
    (out[5]?.spec as { jobTemplate: { spec: { template: V1PodTemplateSpec } } }).jobTemplate.spec.template,
    out[6] as V1PodTemplateSpec,
  ];
  for (const [i, template] of templates.entries()) {
    const init = template.spec?.initContainers?.find((c) => c.name === 'akv-injector');
    t.ok(init, `document ${i}: init container added`);
    t.equal(init?.env?.find((e) => e.name === 'AZURE_CLIENT_ID')?.value, CLIENT, `document ${i}: ServiceAccount defaults from the flags`);
    t.equal(template.metadata?.annotations?.['akv-injector.io/status'], 'injected');
    t.same(podViolations({ metadata: template.metadata ?? {}, spec: template.spec ?? { containers: [] } }), [], `document ${i}: a valid pod`);
  }
  t.ok(result.output.endsWith(SERVICE), 'the Service passes through byte for byte, comment and flow style included');
  t.match(result.output, /^kind: CronJob\n[\s\S]*schedule: "0 3 \* \* \*"/m, 'fields outside the template are kept');
});

t.test('a SecretProviderClass in the same stream, namespace defaults from flags', async (t) => {
  const input = `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: { name: legacy, namespace: team }
spec:
  provider: azure
  parameters:
    keyvaultName: kv-legacy
    objects: |
      array:
        - |
          objectName: legacy-password
          objectType: secret
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: legacy-app, namespace: team }
spec:
  selector: { matchLabels: { app: legacy } }
  template:
    metadata:
      labels: { app: legacy }
      annotations:
        akv-injector.io/secret-provider-class: legacy
    spec:
      containers: [{ name: app, image: app:1 }]
`;
  const result = await renderManifests(input, {
    ...OPTIONS,
    namespaceLabels: { 'akv-injector.io/inject': 'enabled' },
    namespaceAnnotations: { 'akv-injector.io/mount-path': '/etc/legacy' },
  });
  t.same(result.problems, []);
  const deployment = parseAllDocuments(result.output)[1]?.toJS() as { spec: { template: V1PodTemplateSpec } };
  const init = deployment.spec.template.spec?.initContainers?.[0];
  t.equal(init?.env?.find((e) => e.name === 'AKV_INJECTOR_VAULT_URL')?.value, 'https://kv-legacy.vault.azure.net/');
  t.equal(init?.env?.find((e) => e.name === 'AKV_INJECTOR_OUTPUT_DIR')?.value, '/etc/legacy');
  t.ok(result.output.startsWith('apiVersion: secrets-store.csi.x-k8s.io/v1\n'), 'the SecretProviderClass passes through');
});

t.test('a denied template is reported and left as it was', async (t) => {
  const input = workload('Deployment', 'apps/v1', '  selector: {matchLabels: {app: demo}}\n', '').replace(
    'akv-injector.io/vault: kv-shop',
    'akv-injector.io/vault: https://example.com/',
  );
  const result = await renderManifests(input, OPTIONS);
  t.match(result.problems, [
    /^Deployment shop\/deployment-app: akv-injector: pod shop\/\* cannot be injected:\n- annotation akv-injector.io\/vault on the pod: "https:\/\/example.com\/" host "example.com" is not a Key Vault host/,
  ]);
  t.equal(result.output, input, 'unchanged');
});

t.test('what lies between documents is kept once: directives, end markers, comments, an empty document', async (t) => {
  const deployment = workload('Deployment', 'apps/v1', '  selector: {matchLabels: {app: demo}}\n', '');
  const head = `%YAML 1.2\n---\n${SERVICE}...\n# the empty document below is kept\n--- \n`;
  const input = `${head}# about the deployment\n---\n${deployment}# after it\n`;
  const result = await renderManifests(input, OPTIONS);
  t.same(result.injected, ['Deployment shop/deployment-app']);
  t.ok(result.output.startsWith(head), 'the Service and the empty document pass through byte for byte');
  for (const comment of ['# the empty document below is kept', '# about the deployment', '# after it']) {
    t.equal(result.output.split(comment).length - 1, 1, `${comment}: once`);
  }
  const docs = parseAllDocuments(result.output);
  t.same(
    docs.flatMap((d) => d.errors),
    [],
    'the output is valid YAML',
  );
  t.same(
    docs.map((d) => (d.toJS() as { kind?: string } | null)?.kind ?? null),
    ['Service', null, 'Deployment'],
  );
});

t.test('invalid YAML is an error, not a crash', async (t) => {
  await t.rejects(renderManifests('kind: [unclosed', OPTIONS), /not valid YAML/);
});

t.test("kinds and fields named like Object.prototype's pass through, and odd shapes are reported", async (t) => {
  const passThrough = ['kind: constructor\nmetadata: {name: a}\n', 'kind: toString\n', 'kind: __proto__\nspec: {template: {}}\n', 'kind: 7\n', 'kind: [Pod]\n'];
  for (const input of passThrough) {
    const result = await renderManifests(input, OPTIONS);
    t.equal(result.output, input, `${JSON.stringify(input)}: unchanged`);
    t.same(result.problems, [], `${JSON.stringify(input)}: no problem`);
  }
  const odd =
    'apiVersion: v1\nkind: Pod\nmetadata:\n  name: odd\n  namespace: 7\n  annotations: {akv-injector.io/inject: "true"}\nspec:\n  containers: {name: app}\n';
  const result = await renderManifests(odd, OPTIONS);
  t.match(result.problems, [
    /^Pod shop\/odd: akv-injector: request\.object is not a Pod it can read:\n- request\.object\.metadata\.namespace must be a string, got a number\n- request\.object\.spec\.containers must be a list, got an object/,
  ]);
  t.equal(result.output, odd, 'unchanged');
});

// As kubectl writes a Pod (sequences flush with their key), with what a person adds: comments, a literal and a
// folded block, a flow sequence with a quoted string. The rendered text is the input with the injection's lines
// inserted, nothing else changed (the stream's first document gains its `---`).
const HAND_WRITTEN = `# The checkout pod: a comment at the top.
apiVersion: v1
kind: Pod
metadata:
  name: checkout # trailing comment
  namespace: shop
  annotations:
    akv-injector.io/inject: "true"
    akv-injector.io/vault: kv-shop
    # the objects, as a literal block
    akv-injector.io/objects: |
      - objectName: db-password
        objectType: secret
spec:
  containers:
  - name: app # flush sequence, as kubectl writes it
    image: contoso.azurecr.io/app:1
    args: ["--config", /etc/app.yaml]
    command:
    - sh
    - -c
    - >
      exec app
`;

const HAND_WRITTEN_RENDERED = `---
# The checkout pod: a comment at the top.
apiVersion: v1
kind: Pod
metadata:
  name: checkout # trailing comment
  namespace: shop
  annotations:
    akv-injector.io/inject: "true"
    akv-injector.io/vault: kv-shop
    # the objects, as a literal block
    akv-injector.io/objects: |
      - objectName: db-password
        objectType: secret
    akv-injector.io/status: injected
spec:
  containers:
  - name: app # flush sequence, as kubectl writes it
    image: contoso.azurecr.io/app:1
    args: ["--config", /etc/app.yaml]
    command:
    - sh
    - -c
    - >
      exec app
    volumeMounts:
    - name: akv-injector-secrets
      mountPath: /mnt/secrets-store
      readOnly: true
  volumes:
  - name: akv-injector-token
    projected:
      sources:
      - serviceAccountToken:
          audience: api://AzureADTokenExchange
          expirationSeconds: 3600
          path: azure-identity-token
  - name: akv-injector-secrets
    emptyDir:
      medium: Memory
      sizeLimit: 16Mi
  initContainers:
  - name: akv-injector
    image: ghcr.io/akv-injector/akv-injector:0.1.0
    imagePullPolicy: IfNotPresent
    args:
    - fetch
    env:
    - name: AZURE_CLIENT_ID
      value: 0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01
    - name: AZURE_TENANT_ID
      value: 72f988bf-86f1-41af-91ab-2d7cd011db47
    - name: AZURE_FEDERATED_TOKEN_FILE
      value: /var/run/secrets/akv-injector/azure-identity-token
    - name: AZURE_AUTHORITY_HOST
      value: https://login.microsoftonline.com/
    - name: AKV_INJECTOR_VAULT_URL
      value: https://kv-shop.vault.azure.net/
    - name: AKV_INJECTOR_OBJECTS
      value: '[{"objectName":"db-password","objectType":"secret","objectVersion":"","objectAlias":"db-password","objectFormat":"pem","objectEncoding":"utf-8","filePermission":"0644","objectVersionHistory":1,"optional":false}]'
    - name: AKV_INJECTOR_OUTPUT_DIR
      value: /mnt/secrets-store
    volumeMounts:
    - name: akv-injector-token
      mountPath: /var/run/secrets/akv-injector
      readOnly: true
    - name: akv-injector-secrets
      mountPath: /mnt/secrets-store
    resources:
      requests:
        cpu: 50m
        memory: 64Mi
      limits:
        cpu: "1"
        memory: 128Mi
    terminationMessagePolicy: FallbackToLogsOnError
    securityContext:
      runAsNonRoot: true
      runAsUser: 65532
      runAsGroup: 65532
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop:
        - ALL
      seccompProfile:
        type: RuntimeDefault
`;

t.test('an injected document keeps its comments, block scalars, flow collections, key order and layout', async (t) => {
  const result = await renderManifests(HAND_WRITTEN, OPTIONS);
  t.same(result.problems, []);
  t.equal(result.output, HAND_WRITTEN_RENDERED);
  const inserted = new Set(HAND_WRITTEN_RENDERED.split('\n'));
  for (const line of HAND_WRITTEN.split('\n')) t.ok(inserted.has(line), `kept: ${line}`);
  t.same(result.summary, ['Pod shop/checkout: injected akv-injector (https://kv-shop.vault.azure.net/, 1 object) mounted at app:/mnt/secrets-store']);
});

t.test('sequences indented under their key and padded flow collections stay so', async (t) => {
  const input = `apiVersion: v1
kind: Pod
metadata:
  name: padded
  annotations: { akv-injector.io/inject: "true", akv-injector.io/vault: kv-shop, akv-injector.io/objects: "[{objectName: a, objectType: secret}]" }
spec:
  containers:
    - name: app
      image: app:1
      args: [ --port, "8080" ]
`;
  const result = await renderManifests(input, OPTIONS);
  t.same(result.problems, []);
  t.ok(result.output.startsWith(`---\n${input.split('\n').slice(0, 4).join('\n')}\n`), 'the head as written');
  t.match(result.output, '      args: [ --port, "8080" ]\n      volumeMounts:\n        - name: akv-injector-secrets\n');
  t.match(result.output, '  initContainers:\n    - name: akv-injector\n');
});

t.test('one summary line per workload: what was injected, or why not', async (t) => {
  const optedOut = workload('Deployment', 'apps/v1', '  selector: {matchLabels: {app: demo}}\n', '').replace(
    'akv-injector.io/inject: "true"',
    'akv-injector.io/inject: "false"',
  );
  const result = await renderManifests(`${HAND_WRITTEN}---\n${optedOut}---\n${SERVICE}`, OPTIONS);
  t.same(result.summary, [
    'Pod shop/checkout: injected akv-injector (https://kv-shop.vault.azure.net/, 1 object) mounted at app:/mnt/secrets-store',
    'Deployment shop/deployment-app: not injected (pod opted out)',
  ]);
});

t.test('a template without metadata (injected by the namespace label) gains it, and the rest stays as written', async (t) => {
  const input =
    'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bare\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: x\n';
  const result = await renderManifests(input, {
    ...OPTIONS,
    namespaceLabels: { 'akv-injector.io/inject': 'enabled' },
    namespaceAnnotations: { 'akv-injector.io/vault': 'kv-shop', 'akv-injector.io/objects': '[{"objectName": "a", "objectType": "secret"}]' },
  });
  t.same(result.problems, []);
  t.ok(result.output.startsWith(`---\n${input.slice(0, input.indexOf('        image: x\n') + 17)}`), 'the head as written');
  const template = (parseAllDocuments(result.output)[0]?.toJS() as { spec: { template: V1PodTemplateSpec } }).spec.template;
  t.same(template.metadata, { annotations: { 'akv-injector.io/status': 'injected' } });
  t.same(
    template.spec?.initContainers?.map((c) => c.name),
    ['akv-injector'],
  );
  t.same(result.summary, ['Deployment shop/bare: injected akv-injector (https://kv-shop.vault.azure.net/, 1 object) mounted at app:/mnt/secrets-store']);
});
