// The cluster as `webhook --dev` sees it when there is none: every namespace and ServiceAccount exists, bare (no
// labels, no annotations), and there are no SecretProviderClasses. Pods then say everything in their own annotations.
import type { ClusterCache } from './cluster-cache.js';

export function createDevCluster(): ClusterCache {
  return {
    start: () => undefined,
    synced: () => true,
    sizes: () => ({ namespaces: 0, serviceAccounts: 0, secretProviderClasses: 0 }),
    stop: async () => undefined,
    namespace: async (name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }),
    serviceAccount: async (namespace, name) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { namespace, name } }),
    secretProviderClass: async () => undefined,
  };
}
