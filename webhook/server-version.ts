// The API server's version, read once at start: the refresh sidecar is a native sidecar, which needs Kubernetes ≥ 1.29.
import { setTimeout as sleep } from 'node:timers/promises';
import { VersionApi, type KubeConfig } from '@kubernetes/client-node';
import { backoffDelay, type Backoff } from '../src/backoff.js';
import type { Logger } from '../src/log.js';

export interface KubeVersion {
  major: number;
  minor: number;
  /** As the server says it, e.g. v1.29.3-eks-1234; for messages. */
  gitVersion: string;
}

/** Native sidecars (init containers with restartPolicy: Always) are on by default from Kubernetes 1.29. */
export const NATIVE_SIDECARS_SINCE: Readonly<{ major: number; minor: number }> = { major: 1, minor: 29 };

/** The fields of /version the webhook reads; each is bounded before use. */
export interface VersionAnswer {
  major?: unknown;
  minor?: unknown;
  gitVersion?: unknown;
}

/**
 * The version in a /version answer, or undefined when it has none. Managed clusters add to the minor
 * ("29+" on EKS and GKE), so its leading digits count; without them, gitVersion's "v1.29.3-…".
 */
export function parseKubeVersion(answer: VersionAnswer): KubeVersion | undefined {
  const text = (value: unknown): string => (typeof value === 'string' ? value.slice(0, 64) : '');
  const gitVersion = text(answer.gitVersion);
  const major = /^\d{1,4}/.exec(text(answer.major))?.[0];
  const minor = /^\d{1,4}/.exec(text(answer.minor))?.[0];
  if (major !== undefined && minor !== undefined) return { major: Number(major), minor: Number(minor), gitVersion: gitVersion || `v${major}.${minor}` };
  const fromGit = /^v?(\d{1,4})\.(\d{1,4})/.exec(gitVersion);
  if (fromGit === null) return undefined;
  return { major: Number(fromGit[1]), minor: Number(fromGit[2]), gitVersion };
}

export function supportsNativeSidecars(version: KubeVersion): boolean {
  const since = NATIVE_SIDECARS_SINCE;
  return version.major > since.major || (version.major === since.major && version.minor >= since.minor);
}

export interface ServerVersion {
  /** The version once read; undefined until then. */
  current(): KubeVersion | undefined;
  /** Why it is not known yet, once a read failed. */
  problem(): string | undefined;
  stop(): void;
}

const RETRY: Backoff = { initialMs: 500, maxMs: 30_000, jitter: 0.5 };

/** Read GET /version until it answers (retrying with backoff), then never again: a server is upgraded by restarting its clients' watches, not this. */
export function readServerVersion(kubeConfig: KubeConfig, options: { logger: Logger; backoff?: Backoff }): ServerVersion {
  const api = kubeConfig.makeApiClient(VersionApi);
  const controller = new AbortController();
  let version: KubeVersion | undefined;
  let problem: string | undefined;
  void (async () => {
    for (let attempt = 0; !controller.signal.aborted; attempt++) {
      try {
        const found = parseKubeVersion(await api.getCode());
        if (found !== undefined) {
          version = found;
          problem = undefined;
          options.logger.info({ version: found.gitVersion, nativeSidecars: supportsNativeSidecars(found) }, 'API server version');
          return;
        }
        problem = 'the API server answered /version without a version';
      } catch (error) {
        problem = `reading the API server's /version failed (${(error as { code?: unknown }).code ?? (error as Error).name})`;
      }
      const delayMs = backoffDelay(attempt, options.backoff ?? RETRY);
      options.logger.warn({ problem, delayMs }, 'API server version unknown, retrying');
      await sleep(delayMs, undefined, { signal: controller.signal }).catch(() => undefined);
    }
  })();
  return { current: () => version, problem: () => problem, stop: () => controller.abort() };
}
