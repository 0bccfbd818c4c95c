// The webhook's own configuration, from its command-line flags.
import type { Cloud } from '../src/clouds.js';
import type { KubeVersion } from './server-version.js';

export interface WebhookSettings {
  /** Image of the injected init container (the same image, fetch role). */
  image: string;
  /** Image for Windows pods; without it, Windows pods that opt in are denied. */
  windowsImage?: string;
  /** Default tenant ID when neither the pod, namespace nor ServiceAccount gives one. */
  tenantId?: string;
  /** Default cloud. */
  cloud: Cloud;
  /** The webhook's own namespace: never injected. */
  namespace: string;
  /** The API server's version, read once at start (undefined until read); absent offline (render), where it is not checked. */
  serverVersion?: () => KubeVersion | undefined;
}
