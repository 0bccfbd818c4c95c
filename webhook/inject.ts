// Config + pod → the injected pod. Pure, and idempotent: each step adds what is absent and leaves what is there.
import type { V1Container, V1EnvVar, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import {
  ANNOTATIONS,
  INIT_CONTAINER,
  RESERVED_CONTAINER_NAMES,
  SECRETS_VOLUME,
  STATUS_INJECTED,
  TOKEN_AUDIENCE,
  TOKEN_FILE,
  TOKEN_MOUNT_PATH,
  TOKEN_VOLUME,
} from './names.js';
import { refreshSidecar } from './refresh-sidecar.js';
import type { InjectionConfig } from './resolve.js';

/** Size of the in-memory volume: Key Vault objects are small (a secret is at most 25 KB). */
export const SECRETS_VOLUME_SIZE = '16Mi';

/**
 * `pod` with the volumes, the init container, the mounts and the status annotation added. The input is
 * never modified; unchanged parts are shared with it (copy on write), so the diff only walks what changed.
 */
export function injectPod(pod: V1Pod, config: InjectionConfig): V1Pod {
  const spec = pod.spec ?? { containers: [] };
  const existing = spec.initContainers ?? [];
  // A pod running as root gets no say: the init container is non-root, so it runs as 65532 (root can still read its files).
  const podUser = spec.securityContext?.runAsUser;
  const podSetsUser = podUser !== undefined && podUser !== null && podUser !== 0;
  const initContainers = existing.some((c) => c.name === INIT_CONTAINER)
    ? existing
    : config.initFirst
      ? [...injectedInitContainers(config, podSetsUser), ...existing]
      : [...existing, ...injectedInitContainers(config, podSetsUser)];

  const mount: V1VolumeMount = { name: SECRETS_VOLUME, mountPath: config.mountPath, readOnly: true };
  const withMount = (container: V1Container): V1Container =>
    (container.volumeMounts ?? []).some((m) => m.name === SECRETS_VOLUME)
      ? container
      : { ...container, volumeMounts: [...(container.volumeMounts ?? []), mount] };
  // By default the app containers; with the containers annotation, exactly those named (init containers too).
  const named = new Set(config.containers);
  const selected = (container: V1Container, isInit: boolean): boolean =>
    !RESERVED_CONTAINER_NAMES.includes(container.name) && (config.containers === undefined ? !isInit : named.has(container.name));

  return {
    ...pod,
    metadata: { ...pod.metadata, annotations: { ...(pod.metadata?.annotations ?? {}), [ANNOTATIONS.status]: STATUS_INJECTED } },
    spec: {
      ...spec,
      volumes: addIfAbsent(spec.volumes ?? [], tokenVolume(config), secretsVolume(config)),
      initContainers: initContainers.map((c) => (selected(c, true) ? withMount(c) : c)),
      containers: spec.containers.map((c) => (selected(c, false) ? withMount(c) : c)),
    },
  };
}

/** The init container's environment: the whole job, so the fetch role needs no Kubernetes access. */
export function fetchEnvironment(config: InjectionConfig): V1EnvVar[] {
  return [
    { name: 'AZURE_CLIENT_ID', value: config.clientId },
    { name: 'AZURE_TENANT_ID', value: config.tenantId },
    { name: 'AZURE_FEDERATED_TOKEN_FILE', value: `${TOKEN_MOUNT_PATH}/${TOKEN_FILE}` },
    { name: 'AZURE_AUTHORITY_HOST', value: config.cloud.authorityHost },
    { name: 'AKV_INJECTOR_VAULT_URL', value: config.vaultUrl },
    { name: 'AKV_INJECTOR_OBJECTS', value: config.objectsJson },
    { name: 'AKV_INJECTOR_OUTPUT_DIR', value: config.mountPath },
  ];
}

// The fetch, and right after it the refresh sidecar when the pod asks for one.
function injectedInitContainers(config: InjectionConfig, podSetsUser: boolean): V1Container[] {
  const init = initContainer(config, podSetsUser);
  return config.refreshIntervalMs === undefined ? [init] : [init, refreshSidecar(init, config.refreshIntervalMs)];
}

function tokenVolume(config: InjectionConfig): V1Volume {
  return {
    name: TOKEN_VOLUME,
    projected: {
      sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: config.tokenExpiration, path: TOKEN_FILE } }],
    },
  };
}

function secretsVolume(config: InjectionConfig): V1Volume {
  // tmpfs on Linux; Windows has no memory medium, the volume is disk-backed there.
  return { name: SECRETS_VOLUME, emptyDir: config.windows ? { sizeLimit: SECRETS_VOLUME_SIZE } : { medium: 'Memory', sizeLimit: SECRETS_VOLUME_SIZE } };
}

// The files belong to the init container's user: the pod's runAsUser when it sets one, so an app
// running as that user can read even 0400 files; else the image's non-root user.
function initContainer(config: InjectionConfig, podSetsUser: boolean): V1Container {
  const container: V1Container = {
    name: INIT_CONTAINER,
    image: config.image,
    imagePullPolicy: 'IfNotPresent',
    args: ['fetch'],
    env: fetchEnvironment(config),
    volumeMounts: [
      { name: TOKEN_VOLUME, mountPath: TOKEN_MOUNT_PATH, readOnly: true },
      { name: SECRETS_VOLUME, mountPath: config.mountPath },
    ],
    resources: {
      requests: { cpu: '50m', memory: '64Mi' },
      limits: { cpu: '1', memory: '128Mi' },
    },
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  if (!config.windows) {
    // The restricted Pod Security Standard; these fields are Linux-only and rejected on Windows pods.
    container.securityContext = {
      runAsNonRoot: true,
      ...(podSetsUser ? {} : { runAsUser: 65532, runAsGroup: 65532 }),
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    };
  }
  return container;
}

function addIfAbsent(volumes: V1Volume[], ...wanted: V1Volume[]): V1Volume[] {
  const missing = wanted.filter((w) => !volumes.some((v) => v.name === w.name));
  return missing.length === 0 ? volumes : [...volumes, ...missing];
}
