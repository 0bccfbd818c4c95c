// The refresh sidecar: the pod's akv-injector.io/refresh-interval, checked, and the native sidecar that keeps the files fresh.
import type { V1Container } from '@kubernetes/client-node';
import { formatRefreshInterval, parseRefreshInterval, REFRESH_INTERVAL_RULE } from '../src/refresh-interval.js';
import { quote } from '../src/quote.js';
import { REFRESH_CONTAINER } from './names.js';
import { supportsNativeSidecars } from './server-version.js';
import type { WebhookSettings } from './settings.js';

/**
 * Measured on Node 24 with the image's flags (npm run bench:refresh, README "Rotation"): 69 MiB at start, 76-79 MiB
 * idle between refreshes of 40 objects, peak 80 MiB over 60 refreshes. The request is the idle size; the limit leaves
 * the init container's headroom above the peak (128Mi). A refresh costs 20-26 ms of CPU: a small CPU request suffices.
 */
export const REFRESH_RESOURCES = {
  requests: { cpu: '5m', memory: '80Mi' },
  limits: { cpu: '500m', memory: '128Mi' },
};

/** The interval in milliseconds; undefined when not asked for, or (with a problem) when it cannot be given. */
export function resolveRefreshInterval(
  source: { value: string; origin: string } | undefined,
  settings: WebhookSettings,
  problems: string[],
): number | undefined {
  if (source === undefined) return undefined;
  const ms = parseRefreshInterval(source.value);
  if (ms === undefined) {
    problems.push(`${source.origin}: ${quote(source.value)} ${REFRESH_INTERVAL_RULE}`);
    return undefined;
  }
  // No reader of the version (render, offline): the manifests are reviewed before they reach a server.
  if (settings.serverVersion === undefined) return ms;
  const version = settings.serverVersion();
  const needs = `the refresh sidecar is a native sidecar (an init container with restartPolicy: Always), which needs Kubernetes 1.29 or later`;
  if (version === undefined) {
    problems.push(`${source.origin}: ${needs}, and the webhook has not read the API server's version yet; retry, or remove the annotation`);
  } else if (!supportsNativeSidecars(version)) {
    problems.push(`${source.origin}: ${needs}; this API server is ${version.gitVersion}: remove the annotation, or upgrade the cluster to 1.29 or later`);
  }
  return ms;
}

/** The sidecar, made from the injected init container: its image, environment, mounts and security context. */
export function refreshSidecar(init: V1Container, intervalMs: number): V1Container {
  return {
    ...init,
    name: REFRESH_CONTAINER,
    args: ['refresh'],
    env: [...(init.env ?? []), { name: 'AKV_INJECTOR_REFRESH_INTERVAL', value: formatRefreshInterval(intervalMs) }],
    resources: REFRESH_RESOURCES,
    restartPolicy: 'Always',
  };
}
