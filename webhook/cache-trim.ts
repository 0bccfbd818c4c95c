// What the cluster caches keep of each object: only the fields the webhook reads, each value cut to
// the longest the webhook accepts, so a namespace owner's large ServiceAccounts or
// SecretProviderClasses cost the webhook's memory a bounded size apiece.
import type { V1Namespace, V1ObjectMeta, V1ServiceAccount } from '@kubernetes/client-node';
import { MAX_OBJECT_LIST_BYTES } from '../src/object-list.js';
import type { SecretProviderClass } from './lookups.js';
import { NAMESPACE_LABEL, WORKLOAD_IDENTITY } from './names.js';

/** The SecretProviderClass parameters the webhook reads (webhook/resolve.ts). */
export const SPC_PARAMETERS: readonly string[] = [
  'keyvaultName',
  'tenantID',
  'tenantId',
  'clientID',
  'cloudName',
  'objects',
  'usePodIdentity',
  'useVMManagedIdentity',
  'useAzureTokenProxy',
];

const ANNOTATION_PREFIX = 'akv-injector.io/';
/**
 * Longer values are cut one character past the largest value accepted (an object list), so they
 * are still refused as too long, by the same message, without being kept whole.
 */
const MAX_VALUE = MAX_OBJECT_LIST_BYTES + 1;

export function trimNamespace(namespace: V1Namespace): V1Namespace {
  const labels = pick(namespace.metadata?.labels, (key) => key === NAMESPACE_LABEL);
  const annotations = pick(namespace.metadata?.annotations, (key) => key.startsWith(ANNOTATION_PREFIX));
  return { ...kind(namespace), metadata: { ...identity(namespace.metadata), ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) } };
}

export function trimServiceAccount(account: V1ServiceAccount): V1ServiceAccount {
  const read = new Set<string>(Object.values(WORKLOAD_IDENTITY));
  const annotations = pick(account.metadata?.annotations, (key) => read.has(key));
  return { ...kind(account), metadata: { ...identity(account.metadata), ...(annotations ? { annotations } : {}) } };
}

export function trimSecretProviderClass(spc: SecretProviderClass): SecretProviderClass {
  const spec = spc.spec ?? {};
  const read = new Set(SPC_PARAMETERS);
  const parameters = pick(spec.parameters, (key) => read.has(key));
  // Only whether there are any is read: they earn a warning, and are never synced.
  const secretObjects = Array.isArray(spec.secretObjects) && spec.secretObjects.length > 0 ? [{}] : undefined;
  return {
    ...kind(spc),
    metadata: identity(spc.metadata),
    spec: {
      ...(typeof spec.provider === 'string' ? { provider: spec.provider.slice(0, 256) } : {}),
      ...(parameters ? { parameters } : {}),
      ...(secretObjects ? { secretObjects } : {}),
    },
  };
}

function kind(object: { apiVersion?: string; kind?: string }): { apiVersion?: string; kind?: string } {
  return {
    ...(typeof object.apiVersion === 'string' ? { apiVersion: object.apiVersion } : {}),
    ...(typeof object.kind === 'string' ? { kind: object.kind } : {}),
  };
}

/** What the informer keys and versions its cache by. */
function identity(metadata: V1ObjectMeta | undefined): V1ObjectMeta {
  const out: V1ObjectMeta = {};
  if (metadata?.name !== undefined) out.name = metadata.name;
  if (metadata?.namespace !== undefined) out.namespace = metadata.namespace;
  if (metadata?.resourceVersion !== undefined) out.resourceVersion = metadata.resourceVersion;
  return out;
}

/** The string values whose keys `keep` accepts (none of them named like Object.prototype's), cut to MAX_VALUE. */
function pick(values: Record<string, string> | undefined, keep: (key: string) => boolean): Record<string, string> | undefined {
  if (values === null || typeof values !== 'object') return undefined;
  let out: Record<string, string> | undefined;
  for (const [key, value] of Object.entries(values)) {
    if (!keep(key) || typeof value !== 'string') continue;
    out ??= {};
    out[key] = value.length > MAX_VALUE ? value.slice(0, MAX_VALUE) : value;
  }
  return out;
}
