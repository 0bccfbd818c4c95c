// Where the webhook's Kubernetes access comes from: in-cluster, then KUBECONFIG, then ~/.kube/config (as kubectl
// looks), and what was tried when none is there, instead of the client library's silent fallback to localhost:8080.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig, VersionApi } from '@kubernetes/client-node';

export const SERVICE_ACCOUNT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export type KubeAccess = { found: true; kubeConfig: KubeConfig; source: string } | { found: false; tried: string[] };

export interface KubeAccessSources {
  env: NodeJS.ProcessEnv;
  /** The home folder, for ~/.kube/config; default os.homedir(). */
  home?: string;
  exists?: (path: string) => boolean;
}

/** The first Kubernetes configuration there is, or every place looked at and why it did not do. */
export function findKubeAccess(sources: KubeAccessSources): KubeAccess {
  const exists = sources.exists ?? existsSync;
  const tried: string[] = [];
  const host = sources.env.KUBERNETES_SERVICE_HOST;
  if (!host) tried.push('in-cluster: KUBERNETES_SERVICE_HOST is not set (not running in a pod)');
  else if (!exists(SERVICE_ACCOUNT_TOKEN_FILE)) tried.push(`in-cluster: KUBERNETES_SERVICE_HOST is set but ${SERVICE_ACCOUNT_TOKEN_FILE} does not exist`);
  else {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromCluster();
    return { found: true, kubeConfig, source: `in-cluster (${SERVICE_ACCOUNT_TOKEN_FILE}, KUBERNETES_SERVICE_HOST=${host})` };
  }

  const list = sources.env.KUBECONFIG?.split(delimiter).filter((file) => file !== '') ?? [];
  if (list.length === 0) tried.push('KUBECONFIG: not set');
  else {
    const files = list.filter((file) => exists(file));
    if (files.length === 0) tried.push(`KUBECONFIG=${sources.env.KUBECONFIG}: no such file`);
    else {
      const loaded = load(files, `KUBECONFIG=${files.join(delimiter)}`, tried);
      if (loaded !== undefined) return loaded;
    }
  }

  const home = sources.home ?? homedir();
  const defaultFile = join(home, '.kube', 'config');
  if (list.length > 0) tried.push(`${defaultFile}: not read, KUBECONFIG is set`);
  else if (!exists(defaultFile)) tried.push(`${defaultFile}: no such file`);
  else {
    const loaded = load([defaultFile], defaultFile, tried);
    if (loaded !== undefined) return loaded;
  }
  return { found: false, tried };
}

/** Load and merge kubeconfig files as kubectl does (the first file's current context wins); undefined when unusable. */
function load(files: string[], source: string, tried: string[]): KubeAccess | undefined {
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromFile(files[0] as string);
    for (const file of files.slice(1)) {
      const more = new KubeConfig();
      more.loadFromFile(file);
      kubeConfig.mergeConfig(more, true);
    }
  } catch (error) {
    tried.push(`${source}: cannot be read: ${(error as Error).message}`);
    return undefined;
  }
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) {
    tried.push(`${source}: no current context with a cluster (kubectl config use-context NAME)`);
    return undefined;
  }
  return { found: true, kubeConfig, source: `${source}, context ${kubeConfig.getCurrentContext()}, server ${cluster.server}` };
}

/** The namespace of the kubeconfig's current context, as kubectl uses it; undefined when it names none. */
export function contextNamespace(kubeConfig: KubeConfig): string | undefined {
  const namespace = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace?.trim();
  return namespace ? namespace : undefined;
}

/**
 * Whether the API server answers at all (any HTTP status counts: even a 401 is a server), within `timeoutMs`.
 * A reason when it does not.
 */
export async function probeApiServer(kubeConfig: KubeConfig, timeoutMs: number): Promise<string | undefined> {
  const api = kubeConfig.makeApiClient(VersionApi);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  const answer = api.getCode().then(
    () => undefined,
    (error: unknown) => (typeof (error as { code?: unknown }).code === 'number' ? undefined : ((error as Error).message ?? String(error))),
  );
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
