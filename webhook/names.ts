// The fixed names of akv-injector's interface (DESIGN.md): annotations, labels, injected objects.

const PREFIX = 'akv-injector.io/';

export const ANNOTATIONS = {
  inject: `${PREFIX}inject`,
  status: `${PREFIX}status`,
  vault: `${PREFIX}vault`,
  objects: `${PREFIX}objects`,
  secretProviderClass: `${PREFIX}secret-provider-class`,
  clientId: `${PREFIX}client-id`,
  tenantId: `${PREFIX}tenant-id`,
  cloud: `${PREFIX}cloud`,
  mountPath: `${PREFIX}mount-path`,
  containers: `${PREFIX}containers`,
  tokenExpiration: `${PREFIX}token-expiration`,
  initFirst: `${PREFIX}init-first`,
  refreshInterval: `${PREFIX}refresh-interval`,
} as const;

/** Namespace label that injects every pod of the namespace. */
export const NAMESPACE_LABEL = `${PREFIX}inject`;
export const NAMESPACE_LABEL_VALUE = 'enabled';
export const STATUS_INJECTED = 'injected';

/** The ServiceAccount annotations of azure-workload-identity, read as defaults. */
export const WORKLOAD_IDENTITY = {
  clientId: 'azure.workload.identity/client-id',
  tenantId: 'azure.workload.identity/tenant-id',
} as const;

export const TOKEN_VOLUME = 'akv-injector-token';
export const SECRETS_VOLUME = 'akv-injector-secrets';
export const INIT_CONTAINER = 'akv-injector';
/** The refresh sidecar's name (DESIGN.md): reserved already, so no pod takes it. */
export const REFRESH_CONTAINER = 'akv-injector-refresh';
export const RESERVED_CONTAINER_NAMES: readonly string[] = [INIT_CONTAINER, REFRESH_CONTAINER];
export const TOKEN_MOUNT_PATH = '/var/run/secrets/akv-injector';
export const TOKEN_FILE = 'azure-identity-token';
export const TOKEN_AUDIENCE = 'api://AzureADTokenExchange';
export const DEFAULT_MOUNT_PATH = '/mnt/secrets-store';
export const DEFAULT_TOKEN_EXPIRATION = 3600;
export const NEVER_INJECTED_NAMESPACES: readonly string[] = ['kube-system', 'kube-public'];
