// Resolve a pod's injection configuration: pod annotations > SecretProviderClass > namespace annotations
// > ServiceAccount annotations > the webhook's flags. Every problem is collected, each naming its source.
import type { V1Namespace, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import { clientIdProblem, tenantIdProblem } from '../src/azure-ids.js';
import { findCloud, type Cloud } from '../src/clouds.js';
import { decodeObjectList } from '../src/object-list.js';
import { parseGoBool, parseObjects } from '../src/objects.js';
import type { ObjectSpec } from '../src/object-spec.js';
import { isVaultName, parseVaultUrl } from '../src/vault-url.js';
import { CRD_MISSING, type Lookups, type SecretProviderClass } from './lookups.js';
import { ANNOTATIONS, DEFAULT_MOUNT_PATH, DEFAULT_TOKEN_EXPIRATION, SECRETS_VOLUME, TOKEN_MOUNT_PATH, WORKLOAD_IDENTITY } from './names.js';
import type { WebhookSettings } from './settings.js';

/** Everything the injection needs, validated and normalized. */
export interface InjectionConfig {
  vaultUrl: string;
  objects: ObjectSpec[];
  clientId: string;
  tenantId: string;
  cloud: Cloud;
  mountPath: string;
  /** Names of the containers that get the mount; undefined: every container in spec.containers. */
  containers: string[] | undefined;
  tokenExpiration: number;
  initFirst: boolean;
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
export async function resolveConfig(input: ResolveInput): Promise<Resolution> {
  const { pod, namespace, settings } = input;
  const problems: string[] = [];
  const warnings: string[] = [];
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
    if (found === undefined) problems.push(`${cloudSource.origin}: ${JSON.stringify(cloudSource.value)} is not a known cloud; use one of ${CLOUD_NAMES}`);
    else cloud = found;
  }

  const vault = resolveVault(first(podNotes(ANNOTATIONS.vault), spc.param('keyvaultName'), nsNotes(ANNOTATIONS.vault)), cloud, problems);
  const objects = resolveObjects(first(podNotes(ANNOTATIONS.objects), spc.param('objects'), nsNotes(ANNOTATIONS.objects)), problems);

  const clientId = first(podNotes(ANNOTATIONS.clientId), spc.param('clientID'), nsNotes(ANNOTATIONS.clientId), saNotes(WORKLOAD_IDENTITY.clientId));
  if (clientId === undefined) {
    problems.push(`no client ID: set annotation ${ANNOTATIONS.clientId} on the pod, or ${WORKLOAD_IDENTITY.clientId} on ServiceAccount ${namespace}/${serviceAccountName}${serviceAccount === undefined ? ' (which does not exist)' : ''}, to the client ID of the managed identity or app registration`);
  } else {
    const problem = clientIdProblem(clientId.value);
    if (problem !== undefined) problems.push(`${clientId.origin}: ${JSON.stringify(clientId.value)} ${problem}`);
  }

  const flagTenant = settings.tenantId ? { value: settings.tenantId, origin: 'the webhook flag --tenant-id' } : undefined;
  const tenantId = first(podNotes(ANNOTATIONS.tenantId), spc.param('tenantID'), spc.param('tenantId'), nsNotes(ANNOTATIONS.tenantId), saNotes(WORKLOAD_IDENTITY.tenantId), flagTenant);
  if (tenantId === undefined) {
    problems.push(`no tenant ID: set annotation ${ANNOTATIONS.tenantId} on the pod, ${WORKLOAD_IDENTITY.tenantId} on ServiceAccount ${namespace}/${serviceAccountName}, or the webhook's --tenant-id`);
  } else {
    const problem = tenantIdProblem(tenantId.value);
    if (problem !== undefined) problems.push(`${tenantId.origin}: ${JSON.stringify(tenantId.value)} ${problem}`);
  }

  const mountPath = resolveMountPath(fromAnnotations(ANNOTATIONS.mountPath), problems);
  const containers = resolveContainers(podNotes(ANNOTATIONS.containers) ?? nsNotes(ANNOTATIONS.containers), pod, problems);
  const tokenExpiration = resolveTokenExpiration(fromAnnotations(ANNOTATIONS.tokenExpiration), problems);
  const initFirst = resolveBool(fromAnnotations(ANNOTATIONS.initFirst), false, problems);
  checkMountClashes(pod, containers, mountPath, problems);

  const windows = pod.spec?.os?.name === 'windows';
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
      objects,
      clientId: clientId.value,
      tenantId: tenantId.value,
      cloud,
      mountPath,
      containers,
      tokenExpiration,
      initFirst,
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
    problems.push(`${reference.origin}: ${JSON.stringify(name)} cannot be used: the SecretProviderClass CRD (secrets-store.csi.x-k8s.io/v1) is not installed in this cluster; set ${ANNOTATIONS.vault} and ${ANNOTATIONS.objects} instead`);
    return NO_SPC;
  }
  if (spc === undefined) {
    problems.push(`${reference.origin}: SecretProviderClass ${JSON.stringify(name)} not found in namespace ${namespace}`);
    return NO_SPC;
  }
  const where = `SecretProviderClass ${namespace}/${name}`;
  const provider = (spc.spec?.provider ?? '').trim();
  if (provider !== 'azure') {
    problems.push(`${where}: provider ${JSON.stringify(provider)} is not supported; akv-injector reads only provider "azure"`);
    return NO_SPC;
  }
  const parameters = normalizeParameters(spc);
  for (const mode of IDENTITY_MODES) {
    const value = parameters[mode];
    if (value === undefined || value === '') continue;
    const enabled = parseGoBool(value);
    if (enabled === undefined) problems.push(`${where} parameter ${mode}: ${JSON.stringify(value)} must be true or false`);
    else if (enabled) problems.push(`${where} parameter ${mode}: ${JSON.stringify(value)}: only workload identity is supported; remove ${mode} and set clientID to the workload identity's client ID`);
  }
  if ((spc.spec?.secretObjects ?? []).length > 0) {
    warnings.push(`${where}: secretObjects (sync to Kubernetes Secrets) is ignored by akv-injector; the objects are written as files only`);
  }
  return {
    param: (key) => {
      const value = parameters[key];
      return value ? { value, origin: `${where} parameter ${key}` } : undefined;
    },
  };
}

function normalizeParameters(spc: SecretProviderClass): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(spc.spec?.parameters ?? {})) {
    if (typeof value === 'string') out[key] = value.trim();
  }
  return out;
}

function resolveVault(source: Sourced | undefined, cloud: Cloud, problems: string[]): string | undefined {
  if (source === undefined) {
    problems.push(`no vault: set annotation ${ANNOTATIONS.vault} to the Key Vault name or URL (or reference a SecretProviderClass with ${ANNOTATIONS.secretProviderClass})`);
    return undefined;
  }
  if (isVaultName(source.value)) return `https://${source.value.toLowerCase()}.${cloud.keyVaultSuffix}/`;
  if (!source.value.includes('://')) {
    problems.push(`${source.origin}: ${JSON.stringify(source.value)} is not a Key Vault name (3-24 letters, digits and hyphens) nor an https:// URL`);
    return undefined;
  }
  const parsed = parseVaultUrl(source.value, [cloud.keyVaultSuffix]);
  if (!parsed.ok) {
    problems.push(`${source.origin}: ${JSON.stringify(source.value)} ${parsed.problem} (cloud ${cloud.name})`);
    return undefined;
  }
  return parsed.url;
}

function resolveObjects(source: Sourced | undefined, problems: string[]): ObjectSpec[] | undefined {
  if (source === undefined) {
    problems.push(`no objects: set annotation ${ANNOTATIONS.objects} to a list such as [{"objectName": "db-password", "objectType": "secret"}]`);
    return undefined;
  }
  const parsed = parseObjectListCached(source.value);
  problems.push(...parsed.problems.map((p) => `${source.origin}: ${p}`));
  return parsed.problems.length === 0 ? parsed.objects : undefined;
}

// The pods of one workload carry the same object list: parse each distinct text once.
// Entries are shared between admissions and never modified.
const objectListCache = new Map<string, { objects: ObjectSpec[]; problems: string[] }>();
const OBJECT_LIST_CACHE_ENTRIES = 256;
const OBJECT_LIST_CACHE_MAX_TEXT = 64 * 1024;

function parseObjectListCached(text: string): { objects: ObjectSpec[]; problems: string[] } {
  const hit = objectListCache.get(text);
  if (hit !== undefined) {
    objectListCache.delete(text);
    objectListCache.set(text, hit);
    return hit;
  }
  const decoded = decodeObjectList(text);
  const parsed = decoded.ok ? parseObjects(decoded.items) : { objects: [], problems: [decoded.problem] };
  if (text.length <= OBJECT_LIST_CACHE_MAX_TEXT) {
    objectListCache.set(text, parsed);
    if (objectListCache.size > OBJECT_LIST_CACHE_ENTRIES) objectListCache.delete(objectListCache.keys().next().value as string);
  }
  return parsed;
}

function resolveMountPath(source: Sourced | undefined, problems: string[]): string {
  if (source === undefined) return DEFAULT_MOUNT_PATH;
  const path = source.value.replace(/\/+$/, '');
  const segments = path.split('/');
  let problem: string | undefined;
  if (!path.startsWith('/')) problem = 'must be an absolute path';
  else if (path === '') problem = 'must not be /';
  else if (segments.some((s) => s === '..' || s === '.')) problem = 'must not contain "." or ".." segments';
  else if (path.includes(':')) problem = 'must not contain ":"';
  else if (path === TOKEN_MOUNT_PATH || path.startsWith(`${TOKEN_MOUNT_PATH}/`) || TOKEN_MOUNT_PATH.startsWith(`${path}/`)) {
    problem = `must not overlap ${TOKEN_MOUNT_PATH}, where the init container reads its token`;
  }
  if (problem !== undefined) {
    problems.push(`${source.origin}: ${JSON.stringify(source.value)} ${problem}`);
    return DEFAULT_MOUNT_PATH;
  }
  return path;
}

function resolveContainers(source: Sourced | undefined, pod: V1Pod, problems: string[]): string[] | undefined {
  if (source === undefined) return undefined;
  const names = [...new Set(source.value.split(',').map((n) => n.trim()).filter((n) => n !== ''))];
  const known = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c) => c.name);
  const unknown = names.filter((n) => !known.includes(n));
  if (names.length === 0) problems.push(`${source.origin}: is empty; list container names separated by commas`);
  if (unknown.length > 0) {
    problems.push(`${source.origin}: ${unknown.map((n) => JSON.stringify(n)).join(', ')} ${unknown.length === 1 ? 'is not a container' : 'are not containers'} of this pod; its containers are ${known.join(', ') || '(none)'}`);
  }
  return names;
}

function resolveTokenExpiration(source: Sourced | undefined, problems: string[]): number {
  if (source === undefined) return DEFAULT_TOKEN_EXPIRATION;
  const value = Number(source.value);
  if (!/^\d+$/.test(source.value) || value < 600 || value > 86_400) {
    problems.push(`${source.origin}: ${JSON.stringify(source.value)} must be a whole number of seconds from 600 to 86400`);
    return DEFAULT_TOKEN_EXPIRATION;
  }
  return value;
}

function resolveBool(source: Sourced | undefined, fallback: boolean, problems: string[]): boolean {
  if (source === undefined) return fallback;
  const value = parseGoBool(source.value);
  if (value === undefined) {
    problems.push(`${source.origin}: ${JSON.stringify(source.value)} must be "true" or "false"`);
    return fallback;
  }
  return value;
}

// The API server rejects two mounts at one path in a container: say so before it does.
function checkMountClashes(pod: V1Pod, containers: string[] | undefined, mountPath: string, problems: string[]): void {
  const selected = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].filter((c) =>
    containers === undefined ? (pod.spec?.containers ?? []).includes(c) : containers.includes(c.name),
  );
  for (const container of selected) {
    const clash = (container.volumeMounts ?? []).find((m) => m.mountPath.replace(/\/+$/, '') === mountPath && m.name !== SECRETS_VOLUME);
    if (clash !== undefined) {
      problems.push(`container ${container.name} already mounts volume ${clash.name} at ${mountPath}: set annotation ${ANNOTATIONS.mountPath} to another path`);
    }
  }
}
