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
