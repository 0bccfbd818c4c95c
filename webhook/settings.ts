// The webhook's own configuration, from its command-line flags.
import type { Cloud } from '../src/clouds.js';

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
}
