// The webhook's Prometheus metrics, in a registry of its own (never prom-client's global one).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CacheSizes } from './cluster-cache.js';

export type { CacheSizes };

/** What an admission came to: the mutator's outcomes, plus `invalid` for a request rejected before it (4xx). */
export type AdmissionOutcome = 'injected' | 'skipped' | 'denied' | 'error' | 'invalid';

const OUTCOMES: readonly AdmissionOutcome[] = ['injected', 'skipped', 'denied', 'error', 'invalid'];

export interface WebhookMetrics {
  readonly registry: Registry;
  /** Count one admission and observe how long it took. */
  observeAdmission(outcome: AdmissionOutcome, seconds: number): void;
}

export interface MetricsOptions {
  /** Read at every scrape (the cluster cache's `sizes()`); without it the cache gauge has no samples. */
  cacheSizes?: () => CacheSizes;
  /** Node.js process metrics (CPU, memory, event loop, GC); default true. */
  defaultMetrics?: boolean;
}

// Admissions take milliseconds; the API server gives up after at most 30 s.
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A fresh registry with the admission counter and histogram, the cache gauge and the process metrics. */
export function createMetrics(options: MetricsOptions = {}): WebhookMetrics {
  const registry = new Registry();
  const admissions = new Counter({
    name: 'akv_injector_admissions_total',
    help: 'Admission requests answered, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'akv_injector_admission_duration_seconds',
    help: 'Time from the decoded request to the answer, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const { cacheSizes } = options;
  new Gauge({
    name: 'akv_injector_cache_objects',
    help: 'Objects held in the cluster caches, by kind.',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect(): void {
      if (cacheSizes === undefined) return;
      const sizes = cacheSizes();
      this.set({ kind: 'Namespace' }, sizes.namespaces);
      this.set({ kind: 'ServiceAccount' }, sizes.serviceAccounts);
      this.set({ kind: 'SecretProviderClass' }, sizes.secretProviderClasses);
    },
  });
  // Every outcome shows from the first scrape, so rate() and absent() work before the first admission.
  for (const outcome of OUTCOMES) admissions.inc({ outcome }, 0);
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  return {
    registry,
    observeAdmission(outcome, seconds) {
      admissions.inc({ outcome });
      duration.observe({ outcome }, seconds);
    },
  };
}
