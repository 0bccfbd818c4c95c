// What the webhook reads from the cluster while resolving a pod's configuration.
import type { V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';

/** A secrets-store.csi.x-k8s.io/v1 SecretProviderClass, as far as we read it. */
export interface SecretProviderClass {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: {
    provider?: string;
    parameters?: Record<string, string>;
    secretObjects?: unknown[];
  };
}

/** The SecretProviderClass CRD is not installed: the feature is off. */
export const CRD_MISSING = Symbol('SecretProviderClass CRD missing');

/**
 * Cluster reads, served from watch-backed caches with a direct read on a miss.
 * `undefined` means the object does not exist.
 */
export interface Lookups {
  namespace(name: string): Promise<V1Namespace | undefined>;
  serviceAccount(namespace: string, name: string): Promise<V1ServiceAccount | undefined>;
  secretProviderClass(namespace: string, name: string): Promise<SecretProviderClass | undefined | typeof CRD_MISSING>;
}

/** A cluster read failed (not "not found"): the object may exist, so the admission cannot be decided. */
export class LookupFailure extends Error {
  override readonly name = 'LookupFailure';
  constructor(
    what: string,
    override readonly cause: unknown,
  ) {
    // The cache's own errors already say what was read and why it failed.
    super(cause instanceof Error ? cause.message : `${what} failed`);
  }
}

/** `lookups` with every failure wrapped as a LookupFailure, so the caller tells them from its own bugs. */
export function guardLookups(lookups: Lookups): Lookups {
  const guard = async <T>(what: string, read: () => Promise<T>): Promise<T> => {
    try {
      return await read();
    } catch (error) {
      throw new LookupFailure(what, error);
    }
  };
  return {
    namespace: (name) => guard(`reading namespace ${name}`, () => lookups.namespace(name)),
    serviceAccount: (namespace, name) => guard(`reading ServiceAccount ${namespace}/${name}`, () => lookups.serviceAccount(namespace, name)),
    secretProviderClass: (namespace, name) => guard(`reading SecretProviderClass ${namespace}/${name}`, () => lookups.secretProviderClass(namespace, name)),
  };
}
