// The Pod Security Standards checker against compliant and violating pods, then the webhook's own promise: a pod
// that meets the restricted standard still meets it once injected.
import { readdirSync } from 'node:fs';
import type { V1Container, V1Pod, V1PodSpec, V1SecurityContext } from '@kubernetes/client-node';
import t from 'tap';
import { CLOUDS } from '../src/clouds.js';
import { createMutator } from '../webhook/mutate.js';
import { INIT_CONTAINER } from '../webhook/names.js';
import type { WebhookSettings } from '../webhook/settings.js';
import { applyResponse, FIXTURES, loadReview, type FixtureName } from './fixtures/admission-fixtures.js';
import { memoryLookups } from './fixtures/memory-lookups.js';
import { checkIds, podSecurityViolations, type PodLike } from './fixtures/pod-security.js';
import { podViolations } from './fixtures/pod-rules.js';

// ---------------------------------------------------------------------------------------------------------
// The checker

/** A pod that meets the restricted standard while using what it allows: every volume type, sidecars, ports, probes. */
function compliantPod(): V1Pod {
  const hardened = (): V1SecurityContext => ({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'shop-api',
      namespace: 'shop',
      annotations: {
        'container.apparmor.security.beta.kubernetes.io/api': 'runtime/default',
        'container.apparmor.security.beta.kubernetes.io/log-shipper': 'localhost/shop',
      },
    },
    spec: {
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        fsGroup: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
        appArmorProfile: { type: 'RuntimeDefault' },
        seLinuxOptions: { type: 'container_t', level: 's0:c123,c456' },
        sysctls: [
          { name: 'net.ipv4.ip_local_port_range', value: '1024 65535' },
          { name: 'net.ipv4.ip_local_reserved_ports', value: '8080' },
        ],
      },
      initContainers: [
        { name: 'migrate', image: 'shop/migrate:1', securityContext: { ...hardened(), procMount: 'Default' } },
        {
          name: 'log-shipper',
          image: 'fluent-bit:3',
          restartPolicy: 'Always',
          securityContext: { ...hardened(), seccompProfile: { type: 'Localhost', localhostProfile: 'shop.json' } },
        },
      ],
      containers: [
        {
          name: 'api',
          image: 'shop/api:1',
          ports: [{ name: 'http', containerPort: 80, hostPort: 0 }],
          livenessProbe: { httpGet: { path: '/healthz', port: 'http', host: '' } },
          readinessProbe: { tcpSocket: { port: 'http' } },
          lifecycle: { preStop: { httpGet: { path: '/drain', port: 'http' } } },
          securityContext: { ...hardened(), capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] }, runAsNonRoot: true, readOnlyRootFilesystem: true },
        },
      ],
      ephemeralContainers: [{ name: 'debugger', image: 'busybox:1', securityContext: hardened() }],
      volumes: [
        { name: 'config', configMap: { name: 'shop' } },
        { name: 'tls', secret: { secretName: 'shop-tls' } },
        { name: 'token', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }] } },
        { name: 'podinfo', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
        { name: 'cache', emptyDir: { medium: 'Memory' } },
        { name: 'scratch' },
        { name: 'data', persistentVolumeClaim: { claimName: 'shop-data' } },
        { name: 'csi-secrets', csi: { driver: 'secrets-store.csi.k8s.io', readOnly: true } },
        { name: 'tmp', ephemeral: { volumeClaimTemplate: { spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } } } },
      ],
    },
  };
}

type Edit = (pod: V1Pod, spec: V1PodSpec, api: V1Container) => void;

interface Case {
  name: string;
  edit: Edit;
  /** The checks that must fail (and no other) under each level. */
  baseline: string[];
  restricted: string[];
}

const CASES: Case[] = [
  // Baseline controls (restricted keeps them all).
  { name: 'hostNetwork', edit: (_p, s) => (s.hostNetwork = true), baseline: ['hostNamespaces'], restricted: ['hostNamespaces'] },
  { name: 'hostPID', edit: (_p, s) => (s.hostPID = true), baseline: ['hostNamespaces'], restricted: ['hostNamespaces'] },
  { name: 'hostIPC', edit: (_p, s) => (s.hostIPC = true), baseline: ['hostNamespaces'], restricted: ['hostNamespaces'] },
  { name: 'privileged', edit: (_p, _s, c) => (c.securityContext!.privileged = true), baseline: ['privileged'], restricted: ['privileged'] },
  {
    name: 'privileged ephemeral container',
    edit: (_p, s) => (s.ephemeralContainers![0]!.securityContext!.privileged = true),
    baseline: ['privileged'],
    restricted: ['privileged'],
  },
  {
    name: 'adds NET_RAW',
    edit: (_p, _s, c) => c.securityContext!.capabilities!.add!.push('NET_RAW'),
    baseline: ['capabilities_baseline'],
    restricted: ['capabilities_restricted'],
  },
  {
    name: 'adds SYS_ADMIN in a sidecar',
    edit: (_p, s) => (s.initContainers![1]!.securityContext!.capabilities!.add = ['SYS_ADMIN']),
    baseline: ['capabilities_baseline'],
    restricted: ['capabilities_restricted'],
  },
  {
    name: 'hostPath volume',
    edit: (_p, s) => s.volumes!.push({ name: 'docker', hostPath: { path: '/var/run/docker.sock' } }),
    baseline: ['hostPathVolumes'],
    restricted: ['restrictedVolumes'],
  },
  { name: 'hostPort', edit: (_p, _s, c) => (c.ports![0]!.hostPort = 8080), baseline: ['hostPorts'], restricted: ['hostPorts'] },
  {
    name: 'hostPort in an init container',
    edit: (_p, s) => (s.initContainers![0]!.ports = [{ containerPort: 9000, hostPort: 9000 }]),
    baseline: ['hostPorts'],
    restricted: ['hostPorts'],
  },
  {
    name: 'AppArmor Unconfined (pod field)',
    edit: (_p, s) => (s.securityContext!.appArmorProfile = { type: 'Unconfined' }),
    baseline: ['appArmorProfile'],
    restricted: ['appArmorProfile'],
  },
  {
    name: 'AppArmor Unconfined (container field)',
    edit: (_p, _s, c) => (c.securityContext!.appArmorProfile = { type: 'Unconfined' }),
    baseline: ['appArmorProfile'],
    restricted: ['appArmorProfile'],
  },
  {
    name: 'AppArmor unconfined (annotation)',
    edit: (p) => (p.metadata!.annotations!['container.apparmor.security.beta.kubernetes.io/api'] = 'unconfined'),
    baseline: ['appArmorProfile'],
    restricted: ['appArmorProfile'],
  },
  {
    name: 'SELinux type spc_t',
    edit: (_p, s) => (s.securityContext!.seLinuxOptions = { type: 'spc_t' }),
    baseline: ['seLinuxOptions'],
    restricted: ['seLinuxOptions'],
  },
  {
    name: 'SELinux type container_engine_t (only from policy 1.31)',
    edit: (_p, _s, c) => (c.securityContext!.seLinuxOptions = { type: 'container_engine_t' }),
    baseline: ['seLinuxOptions'],
    restricted: ['seLinuxOptions'],
  },
  {
    name: 'SELinux user',
    edit: (_p, _s, c) => (c.securityContext!.seLinuxOptions = { user: 'system_u' }),
    baseline: ['seLinuxOptions'],
    restricted: ['seLinuxOptions'],
  },
  {
    name: 'SELinux role',
    edit: (_p, s) => (s.securityContext!.seLinuxOptions = { role: 'system_r' }),
    baseline: ['seLinuxOptions'],
    restricted: ['seLinuxOptions'],
  },
  {
    name: 'procMount Unmasked',
    edit: (_p, s) => (s.initContainers![0]!.securityContext!.procMount = 'Unmasked'),
    baseline: ['procMount'],
    restricted: ['procMount'],
  },
  {
    name: 'procMount Unmasked with hostUsers: false (relaxed only from policy 1.35)',
    edit: (_p, s, c) => {
      s.hostUsers = false;
      c.securityContext!.procMount = 'Unmasked';
    },
    baseline: ['procMount'],
    restricted: ['procMount'],
  },
  {
    name: 'seccomp Unconfined (pod)',
    edit: (_p, s) => (s.securityContext!.seccompProfile = { type: 'Unconfined' }),
    baseline: ['seccompProfile_baseline'],
    restricted: ['seccompProfile_restricted'],
  },
  {
    name: 'seccomp Unconfined (container)',
    edit: (_p, _s, c) => (c.securityContext!.seccompProfile = { type: 'Unconfined' }),
    baseline: ['seccompProfile_baseline'],
    restricted: ['seccompProfile_restricted'],
  },
  {
    name: 'unsafe sysctl',
    edit: (_p, s) => s.securityContext!.sysctls!.push({ name: 'kernel.msgmax', value: '65536' }),
    baseline: ['sysctls'],
    restricted: ['sysctls'],
  },
  {
    name: 'sysctl safe only from policy 1.29',
    edit: (_p, s) => s.securityContext!.sysctls!.push({ name: 'net.ipv4.tcp_keepalive_time', value: '600' }),
    baseline: ['sysctls'],
    restricted: ['sysctls'],
  },
  {
    name: 'Windows HostProcess (pod)',
    edit: (_p, s) => (s.securityContext!.windowsOptions = { hostProcess: true }),
    baseline: ['windowsHostProcess'],
    restricted: ['windowsHostProcess'],
  },
  {
    name: 'Windows HostProcess (container)',
    edit: (_p, _s, c) => (c.securityContext!.windowsOptions = { hostProcess: true }),
    baseline: ['windowsHostProcess'],
    restricted: ['windowsHostProcess'],
  },
  {
    name: 'liveness probe on another host',
    edit: (_p, _s, c) => (c.livenessProbe!.httpGet!.host = '169.254.169.254'),
    baseline: ['hostProbesAndHostLifecycle'],
    restricted: ['hostProbesAndHostLifecycle'],
  },
  {
    name: 'preStop hook on another host',
    edit: (_p, _s, c) => (c.lifecycle!.preStop!.httpGet!.host = '10.0.0.1'),
    baseline: ['hostProbesAndHostLifecycle'],
    restricted: ['hostProbesAndHostLifecycle'],
  },
  {
    name: 'readiness probe TCP to another host',
    edit: (_p, _s, c) => (c.readinessProbe!.tcpSocket!.host = 'kubernetes.default'),
    baseline: ['hostProbesAndHostLifecycle'],
    restricted: ['hostProbesAndHostLifecycle'],
  },
  // Restricted controls only.
  {
    name: 'nfs volume',
    edit: (_p, s) => s.volumes!.push({ name: 'share', nfs: { server: 'nfs.shop', path: '/export' } }),
    baseline: [],
    restricted: ['restrictedVolumes'],
  },
  {
    name: 'azureFile volume',
    edit: (_p, s) => s.volumes!.push({ name: 'files', azureFile: { secretName: 'az', shareName: 'share' } }),
    baseline: [],
    restricted: ['restrictedVolumes'],
  },
  {
    name: 'image volume (only from policy 1.33)',
    edit: (_p, s) => s.volumes!.push({ name: 'model', image: { reference: 'shop/model:1' } }),
    baseline: [],
    restricted: ['restrictedVolumes'],
  },
  {
    name: 'allowPrivilegeEscalation unset',
    edit: (_p, _s, c) => delete c.securityContext!.allowPrivilegeEscalation,
    baseline: [],
    restricted: ['allowPrivilegeEscalation'],
  },
  {
    name: 'allowPrivilegeEscalation true in a sidecar',
    edit: (_p, s) => (s.initContainers![1]!.securityContext!.allowPrivilegeEscalation = true),
    baseline: [],
    restricted: ['allowPrivilegeEscalation'],
  },
  {
    name: 'no security context on an ephemeral container',
    edit: (_p, s) => delete s.ephemeralContainers![0]!.securityContext,
    baseline: [],
    restricted: ['allowPrivilegeEscalation', 'capabilities_restricted'],
  },
  {
    name: 'runAsNonRoot unset everywhere',
    edit: (_p, s, c) => {
      delete s.securityContext!.runAsNonRoot;
      delete c.securityContext!.runAsNonRoot;
    },
    baseline: [],
    restricted: ['runAsNonRoot'],
  },
  {
    name: 'runAsNonRoot false on the pod, true on every container',
    edit: (_p, s) => {
      s.securityContext!.runAsNonRoot = false;
      for (const c of [...s.initContainers!, ...s.containers, ...s.ephemeralContainers!]) c.securityContext!.runAsNonRoot = true;
    },
    baseline: [],
    restricted: ['runAsNonRoot'],
  },
  { name: 'runAsNonRoot false on a container', edit: (_p, _s, c) => (c.securityContext!.runAsNonRoot = false), baseline: [], restricted: ['runAsNonRoot'] },
  {
    name: 'runAsNonRoot unset with hostUsers: false (relaxed only from policy 1.35)',
    edit: (_p, s) => {
      s.hostUsers = false;
      delete s.securityContext!.runAsNonRoot;
    },
    baseline: [],
    restricted: ['runAsNonRoot'],
  },
  { name: 'runAsUser 0 on the pod', edit: (_p, s) => (s.securityContext!.runAsUser = 0), baseline: [], restricted: ['runAsUser'] },
  {
    name: 'runAsUser 0 on an init container',
    edit: (_p, s) => (s.initContainers![0]!.securityContext!.runAsUser = 0),
    baseline: [],
    restricted: ['runAsUser'],
  },
  {
    name: 'no seccomp profile anywhere',
    edit: (_p, s) => {
      delete s.securityContext!.seccompProfile;
    },
    baseline: [],
    restricted: ['seccompProfile_restricted'],
  },
  {
    name: 'capabilities not dropped',
    edit: (_p, _s, c) => (c.securityContext!.capabilities = { add: ['NET_BIND_SERVICE'] }),
    baseline: [],
    restricted: ['capabilities_restricted'],
  },
  {
    name: 'drops only NET_RAW',
    edit: (_p, s) => (s.initContainers![0]!.securityContext!.capabilities = { drop: ['NET_RAW'] }),
    baseline: [],
    restricted: ['capabilities_restricted'],
  },
  {
    name: 'adds CHOWN (a default capability)',
    edit: (_p, _s, c) => c.securityContext!.capabilities!.add!.push('CHOWN'),
    baseline: [],
    restricted: ['capabilities_restricted'],
  },
  // What the standards allow, at their edges.
  {
    name: 'container-level runAsNonRoot and seccomp without pod-level ones',
    edit: (_p, s) => {
      s.securityContext = {};
      for (const c of [...s.initContainers!, ...s.containers, ...s.ephemeralContainers!])
        Object.assign(c.securityContext!, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    },
    baseline: [],
    restricted: [],
  },
  {
    name: 'a container overrides the pod seccomp with Localhost',
    edit: (_p, _s, c) => (c.securityContext!.seccompProfile = { type: 'Localhost', localhostProfile: 'api.json' }),
    baseline: [],
    restricted: [],
  },
  {
    name: 'runAsUser unset, image user decides (non-root enforced by the kubelet)',
    edit: (_p, s) => delete s.securityContext!.runAsUser,
    baseline: [],
    restricted: [],
  },
  {
    name: 'empty AppArmor annotation',
    edit: (p) => (p.metadata!.annotations!['container.apparmor.security.beta.kubernetes.io/api'] = ''),
    baseline: [],
    restricted: [],
  },
  { name: 'SELinux level only', edit: (_p, _s, c) => (c.securityContext!.seLinuxOptions = { level: 's0:c1,c2' }), baseline: [], restricted: [] },
  {
    name: 'a Windows pod: no Linux-only fields, runAsNonRoot still required',
    edit: (_p, s) => {
      s.os = { name: 'windows' };
      s.securityContext = { runAsNonRoot: true };
      for (const c of [...s.initContainers!, ...s.containers, ...s.ephemeralContainers!])
        c.securityContext = { windowsOptions: { runAsUserName: 'ContainerUser' } };
    },
    baseline: [],
    restricted: [],
  },
  {
    name: 'a Windows pod without runAsNonRoot',
    edit: (_p, s) => {
      s.os = { name: 'windows' };
      s.securityContext = {};
      for (const c of [...s.initContainers!, ...s.containers, ...s.ephemeralContainers!]) c.securityContext = {};
    },
    baseline: [],
    restricted: ['runAsNonRoot'],
  },
  {
    name: 'no security context at all',
    edit: (_p, s) => {
      s.securityContext = {};
      for (const c of [...s.initContainers!, ...s.containers, ...s.ephemeralContainers!]) delete c.securityContext;
    },
    baseline: [],
    restricted: ['allowPrivilegeEscalation', 'runAsNonRoot', 'seccompProfile_restricted', 'capabilities_restricted'],
  },
];

/** The IDs of the checks that fail, in check order. */
function failing(pod: PodLike, level: 'baseline' | 'restricted'): string[] {
  return [...new Set(podSecurityViolations(pod, level).map((v) => v.slice(0, v.indexOf(':'))))];
}

t.test('a compliant pod passes both standards', async (t) => {
  const pod = compliantPod();
  t.same(podViolations(pod), [], 'the pod itself is one the API server accepts');
  t.same(podSecurityViolations(pod, 'baseline'), []);
  t.same(podSecurityViolations(pod, 'restricted'), []);
  t.same(podSecurityViolations({ metadata: pod.metadata, spec: pod.spec }, 'restricted'), [], 'as a pod template too');
});

t.test('each violation is caught by its check, and only by it', async (t) => {
  for (const c of CASES) {
    const pod = compliantPod();
    c.edit(pod, pod.spec!, pod.spec!.containers[0]!);
    t.same(failing(pod, 'baseline'), c.baseline, `${c.name}: baseline`);
    t.same(failing(pod, 'restricted'), c.restricted, `${c.name}: restricted`);
  }
});

t.test('a violation names the check, the container and the field', async (t) => {
  const pod = compliantPod();
  pod.spec!.initContainers![1]!.securityContext!.allowPrivilegeEscalation = true;
  pod.spec!.containers[0]!.securityContext!.runAsUser = 0;
  t.same(podSecurityViolations(pod, 'restricted'), [
    'allowPrivilegeEscalation: container "log-shipper" must set securityContext.allowPrivilegeEscalation=false',
    'runAsUser: container "api" must not set runAsUser=0',
  ]);
});

t.test("the checks are pod-security-admission's, restricted replacing three of baseline's", async (t) => {
  const baseline = [
    'hostNamespaces',
    'privileged',
    'capabilities_baseline',
    'hostPathVolumes',
    'hostPorts',
    'appArmorProfile',
    'seLinuxOptions',
    'procMount',
    'seccompProfile_baseline',
    'sysctls',
    'windowsHostProcess',
    'hostProbesAndHostLifecycle',
  ];
  t.same(checkIds('baseline'), baseline);
  const replaced = ['capabilities_baseline', 'hostPathVolumes', 'seccompProfile_baseline'];
  t.same(checkIds('restricted'), [
    ...baseline.filter((id) => !replaced.includes(id)),
    'restrictedVolumes',
    'allowPrivilegeEscalation',
    'runAsNonRoot',
    'runAsUser',
    'seccompProfile_restricted',
    'capabilities_restricted',
  ]);
  const tested = new Set(CASES.flatMap((c) => [...c.baseline, ...c.restricted]));
  for (const id of checkIds('restricted')) t.ok(tested.has(id), `${id} has a failing case`);
  for (const id of replaced) t.ok(tested.has(id), `${id} has a failing case`);
});

// ---------------------------------------------------------------------------------------------------------
// The injected pod

const CLIENT = '0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SETTINGS: WebhookSettings = {
  image: 'ghcr.io/akv-injector/akv-injector:0.1.0',
  windowsImage: 'ghcr.io/akv-injector/akv-injector:0.1.0-windows',
  cloud: CLOUDS.AzurePublicCloud,
  namespace: 'akv-injector',
  tenantId: TENANT,
};
const workloadIdentity = { 'azure.workload.identity/client-id': CLIENT };
const mutator = createMutator(
  SETTINGS,
  memoryLookups({
    namespaces: [{ metadata: { name: 'shop' } }, { metadata: { name: 'finance' } }],
    serviceAccounts: ['checkout', 'payments', 'reports', 'orders', 'legacy-api', 'ledger'].map((name) => ({
      metadata: { namespace: name === 'ledger' ? 'finance' : 'shop', name, annotations: workloadIdentity },
    })),
  }),
);

// Every AdmissionReview fixture there is, not a list that could fall behind the folder.
const fixtureNames = readdirSync(new URL('./fixtures/admission/', import.meta.url))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length))
  .sort();

/**
 * The pod as a restricted namespace requires it: non-root and RuntimeDefault seccomp for the pod; for each Linux container
 * no privilege escalation and every capability dropped. What the pod already sets is kept.
 */
function restrictedCopy(pod: V1Pod): V1Pod {
  const copy = structuredClone(pod);
  const spec = copy.spec!;
  const windows = spec.os?.name === 'windows';
  spec.securityContext = { ...spec.securityContext, runAsNonRoot: true, ...(windows ? {} : { seccompProfile: { type: 'RuntimeDefault' } }) };
  if (windows) return copy;
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    c.securityContext = { ...c.securityContext, allowPrivilegeEscalation: false, capabilities: { ...c.securityContext?.capabilities, drop: ['ALL'] } };
  }
  return copy;
}

const injectedNames = (pod: V1Pod): string[] => (pod.spec?.initContainers ?? []).map((c) => c.name).filter((n) => n.startsWith(INIT_CONTAINER));

interface Variant {
  name: string;
  edit: (pod: V1Pod) => void;
}

const VARIANTS: Variant[] = [
  { name: 'as the pod comes', edit: () => {} },
  { name: 'pod-level runAsUser 1000', edit: (pod) => (pod.spec!.securityContext = { ...pod.spec!.securityContext, runAsUser: 1000, runAsGroup: 1000 }) },
  { name: 'init-first', edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/init-first'] = 'true') },
  { name: 'refresh-interval (the refresh sidecar, where injected)', edit: (pod) => (pod.metadata!.annotations!['akv-injector.io/refresh-interval'] = '2m') },
];

t.test('the admission fixtures are all known to the fixture loader', async (t) => {
  t.same(fixtureNames, [...FIXTURES].sort());
});

t.test('a restricted pod stays restricted once injected: every fixture, with and without a pod-level runAsUser', async (t) => {
  for (const name of fixtureNames as FixtureName[]) {
    for (const variant of VARIANTS) {
      const review = loadReview(name);
      const pod = restrictedCopy(review.request.object);
      variant.edit(pod);
      const label = `${name}, ${variant.name}`;
      t.same(podSecurityViolations(pod, 'restricted'), [], `${label}: restricted before`);

      const result = await mutator({ ...review.request, object: pod });
      t.equal(result.outcome, 'injected', `${label}: ${result.reason}`);
      const after = applyResponse(pod, result.response);
      t.ok(injectedNames(after).includes(INIT_CONTAINER), `${label}: the init container is there`);
      t.same(podSecurityViolations(after, 'restricted'), [], `${label}: restricted after`);
      t.same(podViolations(after), [], `${label}: and valid`);
    }
  }
});

t.test('the injected Linux containers meet the restricted standard by themselves, in a pod that does not', async (t) => {
  for (const name of fixtureNames as FixtureName[]) {
    const review = loadReview(name);
    if (review.request.object.spec?.os?.name === 'windows') continue;
    for (const variant of VARIANTS) {
      const pod = review.request.object;
      variant.edit(pod);
      const result = await mutator({ ...review.request, object: pod });
      const after = applyResponse(pod, result.response);
      const injected = injectedNames(after);
      t.ok(injected.length > 0, `${name}, ${variant.name}: injected`);
      // The same pod without its own containers: only what was injected, and the pod-level context, is judged.
      const alone: V1Pod = {
        ...after,
        spec: { ...after.spec!, securityContext: {}, containers: [], initContainers: after.spec!.initContainers!.filter((c) => injected.includes(c.name)) },
      };
      t.same(podSecurityViolations(alone, 'restricted'), [], `${name}, ${variant.name}: ${injected.join(', ')} restricted on their own`);
    }
  }
});

t.test('injection adds no violation to a pod that is not restricted', async (t) => {
  for (const name of fixtureNames as FixtureName[]) {
    const review = loadReview(name);
    const before = review.request.object;
    const after = applyResponse(before, (await mutator(review.request)).response);
    for (const level of ['baseline', 'restricted'] as const) {
      const added = failing(after, level).filter((id) => !failing(before, level).includes(id));
      t.same(added, [], `${name}: ${level}`);
    }
  }
});
