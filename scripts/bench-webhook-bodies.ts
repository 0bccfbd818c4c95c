// bench:webhook's request bodies: distinct AdmissionReviews of pods a ReplicaSet controller creates from four
// Deployment templates (fresh uid, pod-template hash, owner uid and `kube-api-access-*` suffix each).
import { randomUUID } from 'node:crypto';
import { generatedSuffix } from '../test/fixtures/replica-cluster.js';
import capturedPod from '../test/fixtures/admission/deployment-pod.json' with { type: 'json' };

export const NAMESPACE = 'shop';
export const CLIENT_ID = '8f1c2b7a-3d4e-4f5a-9b6c-7d8e9f0a1b2c';
export const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';

export interface Template {
  app: string;
  serviceAccount: string;
  annotations: Record<string, string>;
  containers: Array<Record<string, unknown>>;
  initContainers?: Array<Record<string, unknown>>;
  volumes?: Array<Record<string, unknown>>;
}

const probes = (port: number): Record<string, unknown> => ({
  livenessProbe: {
    httpGet: { path: '/healthz', port, scheme: 'HTTP' },
    initialDelaySeconds: 10,
    periodSeconds: 10,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold: 3,
  },
  readinessProbe: { httpGet: { path: '/ready', port, scheme: 'HTTP' }, periodSeconds: 5, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 },
});
const resources = (cpu: string, memory: string): Record<string, unknown> => ({ resources: { requests: { cpu, memory }, limits: { memory } } });
// The service-account volume the API server adds to every pod, as it reads in a captured pod (test/fixtures/admission).
const apiAccessVolume = capturedPod.request.object.spec.volumes.find((volume) => volume.name.startsWith('kube-api-access-'));
const containerDefaults = { terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' };
const env = (pairs: Record<string, string>): Array<Record<string, unknown>> => Object.entries(pairs).map(([name, value]) => ({ name, value }));
/** An application container: one TCP port, its environment, requests and limits, and probes. */
const appContainer = (
  name: string,
  image: string,
  port: { name: string; containerPort: number; probePort: number },
  vars: Record<string, string>,
  [cpu, memory]: [string, string],
): Record<string, unknown> => ({
  name,
  image,
  ports: [{ name: port.name, containerPort: port.containerPort, protocol: 'TCP' }],
  env: env(vars),
  ...resources(cpu, memory),
  ...probes(port.probePort),
});

export const TEMPLATES: Template[] = [
  {
    app: 'checkout',
    serviceAccount: 'checkout',
    annotations: {
      'akv-injector.io/vault': 'kv-shop',
      'akv-injector.io/objects':
        '- objectName: db-password\n  objectType: secret\n  filePermission: "0440"\n- objectName: web-tls\n  objectType: secret\n  objectAlias: tls/tls.pem\n',
      'kubectl.kubernetes.io/restartedAt': '2026-11-28T10:00:00Z',
    },
    containers: [
      appContainer(
        'checkout',
        'contoso.azurecr.io/shop/checkout:1.42.0',
        { name: 'http', containerPort: 8080, probePort: 8080 },
        { ASPNETCORE_URLS: 'http://+:8080', DB_HOST: 'checkout-db.shop.svc', DB_USER: 'checkout', LOG_LEVEL: 'info', FEATURE_FLAGS: 'new-cart,fast-pay' },
        ['250m', '512Mi'],
      ),
    ],
  },
  {
    app: 'payments',
    serviceAccount: 'payments',
    annotations: {
      'akv-injector.io/vault': 'https://kv-payments.vault.azure.net/',
      'akv-injector.io/objects': JSON.stringify([
        { objectName: 'stripe-api-key', objectType: 'secret' },
        { objectName: 'payments-signing', objectType: 'key' },
        { objectName: 'payments-mtls', objectType: 'cert', objectAlias: 'mtls/cert.pem' },
      ]),
      'akv-injector.io/containers': 'payments',
      'sidecar.istio.io/status':
        '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"revision":"default"}',
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '15020',
    },
    initContainers: [
      {
        name: 'istio-init',
        image: 'docker.io/istio/proxyv2:1.24.0',
        args: ['istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'],
        securityContext: { capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] }, runAsUser: 0, runAsNonRoot: false },
        ...resources('100m', '128Mi'),
      },
    ],
    containers: [
      appContainer(
        'payments',
        'contoso.azurecr.io/shop/payments:3.7.1',
        { name: 'grpc', containerPort: 9090, probePort: 9091 },
        {
          GRPC_PORT: '9090',
          STRIPE_ENDPOINT: 'https://api.stripe.com',
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4317',
          REGION: 'westeurope',
        },
        ['500m', '1Gi'],
      ),
      {
        name: 'istio-proxy',
        image: 'docker.io/istio/proxyv2:1.24.0',
        args: ['proxy', 'sidecar', '--domain', '$(POD_NAMESPACE).svc.cluster.local', '--proxyLogLevel=warning', '--log_output_level=default:info'],
        ports: [{ name: 'http-envoy-prom', containerPort: 15090, protocol: 'TCP' }],
        env: [
          { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
          { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
          { name: 'ISTIO_META_WORKLOAD_NAME', value: 'payments' },
        ],
        volumeMounts: [
          { name: 'istio-envoy', mountPath: '/etc/istio/proxy' },
          { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
        ],
        ...resources('100m', '128Mi'),
      },
    ],
    volumes: [
      { name: 'istio-envoy', emptyDir: { medium: 'Memory' } },
      { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } },
    ],
  },
  {
    app: 'orders-worker',
    serviceAccount: 'orders-worker',
    annotations: {
      'akv-injector.io/vault': 'kv-orders',
      'akv-injector.io/objects':
        'array:\n  - |\n    objectName: servicebus-connection\n    objectType: secret\n  - |\n    objectName: orders-db\n    objectType: secret\n    objectVersionHistory: 2\n',
      'akv-injector.io/mount-path': '/var/run/secrets/orders',
    },
    initContainers: [
      { name: 'migrate', image: 'contoso.azurecr.io/shop/orders-migrate:2.0.4', args: ['--wait-for-db', '--apply'], ...resources('100m', '256Mi') },
    ],
    containers: [
      {
        name: 'worker',
        image: 'contoso.azurecr.io/shop/orders-worker:2.0.4',
        env: env(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`WORKER_SETTING_${i}`, `value-${i}-${'x'.repeat(20)}`]))),
        volumeMounts: [{ name: 'config', mountPath: '/etc/orders', readOnly: true }],
        ...resources('1', '2Gi'),
      },
    ],
    volumes: [{ name: 'config', configMap: { name: 'orders-worker-config', defaultMode: 420 } }],
  },
  {
    app: 'storefront',
    serviceAccount: 'storefront',
    annotations: {
      'akv-injector.io/vault': 'kv-shop',
      'akv-injector.io/objects':
        '- objectName: storefront-tls\n  objectType: secret\n  objectFormat: pfx\n  objectEncoding: base64\n  objectAlias: tls.pfx\n- objectName: session-key\n  objectType: secret\n',
      'akv-injector.io/containers': 'nginx,app',
      'akv-injector.io/token-expiration': '7200',
    },
    containers: [
      {
        name: 'nginx',
        image: 'docker.io/library/nginx:1.27-alpine',
        ports: [{ name: 'https', containerPort: 8443, protocol: 'TCP' }],
        volumeMounts: [
          { name: 'nginx-conf', mountPath: '/etc/nginx/conf.d', readOnly: true },
          { name: 'cache', mountPath: '/var/cache/nginx' },
        ],
        ...resources('100m', '64Mi'),
      },
      appContainer(
        'app',
        'contoso.azurecr.io/shop/storefront:5.2.0',
        { name: 'http', containerPort: 3000, probePort: 3000 },
        { NODE_ENV: 'production', PORT: '3000', API_BASE: 'http://checkout.shop.svc:8080' },
        ['200m', '256Mi'],
      ),
    ],
    volumes: [
      { name: 'nginx-conf', configMap: { name: 'storefront-nginx', defaultMode: 420 } },
      { name: 'cache', emptyDir: {} },
    ],
  },
];

/** A fresh AdmissionReview for a pod the ReplicaSet controller creates from `template`. */
export function review(template: Template): string {
  const hash = generatedSuffix(10);
  const apiAccess = `kube-api-access-${generatedSuffix(5)}`;
  const serviceAccountMount = { name: apiAccess, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' };
  const withMount = (c: Record<string, unknown>): Record<string, unknown> => ({
    ...containerDefaults,
    ...c,
    volumeMounts: [...((c.volumeMounts as unknown[]) ?? []), serviceAccountMount],
  });
  const pod = {
    metadata: {
      generateName: `${template.app}-${hash}-`,
      namespace: NAMESPACE,
      creationTimestamp: null,
      labels: { app: template.app, 'pod-template-hash': hash, 'app.kubernetes.io/part-of': 'shop' },
      annotations: { 'akv-injector.io/inject': 'true', ...template.annotations },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${template.app}-${hash}`, uid: randomUUID(), controller: true, blockOwnerDeletion: true },
      ],
      managedFields: [
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          apiVersion: 'v1',
          time: new Date().toISOString(),
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': { 'f:generateName': {}, 'f:labels': { '.': {}, 'f:app': {}, 'f:pod-template-hash': {} }, 'f:ownerReferences': { '.': {} } },
          },
        },
      ],
    },
    spec: {
      volumes: [...(template.volumes ?? []), { ...apiAccessVolume, name: apiAccess }],
      ...(template.initContainers ? { initContainers: template.initContainers.map(withMount) } : {}),
      containers: template.containers.map(withMount),
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: template.serviceAccount,
      serviceAccount: template.serviceAccount,
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {},
  };
  const gvk = { group: '', version: 'v1', kind: 'Pod' };
  const gvr = { group: '', version: 'v1', resource: 'pods' };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: gvk,
      resource: gvr,
      requestKind: gvk,
      requestResource: gvr,
      namespace: NAMESPACE,
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        uid: randomUUID(),
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  });
}

/** `count` fresh bodies, the templates in turn. */
export function reviews(count: number, offset = 0): string[] {
  return Array.from({ length: count }, (_, i) => review(TEMPLATES[(i + offset) % TEMPLATES.length] as Template));
}
