// Keep the HTTPS listener's certificate current: watch --tls-cert-file/--tls-key-file, check the pair, swap it in.
//
// cert-manager's Secret reaches the pod as a Secret volume: the kubelet writes a new `..<timestamp>`
// directory and renames a `..data` symlink over the old one, so the files' directory is watched (not the
// files, whose inodes never change), changes are debounced, and a poll catches whatever a watch misses.
// A pair read mid-update (the key not matching the certificate) is ignored and read again shortly after.
// A certificate with fewer than 30 days left is warned about, at load and then daily, until a fresh one replaces it.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import path from 'node:path';
import tls from 'node:tls';
import { backoffDelay } from '../src/backoff.js';
import type { Logger } from '../src/log.js';

/** TLS policy of the admission listener, given again with every new pair (setSecureContext resets it). */
export const TLS_POLICY = { minVersion: 'TLSv1.2' } as const satisfies tls.SecureContextOptions;

const DAY_MS = 24 * 60 * 60 * 1000;
// setTimeout's longest delay (about 24.8 days); a longer one fires at once.
const MAX_TIMER_MS = 2 ** 31 - 1;
const RENEW =
  "renew it: cert-manager renews it by itself (if it has not, see `kubectl describe certificate` in the webhook's namespace); " +
  'from `akv-injector certs`: run `akv-injector certs --renew` with the same flags and apply the new Secret; ' +
  'from the Helm chart (tls.mode generate): `helm upgrade`';

function inDays(days: number): string {
  if (days === 0) return 'less than a day';
  return days === 1 ? '1 day' : `${days} days`;
}

/** The certificate being served, as the metrics show it. */
export interface ServingCertificate {
  notAfter: Date;
}

export interface KeyPair {
  cert: string;
  key: string;
}

/** What a server must offer to take a new pair without closing its listener (a tls.Server or https.Server). */
export interface SecureContextTarget {
  setSecureContext(options: tls.SecureContextOptions): void;
}

export interface TlsReloaderOptions {
  certFile: string;
  keyFile: string;
  logger: Logger;
  /** Quiet time after the last file event before reading; default 250 ms. */
  debounceMs?: number;
  /** Fallback poll interval; default 15 s. */
  pollMs?: number;
  /** First retry after an unreadable or mismatched pair, doubling up to pollMs; default 1 s. */
  retryMs?: number;
  /** Watch the directories (default true); the poll runs either way. */
  watch?: boolean;
  /** Warn when the served certificate expires sooner than this (less renewalGraceMs); default 30 days. */
  expiryWarningMs?: number;
  /** How often the served certificate's expiry is checked again (and a warning repeated); default 1 day. */
  expiryCheckMs?: number;
  /**
   * How long past the warning's start a renewal due right then may take to reach the files before the warning;
   * default 1 hour. cert-manager (renewBefore 720h in overlays/cert-manager) and the chart's tls.generate
   * (renewBeforeDays 30) renew when 30 days are left, and the kubelet takes a minute or so to update the volume.
   */
  renewalGraceMs?: number;
}

export type ReloadResult = 'loaded' | 'unchanged' | 'invalid';

export interface TlsReloader {
  /** Read the pair once and start watching and polling; false when no valid pair could be read yet. */
  start(): Promise<boolean>;
  /** Give every pair loaded from now on to `server`, and the current one at once. */
  attach(server: SecureContextTarget): void;
  /** Options for https.createServer: the TLS policy and the current pair, if any. */
  serverOptions(): tls.SecureContextOptions;
  /** Whether a valid pair has been loaded (it stays loaded when a later one is invalid). */
  loaded(): boolean;
  /** Why no pair is loaded, for readiness; undefined once one is. */
  problem(): string | undefined;
  /** The certificate being served, once one is loaded. */
  certificate(): ServingCertificate | undefined;
  /** Read the files now. */
  reload(): Promise<ReloadResult>;
  stop(): void;
}

/** A reloader for one certificate and key file pair. */
export function createTlsReloader(options: TlsReloaderOptions): TlsReloader {
  const { certFile, keyFile, logger } = options;
  const debounceMs = options.debounceMs ?? 250;
  const pollMs = options.pollMs ?? 15_000;
  const retryMs = options.retryMs ?? 1_000;
  const expiryWarningMs = options.expiryWarningMs ?? 30 * DAY_MS;
  const expiryCheckMs = options.expiryCheckMs ?? DAY_MS;
  // Less time left than this, and the certificate is warned about.
  const warnBelowMs = expiryWarningMs - (options.renewalGraceMs ?? 60 * 60 * 1000);
  const directories = [...new Set([path.dirname(certFile), path.dirname(keyFile)])];

  let current: KeyPair | undefined;
  let served: CertificateSummary | undefined;
  let lastProblem: string | undefined = 'the certificate and key have not been read yet';
  const targets = new Set<SecureContextTarget>();
  const watchers = new Map<string, FSWatcher>();
  let debounceTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let expiryTimer: NodeJS.Timeout | undefined;
  let retries = 0;
  let running: Promise<ReloadResult> | undefined;
  let rerun = false;
  let stopped = false;

  const apply = (pair: KeyPair, target: SecureContextTarget): void => {
    target.setSecureContext({ ...TLS_POLICY, cert: pair.cert, key: pair.key });
  };

  async function readAndApply(): Promise<ReloadResult> {
    let pair: KeyPair;
    try {
      const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
      pair = { cert, key };
    } catch (error) {
      return invalid(`cannot read the certificate or key: ${(error as Error).message}`);
    }
    if (current !== undefined && pair.cert === current.cert && pair.key === current.key) return settled('unchanged');

    const checked = checkPair(pair);
    if (typeof checked === 'string') return invalid(checked);
    for (const target of targets) apply(pair, target);
    const first = current === undefined;
    current = pair;
    served = checked;
    logger.info({ certFile, keyFile, ...checked }, first ? 'TLS certificate loaded' : 'TLS certificate reloaded');
    checkExpiry();
    return settled('loaded');
  }

  /** Warn when the served certificate has expired or soon will, and look again later: it may be stuck while it ages. */
  function checkExpiry(): void {
    clearTimeout(expiryTimer);
    expiryTimer = undefined;
    if (served === undefined || stopped) return;
    const { notAfter, fingerprint256 } = served;
    const leftMs = Date.parse(notAfter) - Date.now();
    const daysLeft = Math.max(0, Math.floor(leftMs / DAY_MS));
    const fields = { certFile, notAfter, daysLeft, fingerprint256 };
    if (leftMs <= 0) {
      logger.warn(
        fields,
        `the TLS certificate in ${certFile} has expired (at ${notAfter}): the API server refuses it, so opted-in pods cannot be created; ${RENEW}`,
      );
    } else if (leftMs < warnBelowMs) {
      logger.warn(fields, `the TLS certificate in ${certFile} expires in ${inDays(daysLeft)}, at ${notAfter}; ${RENEW}`);
    } else {
      logger.debug(fields, 'TLS certificate expiry checked');
    }
    // Warned: again after expiryCheckMs. Not yet: when the warning is due, or after expiryCheckMs if sooner.
    const nextMs = Math.min(leftMs < warnBelowMs ? expiryCheckMs : leftMs - warnBelowMs, expiryCheckMs, MAX_TIMER_MS);
    expiryTimer = setTimeout(checkExpiry, nextMs);
    expiryTimer.unref();
  }

  function settled(result: ReloadResult): ReloadResult {
    lastProblem = undefined;
    retries = 0;
    clearTimeout(retryTimer);
    retryTimer = undefined;
    return result;
  }

  function invalid(problem: string): ReloadResult {
    // The next read follows a pair mid-update closely, then ever more slowly, up to the poll's pace.
    const retryInMs = backoffDelay(retries, { initialMs: retryMs, maxMs: pollMs, jitter: 0 });
    // Say it once per distinct problem; the retries that follow are quiet.
    const level = problem === lastProblem ? 'debug' : 'warn';
    logger[level](
      { certFile, keyFile, problem, retryInMs, serving: current === undefined ? 'nothing yet' : 'the previous certificate' },
      'TLS certificate and key ignored',
    );
    lastProblem = problem;
    if (!stopped && retryTimer === undefined) {
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        void reload();
      }, retryInMs);
      retryTimer.unref();
      retries += 1;
    }
    return 'invalid';
  }

  /** One reload at a time; a trigger during one runs another right after it. */
  function reload(): Promise<ReloadResult> {
    if (running !== undefined) {
      rerun = true;
      return running;
    }
    running = readAndApply()
      .catch((error: unknown) => invalid(`cannot use the certificate and key: ${(error as Error).message}`))
      .finally(() => {
        running = undefined;
        if (rerun && !stopped) {
          rerun = false;
          void reload();
        }
      });
    return running;
  }

  function onFileEvent(): void {
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      void reload();
    }, debounceMs);
    debounceTimer.unref();
  }

  function ensureWatchers(): void {
    if (options.watch === false || stopped) return;
    for (const dir of directories) {
      if (watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, onFileEvent);
        watcher.on('error', (error) => {
          logger.warn({ dir, err: error }, 'watching the TLS directory failed; polling until it can be watched again');
          watcher.close();
          watchers.delete(dir);
        });
        watchers.set(dir, watcher);
      } catch (error) {
        logger.warn({ dir, problem: (error as Error).message, pollMs }, 'cannot watch the TLS directory; polling');
      }
    }
  }

  return {
    async start() {
      const result = await reload();
      ensureWatchers();
      pollTimer = setInterval(() => {
        ensureWatchers();
        void reload();
      }, pollMs);
      pollTimer.unref();
      return result !== 'invalid';
    },
    attach(server) {
      targets.add(server);
      if (current !== undefined) apply(current, server);
    },
    serverOptions() {
      return current === undefined ? { ...TLS_POLICY } : { ...TLS_POLICY, cert: current.cert, key: current.key };
    },
    loaded: () => current !== undefined,
    problem: () => (current === undefined ? lastProblem : undefined),
    certificate: () => (served === undefined ? undefined : { notAfter: new Date(served.notAfter) }),
    reload,
    stop() {
      stopped = true;
      clearTimeout(debounceTimer);
      clearTimeout(retryTimer);
      clearInterval(pollTimer);
      clearTimeout(expiryTimer);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}

interface CertificateSummary {
  subject: string;
  subjectAltName: string | undefined;
  serialNumber: string;
  notAfter: string;
  fingerprint256: string;
}

/** The certificate's summary when the pair is usable, else why not. */
export function checkPair(pair: KeyPair): CertificateSummary | string {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pair.cert);
  } catch (error) {
    return `the certificate file holds no PEM certificate (${(error as Error).message})`;
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(pair.key));
  } catch (error) {
    return `the key file holds no unencrypted PEM private key (${(error as Error).message})`;
  }
  if (!matches) return 'the private key does not belong to the certificate (a half-written update?)';
  try {
    tls.createSecureContext({ ...TLS_POLICY, cert: pair.cert, key: pair.key });
  } catch (error) {
    return `OpenSSL refuses the pair: ${(error as Error).message}`;
  }
  return {
    subject: certificate.subject.replace(/\n/g, ', '),
    subjectAltName: certificate.subjectAltName,
    serialNumber: certificate.serialNumber,
    notAfter: new Date(certificate.validTo).toISOString(),
    fingerprint256: certificate.fingerprint256,
  };
}
