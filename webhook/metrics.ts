// The webhook's Prometheus metrics, in a registry of its own (never prom-client's global one).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BudgetUsage } from './body-budget.js';
import type { CacheSizes } from './cluster-cache.js';
import type { ServingCertificate } from './tls-reloader.js';

export type { CacheSizes };

/**
 * What an admission came to: the mutator's outcomes, plus `invalid` for a request rejected before it (4xx) and
 * `busy` for one shed unread because the body budget stayed full (503).
 */
export type AdmissionOutcome = 'injected' | 'skipped' | 'denied' | 'error' | 'invalid' | 'busy';

const OUTCOMES: readonly AdmissionOutcome[] = ['injected', 'skipped', 'denied', 'error', 'invalid', 'busy'];

export interface WebhookMetrics {
  readonly registry: Registry;
  /** Count one admission and observe how long it took; `shared`: injected with an earlier replica's patch. */
  observeAdmission(outcome: AdmissionOutcome, seconds: number, shared?: boolean): void;
}

export interface MetricsOptions {
  /** Read at every scrape (the cluster cache's `sizes()`); without it the cache gauge has no samples. */
  cacheSizes?: () => CacheSizes;
  /** Read at every scrape (the body budget's `usage()`); without it the budget gauges have no samples. */
  bodyBudget?: () => BudgetUsage;
  /** Read at every scrape (the TLS reloader's `certificate()`, or --dev's); undefined until one is served: no sample. */
  servingCertificate?: () => ServingCertificate | undefined;
  /** Node.js process metrics (CPU, memory, event loop, GC); default true. */
  defaultMetrics?: boolean;
}

// Admissions take milliseconds; the API server gives up after at most 30 s.
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A fresh registry with the admission counter and histogram, the cache, body budget and certificate gauges, and the process metrics. */
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
  const sharedAdmissions = new Counter({
    name: 'akv_injector_admissions_shared_total',
    help: 'Injections answered with the patch of an earlier pod of the same template (replicas share one resolution).',
    registers: [registry],
  });
  const { cacheSizes, bodyBudget, servingCertificate } = options;
  scrapedGauge(
    registry,
    'akv_injector_cache_objects',
    'Objects held in the cluster caches, by kind.',
    'kind',
    cacheSizes &&
      (() => {
        const sizes = cacheSizes();
        return { Namespace: sizes.namespaces, ServiceAccount: sizes.serviceAccounts, SecretProviderClass: sizes.secretProviderClasses };
      }),
  );
  scrapedGauge(
    registry,
    'akv_injector_request_body_bytes',
    'Request body bytes admitted and not yet answered: all, and those of large bodies.',
    'size',
    bodyBudget &&
      (() => {
        const usage = bodyBudget();
        return { all: usage.bytes, large: usage.largeBytes };
      }),
  );
  new Gauge({
    name: 'akv_injector_requests_waiting',
    help: 'Requests waiting, unread, for room in the body budget.',
    registers: [registry],
    collect(): void {
      if (bodyBudget !== undefined) this.set(bodyBudget().waiting);
    },
  });
  new Gauge({
    name: 'akv_injector_serving_certificate_expiry_timestamp_seconds',
    help: "Unix time at which the webhook's TLS serving certificate expires (its notAfter).",
    registers: [registry],
    collect(): void {
      const certificate = servingCertificate?.();
      // No sample rather than 0 (1970): an alert on the time left must not fire before a certificate is loaded.
      if (certificate === undefined) this.remove({});
      else this.set(certificate.notAfter.getTime() / 1000);
    },
  });
  // Every outcome shows from the first scrape, so rate() and absent() work before the first admission.
  for (const outcome of OUTCOMES) admissions.inc({ outcome }, 0);
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  // Each outcome's series bound once: an admission then costs no label lookup.
  const series = new Map(OUTCOMES.map((outcome) => [outcome, { count: admissions.labels(outcome), time: duration.labels(outcome) }]));

  return {
    registry,
    observeAdmission(outcome, seconds, shared) {
      const bound = series.get(outcome);
      bound?.count.inc();
      bound?.time.observe(seconds);
      if (shared === true) sharedAdmissions.inc();
    },
  };
}

/** A gauge read at every scrape, one sample per value of its label; without `read` it has no samples. */
function scrapedGauge(registry: Registry, name: string, help: string, label: string, read: (() => Record<string, number>) | undefined): void {
  new Gauge({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect(): void {
      for (const [value, sample] of Object.entries(read?.() ?? {})) this.set({ [label]: value }, sample);
    },
  });
}
