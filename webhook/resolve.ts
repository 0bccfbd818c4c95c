// Resolve a pod's injection configuration: pod annotations > SecretProviderClass > namespace annotations
// > ServiceAccount annotations > the webhook's flags. Every problem is collected, each naming its source.
import { posix } from 'node:path';
import type { V1Container, V1Namespace, V1Pod, V1ServiceAccount, V1Volume } from '@kubernetes/client-node';
import { clientIdProblem, tenantIdProblem } from '../src/azure-ids.js';
import { findCloud, type Cloud } from '../src/clouds.js';
import { decodeObjectList, MAX_OBJECT_LIST_BYTES } from '../src/object-list.js';
import { parseGoBool, parseObjects, serializeObjects } from '../src/objects.js';
import type { ObjectSpec } from '../src/object-spec.js';
import { quote } from '../src/quote.js';
import { isVaultName, parseVaultUrl } from '../src/vault-url.js';
import { CRD_MISSING, type Lookups, type SecretProviderClass } from './lookups.js';
import {
  ANNOTATIONS,
  DEFAULT_MOUNT_PATH,
  DEFAULT_TOKEN_EXPIRATION,
  RESERVED_CONTAINER_NAMES,
  SECRETS_VOLUME,
  TOKEN_AUDIENCE,
  TOKEN_MOUNT_PATH,
  TOKEN_VOLUME,
  WORKLOAD_IDENTITY,
} from './names.js';
import { resolveRefreshInterval } from './refresh-sidecar.js';
import type { WebhookSettings } from './settings.js';

/** Everything the injection needs, validated and normalized. */
export interface InjectionConfig {
  vaultUrl: string;
  objects: ObjectSpec[];
  /** `objects` as the init container's AKV_INJECTOR_OBJECTS. */
  objectsJson: string;
  clientId: string;
  tenantId: string;
  cloud: Cloud;
  mountPath: string;
  /** Names of the containers that get the mount; undefined: every container in spec.containers. */
  containers: string[] | undefined;
  tokenExpiration: number;
  initFirst: boolean;
  /** akv-injector.io/refresh-interval in milliseconds; undefined: no refresh sidecar. */
  refreshIntervalMs: number | undefined;
  windows: boolean;
  image: string;
}

export interface Resolution {
  config?: InjectionConfig;
  problems: string[];
  warnings: string[];
}

/** A value and where it came from, for messages. */
interface Sourced {
  value: string;
  origin: string;
}

const CLOUD_NAMES = 'AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud';
const IDENTITY_MODES = ['usePodIdentity', 'useVMManagedIdentity', 'useAzureTokenProxy'];

export interface ResolveInput {
  pod: V1Pod;
  namespace: string;
  namespaceObject: V1Namespace | undefined;
  lookups: Lookups;
  settings: WebhookSettings;
}

/** Resolve and validate; lookup failures other than "not found" propagate (the admission errors). */
/**
 * Containers a pod may have to be injected (init, app and ephemeral together). Kubernetes sets no
 * limit, but each selected container costs a mount in the patch, and a pod of this many is already
 * near etcd's object size limit.
 */
export const MAX_CONTAINERS = 1000;
/**
 * Annotations a pod may have to be injected: adding the status annotation copies the map, and a
 * map of many thousand keys costs V8 over a microsecond a key to copy and again to compare.
 */
export const MAX_ANNOTATIONS = 1000;
/** The longest akv-injector.io/containers: the names of MAX_CONTAINERS containers (63 characters and a comma each). */
const MAX_CONTAINERS_ANNOTATION = MAX_CONTAINERS * 64;

export async function resolveConfig(input: ResolveInput): Promise<Resolution> {
  const { pod, namespace, settings } = input;
  const problems: string[] = [];
  const warnings: string[] = [];
  const containerCount = (pod.spec?.containers?.length ?? 0) + (pod.spec?.initContainers?.length ?? 0) + (pod.spec?.ephemeralContainers?.length ?? 0);
  if (containerCount > MAX_CONTAINERS) {
    return { problems: [`the pod has ${containerCount} containers; akv-injector injects pods of at most ${MAX_CONTAINERS}`], warnings };
  }
  const annotationCount = Object.keys(pod.metadata?.annotations ?? {}).length;
  if (annotationCount > MAX_ANNOTATIONS) {
    return { problems: [`the pod has ${annotationCount} annotations; akv-injector injects pods of at most ${MAX_ANNOTATIONS}`], warnings };
  }
  const podNotes = annotationSource(pod.metadata?.annotations, 'on the pod');
  const nsNotes = annotationSource(input.namespaceObject?.metadata?.annotations, `on namespace ${namespace}`);
  const fromAnnotations = (key: string): Sourced | undefined => podNotes(key) ?? nsNotes(key);

  const spc = await loadSpc(fromAnnotations(ANNOTATIONS.secretProviderClass), namespace, input.lookups, problems, warnings);
  const serviceAccountName = pod.spec?.serviceAccountName || 'default';
  const serviceAccount = await input.lookups.serviceAccount(namespace, serviceAccountName);
  const saNotes = serviceAccountSource(serviceAccount, namespace, serviceAccountName);

  const cloudSource = first(podNotes(ANNOTATIONS.cloud), spc.param('cloudName'), nsNotes(ANNOTATIONS.cloud));
  let cloud = settings.cloud;
  if (cloudSource !== undefined) {
    const found = findCloud(cloudSource.value);
    if (found === undefined) problems.push(`${cloudSource.origin}: ${quote(cloudSource.value)} is not a known cloud; use one of ${CLOUD_NAMES}`);
    else cloud = found;
  }

  const vault = resolveVault(first(podNotes(ANNOTATIONS.vault), spc.param('keyvaultName'), nsNotes(ANNOTATIONS.vault)), cloud, problems);
  const objectsSource = first(podNotes(ANNOTATIONS.objects), spc.param('objects'), nsNotes(ANNOTATIONS.objects));
  const objects = resolveObjects(objectsSource, problems);
  if (objects !== undefined && objects.objects.length === 0) {
    warnings.push(
      `${objectsSource?.origin ?? ANNOTATIONS.objects}: lists no object, so the init container writes no file; list objects with objectName and objectType`,
    );
  }

  const clientId = first(podNotes(ANNOTATIONS.clientId), spc.param('clientID'), nsNotes(ANNOTATIONS.clientId), saNotes(WORKLOAD_IDENTITY.clientId));
  if (clientId === undefined) {
    problems.push(
      `no client ID: set annotation ${ANNOTATIONS.clientId} on the pod, or ${WORKLOAD_IDENTITY.clientId} on ServiceAccount ${namespace}/${serviceAccountName}${serviceAccount === undefined ? ' (which does not exist)' : ''}, to the client ID of the managed identity or app registration`,
    );
  } else {
    const problem = clientIdProblem(clientId.value);
    if (problem !== undefined) problems.push(`${clientId.origin}: ${quote(clientId.value)} ${problem}`);
  }

  const flagTenant = settings.tenantId ? { value: settings.tenantId, origin: 'the webhook flag --tenant-id' } : undefined;
  const tenantId = first(
    podNotes(ANNOTATIONS.tenantId),
    spc.param('tenantID'),
    spc.param('tenantId'),
    nsNotes(ANNOTATIONS.tenantId),
    saNotes(WORKLOAD_IDENTITY.tenantId),
    flagTenant,
  );
  if (tenantId === undefined) {
    problems.push(
      `no tenant ID: set annotation ${ANNOTATIONS.tenantId} on the pod, ${WORKLOAD_IDENTITY.tenantId} on ServiceAccount ${namespace}/${serviceAccountName}, or the webhook's --tenant-id`,
    );
  } else {
    const problem = tenantIdProblem(tenantId.value);
    if (problem !== undefined) problems.push(`${tenantId.origin}: ${quote(tenantId.value)} ${problem}`);
  }

  const mountPath = resolveMountPath(fromAnnotations(ANNOTATIONS.mountPath), problems);
  const containers = resolveContainers(podNotes(ANNOTATIONS.containers) ?? nsNotes(ANNOTATIONS.containers), pod, problems);
  const tokenExpiration = resolveTokenExpiration(fromAnnotations(ANNOTATIONS.tokenExpiration), problems);
  const initFirst = resolveBool(fromAnnotations(ANNOTATIONS.initFirst), false, problems);
  const refreshIntervalMs = resolveRefreshInterval(fromAnnotations(ANNOTATIONS.refreshInterval), settings, problems);
  checkMountClashes(pod, containers, mountPath, problems);

  const windows = pod.spec?.os?.name === 'windows';
  problems.push(...reservedNameProblems(pod, windows));
  if (windows && !settings.windowsImage) {
    problems.push('this is a Windows pod (spec.os.name: windows) but the webhook has no Windows image: start it with --windows-image, or run the pod on Linux');
  }

  if (problems.length > 0 || vault === undefined || objects === undefined || clientId === undefined || tenantId === undefined) {
    return { problems, warnings };
  }
  return {
    problems,
    warnings,
    config: {
      vaultUrl: vault,
      objects: objects.objects,
      objectsJson: objects.json,
      clientId: clientId.value,
      tenantId: tenantId.value,
      cloud,
      mountPath,
      containers,
      tokenExpiration,
      initFirst,
      refreshIntervalMs,
      windows,
      image: windows ? (settings.windowsImage as string) : settings.image,
    },
  };
}

function annotationSource(annotations: Record<string, string> | undefined, where: string): (key: string) => Sourced | undefined {
  return (key) => {
    const value = annotations?.[key]?.trim();
    return value ? { value, origin: `annotation ${key} ${where}` } : undefined;
  };
}

function serviceAccountSource(sa: V1ServiceAccount | undefined, namespace: string, name: string): (key: string) => Sourced | undefined {
  return (key) => {
    const value = sa?.metadata?.annotations?.[key]?.trim();
    return value ? { value, origin: `annotation ${key} on ServiceAccount ${namespace}/${name}` } : undefined;
  };
}

function first(...candidates: Array<Sourced | undefined>): Sourced | undefined {
  return candidates.find((c) => c !== undefined);
}

interface LoadedSpc {
  param(name: string): Sourced | undefined;
}

const NO_SPC: LoadedSpc = { param: () => undefined };

// Read the referenced SecretProviderClass the way the Azure provider reads it.
async function loadSpc(reference: Sourced | undefined, namespace: string, lookups: Lookups, problems: string[], warnings: string[]): Promise<LoadedSpc> {
  if (reference === undefined) return NO_SPC;
  const name = reference.value;
  const spc = await lookups.secretProviderClass(namespace, name);
  if (spc === CRD_MISSING) {
    problems.push(
      `${reference.origin}: ${quote(name)} cannot be used: the SecretProviderClass CRD (secrets-store.csi.x-k8s.io/v1) is not installed in this cluster; set ${ANNOTATIONS.vault} and ${ANNOTATIONS.objects} instead`,
    );
    return NO_SPC;
  }
  if (spc === undefined) {
    problems.push(`${reference.origin}: SecretProviderClass ${quote(name)} not found in namespace ${namespace}`);
    return NO_SPC;
  }
  const where = `SecretProviderClass ${namespace}/${name}`;
  const provider = (spc.spec?.provider ?? '').trim();
  if (provider !== 'azure') {
    problems.push(`${where}: provider ${quote(provider)} is not supported; akv-injector reads only provider "azure"`);
    return NO_SPC;
  }
  const parameters = normalizeParameters(spc);
  for (const mode of IDENTITY_MODES) {
    const value = parameters.get(mode);
    if (value === undefined || value === '') continue;
    const enabled = parseGoBool(value);
    if (enabled === undefined) problems.push(`${where} parameter ${mode}: ${quote(value)} must be true or false`);
    else if (enabled)
      problems.push(
        `${where} parameter ${mode}: ${quote(value)}: only workload identity is supported; remove ${mode} and set clientID to the workload identity's client ID`,
      );
  }
  const secretObjects = spc.spec?.secretObjects;
  if (Array.isArray(secretObjects) && secretObjects.length > 0) {
    warnings.push(`${where}: secretObjects (sync to Kubernetes Secrets) is ignored by akv-injector; the objects are written as files only`);
  }
  return {
    param: (key) => {
      const value = parameters.get(key);
      return value ? { value, origin: `${where} parameter ${key}` } : undefined;
    },
  };
}

// A Map: parameter names are the SPC author's, and "__proto__" or "constructor" must stay plain keys.
function normalizeParameters(spc: SecretProviderClass): Map<string, string> {
  const out = new Map<string, string>();
  const parameters = spc.spec?.parameters;
  if (parameters === null || typeof parameters !== 'object') return out;
  for (const [key, value] of Object.entries(parameters)) {
    if (typeof value === 'string') out.set(key, value.trim());
  }
  return out;
}

function resolveVault(source: Sourced | undefined, cloud: Cloud, problems: string[]): string | undefined {
  if (source === undefined) {
    problems.push(
      `no vault: set annotation ${ANNOTATIONS.vault} to the Key Vault name or URL (or reference a SecretProviderClass with ${ANNOTATIONS.secretProviderClass})`,
    );
    return undefined;
  }
  if (isVaultName(source.value)) return `https://${source.value.toLowerCase()}.${cloud.keyVaultSuffix}/`;
  if (!source.value.includes('://')) {
    problems.push(`${source.origin}: ${quote(source.value)} is not a Key Vault name (3-24 letters, digits and hyphens) nor an https:// URL`);
    return undefined;
  }
  const parsed = parseVaultUrl(source.value, [cloud.keyVaultSuffix]);
  if (!parsed.ok) {
    problems.push(`${source.origin}: ${quote(source.value)} ${parsed.problem} (cloud ${cloud.name})`);
    return undefined;
  }
  return parsed.url;
}

/** A parsed object list and its AKV_INJECTOR_OBJECTS form. */
interface ObjectList {
  objects: ObjectSpec[];
  json: string;
}

/**
 * Largest AKV_INJECTOR_OBJECTS: Linux refuses to start a process with an environment string over
 * 128 KiB (MAX_ARG_STRLEN), which the pod would only show as a failed container start.
 */
export const MAX_OBJECTS_ENV_BYTES = 100 * 1024;

function resolveObjects(source: Sourced | undefined, problems: string[]): ObjectList | undefined {
  if (source === undefined) {
    problems.push(`no objects: set annotation ${ANNOTATIONS.objects} to a list such as [{"objectName": "db-password", "objectType": "secret"}]`);
    return undefined;
  }
  const parsed = parseObjectListCached(source.value);
  problems.push(...parsed.problems.map((p) => `${source.origin}: ${p}`));
  return parsed.list;
}

interface ParsedList {
  list?: ObjectList;
  problems: string[];
}

// The pods of one workload carry the same object list: parse each distinct text once. Entries are
// shared between admissions and never modified; the texts are at most MAX_OBJECT_LIST_BYTES each.
const objectListCache = new Map<string, ParsedList>();
const OBJECT_LIST_CACHE_ENTRIES = 256;

function parseObjectListCached(text: string): ParsedList {
  const hit = objectListCache.get(text);
  if (hit !== undefined) {
    objectListCache.delete(text);
    objectListCache.set(text, hit);
    return hit;
  }
  const parsed = parseObjectList(text);
  // A text refused for its size is not kept: the cache holds at most its entries × the largest list.
  if (text.length > MAX_OBJECT_LIST_BYTES) return parsed;
  objectListCache.set(text, parsed);
  if (objectListCache.size > OBJECT_LIST_CACHE_ENTRIES) objectListCache.delete(objectListCache.keys().next().value as string);
  return parsed;
}

function parseObjectList(text: string): ParsedList {
  const decoded = decodeObjectList(text);
  if (!decoded.ok) return { problems: [decoded.problem] };
  const { objects, problems } = parseObjects(decoded.items);
  if (problems.length > 0) return { problems };
  const json = serializeObjects(objects);
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_OBJECTS_ENV_BYTES) {
    return {
      problems: [
        `the ${objects.length} objects take ${bytes} bytes as the init container's AKV_INJECTOR_OBJECTS, more than the ${MAX_OBJECTS_ENV_BYTES} a process environment safely holds; list fewer objects or use shorter names and aliases`,
      ],
    };
  }
  return { list: { objects, json }, problems: [] };
}

/** Where a mount of the secrets would hide what the containers need to run. */
const SYSTEM_PATHS = ['/dev', '/proc', '/sys'];

// The path as the container runtime sees it: repeated and trailing slashes do not matter.
function resolveMountPath(source: Sourced | undefined, problems: string[]): string {
  if (source === undefined) return DEFAULT_MOUNT_PATH;
  const problem = mountPathProblem(source.value);
  if (problem !== undefined) {
    problems.push(`${source.origin}: ${quote(source.value)} ${problem}`);
    return DEFAULT_MOUNT_PATH;
  }
  return normalizeMountPath(source.value);
}

function mountPathProblem(value: string): string | undefined {
  if (!value.startsWith('/')) return 'must be an absolute path, such as /mnt/secrets-store';
  if (value.length > 1024) return 'is too long (at most 1024 characters)';
  if (value.includes(':')) return 'must not contain ":"';
  if (/[\0\n\r]/.test(value)) return 'must not contain NUL or line breaks';
  const path = normalizeMountPath(value);
  if (path === '/') return 'must not be /: pick a folder such as /mnt/secrets-store';
  if (value.split('/').some((s) => s === '..' || s === '.')) return 'must not contain "." or ".." segments';
  if (overlaps(path, TOKEN_MOUNT_PATH)) return `must not overlap ${TOKEN_MOUNT_PATH}, where the init container reads its token`;
  const system = SYSTEM_PATHS.find((p) => path === p || path.startsWith(`${p}/`));
  if (system !== undefined) return `must not be in ${system}, which the container runtime provides`;
  return undefined;
}

function normalizeMountPath(value: string): string {
  const path = posix.normalize(value);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** One path is the other or inside it. */
function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/**
 * The injected names are ours: a pod may carry them only as akv-injector made them (an injected pod
 * whose status annotation was lost is injected again as a no-op). Anything else would be reused in
 * their place: a hostPath named like the secrets volume would put the secrets on the node's disk.
 */
function reservedNameProblems(pod: V1Pod, windows: boolean): string[] {
  const problems: string[] = [];
  const spec = pod.spec;
  const initContainers = spec?.initContainers ?? [];
  const others: V1Container[] = [...(spec?.containers ?? []), ...((spec?.ephemeralContainers ?? []) as V1Container[])];
  for (const container of others) {
    if (RESERVED_CONTAINER_NAMES.includes(container.name)) {
      problems.push(`container name ${quote(container.name)} is reserved for the init container akv-injector adds: rename the pod's container`);
    }
  }
  const ours = new Set(initContainers.filter(isOurs));
  for (const container of initContainers) {
    if (RESERVED_CONTAINER_NAMES.includes(container.name) && !ours.has(container)) {
      problems.push(
        `init container name ${quote(container.name)} is reserved for the init container akv-injector adds, and the pod's is not akv-injector's: rename the pod's container`,
      );
    }
  }
  for (const container of [...initContainers, ...others]) {
    if (!ours.has(container) && (container.volumeMounts ?? []).some((m) => m.name === TOKEN_VOLUME)) {
      problems.push(
        `container ${container.name} mounts volume ${TOKEN_VOLUME}: that token is mounted only into akv-injector's own init container; remove the mount`,
      );
    }
  }
  for (const volume of spec?.volumes ?? []) {
    if (volume.name === SECRETS_VOLUME && !isSecretsVolume(volume, windows)) {
      problems.push(
        `volume name ${quote(SECRETS_VOLUME)} is reserved for the in-memory volume akv-injector adds, and the pod's is another kind: rename the pod's volume (and its mounts)`,
      );
    }
    if (volume.name === TOKEN_VOLUME && !isTokenVolume(volume)) {
      problems.push(
        `volume name ${quote(TOKEN_VOLUME)} is reserved for the service-account token volume akv-injector adds, and the pod's is another kind: rename the pod's volume (and its mounts)`,
      );
    }
  }
  return problems;
}

// As inject.ts makes them: the fetch (or refresh) role of this image, with the secrets volume mounted.
function isOurs(container: V1Container): boolean {
  const role = container.args?.[0];
  return (
    RESERVED_CONTAINER_NAMES.includes(container.name) &&
    (role === 'fetch' || role === 'refresh') &&
    (container.volumeMounts ?? []).some((m) => m.name === SECRETS_VOLUME)
  );
}

function isSecretsVolume(volume: V1Volume, windows: boolean): boolean {
  const sources = Object.keys(volume).filter((key) => key !== 'name');
  return sources.length === 1 && volume.emptyDir !== undefined && (windows || volume.emptyDir.medium === 'Memory');
}

function isTokenVolume(volume: V1Volume): boolean {
  const sources = Object.keys(volume).filter((key) => key !== 'name');
  const projected = volume.projected?.sources ?? [];
  return sources.length === 1 && projected.length === 1 && projected[0]?.serviceAccountToken?.audience === TOKEN_AUDIENCE;
}

function resolveContainers(source: Sourced | undefined, pod: V1Pod, problems: string[]): string[] | undefined {
  if (source === undefined) return undefined;
  if (source.value.length > MAX_CONTAINERS_ANNOTATION) {
    problems.push(
      `${source.origin}: is ${source.value.length} characters long; at most ${MAX_CONTAINERS_ANNOTATION} (the names of ${MAX_CONTAINERS} containers)`,
    );
    return undefined;
  }
  const names = [
    ...new Set(
      source.value
        .split(',')
        .map((n) => n.trim())
        .filter((n) => n !== ''),
    ),
  ];
  const known = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c) => c.name);
  const knownSet = new Set(known);
  const unknown = names.filter((n) => !knownSet.has(n));
  if (names.length === 0) problems.push(`${source.origin}: is empty; list container names separated by commas`);
  if (unknown.length > 0) {
    problems.push(
      `${source.origin}: ${listSome(unknown.map((n) => quote(n)))} ${unknown.length === 1 ? 'is not a container' : 'are not containers'} of this pod; its containers are ${listSome(known) || '(none)'}`,
    );
  }
  return names;
}

/** A list for a message: the first few items, and how many more. */
function listSome(items: string[], shown = 10): string {
  const head = items.slice(0, shown).join(', ');
  return items.length > shown ? `${head} and ${items.length - shown} more` : head;
}

function resolveTokenExpiration(source: Sourced | undefined, problems: string[]): number {
  if (source === undefined) return DEFAULT_TOKEN_EXPIRATION;
  const value = Number(source.value);
  if (!/^\d+$/.test(source.value) || value < 600 || value > 86_400) {
    problems.push(`${source.origin}: ${quote(source.value)} must be a whole number of seconds from 600 to 86400`);
    return DEFAULT_TOKEN_EXPIRATION;
  }
  return value;
}

function resolveBool(source: Sourced | undefined, fallback: boolean, problems: string[]): boolean {
  if (source === undefined) return fallback;
  const value = parseGoBool(source.value);
  if (value === undefined) {
    problems.push(`${source.origin}: ${quote(source.value)} must be "true" or "false"`);
    return fallback;
  }
  return value;
}

// The API server rejects two mounts at one path in a container: say so before it does.
function checkMountClashes(pod: V1Pod, containers: string[] | undefined, mountPath: string, problems: string[]): void {
  const named = new Set(containers);
  const selected =
    containers === undefined
      ? (pod.spec?.containers ?? [])
      : [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].filter((c) => named.has(c.name));
  for (const container of selected) {
    const clash = (container.volumeMounts ?? []).find((m) => m.name !== SECRETS_VOLUME && normalizeMountPath(m.mountPath) === mountPath);
    if (clash !== undefined) {
      problems.push(`container ${container.name} already mounts volume ${clash.name} at ${mountPath}: set annotation ${ANNOTATIONS.mountPath} to another path`);
    }
  }
}
