// The side port: /healthz, /readyz following its inputs, /metrics counting admissions and cache objects.
import t from 'tap';
import { Writable } from 'node:stream';
import { register as globalRegistry } from 'prom-client';
import { createLogger } from '../src/log.js';
import type { AdmissionRequest } from '../webhook/admission.js';
import { buildHealthApp } from '../webhook/health.js';
import type { BudgetUsage } from '../webhook/body-budget.js';
import { createMetrics, type CacheSizes } from '../webhook/metrics.js';
import type { MutationResult, Outcome } from '../webhook/mutate.js';
import { buildApp } from '../webhook/server.js';

const quiet = (): ReturnType<typeof createLogger> => createLogger('webhook', new Writable({ write: (_c, _e, done) => done() }));

t.test('/healthz answers while the process runs; /readyz follows TLS, caches and shutdown', async (t) => {
  const state = { tls: false, synced: false, shuttingDown: false };
  const notReadyReasons = (): string[] => [
    ...(state.shuttingDown ? ['shutting down'] : []),
    ...(state.tls ? [] : ['TLS certificate not loaded']),
    ...(state.synced ? [] : ['caches not synced']),
  ];
  const app = buildHealthApp({ notReadyReasons, metrics: createMetrics({ defaultMetrics: false }), logger: quiet() });
  t.teardown(() => app.close());

  const healthz = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(healthz.statusCode, 200);
  t.same(healthz.json(), { status: 'ok' });

  const steps: Array<{ change: Partial<typeof state>; status: number; reasons: string[] }> = [
    { change: {}, status: 503, reasons: ['TLS certificate not loaded', 'caches not synced'] },
    { change: { tls: true }, status: 503, reasons: ['caches not synced'] },
    { change: { synced: true }, status: 200, reasons: [] },
    { change: { shuttingDown: true }, status: 503, reasons: ['shutting down'] },
  ];
  for (const step of steps) {
    Object.assign(state, step.change);
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    t.equal(res.statusCode, step.status, JSON.stringify(state));
    t.match(res.headers['content-type'], /^application\/json/);
    if (step.status === 200) t.same(res.json(), { status: 'ready' });
    else t.same(res.json(), { status: 'not ready', reason: step.reasons.join('; '), reasons: step.reasons });
  }
  const healthzLater = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(healthzLater.statusCode, 200, 'liveness does not follow readiness');

  const missing = await app.inject({ method: 'GET', url: '/mutate' });
  t.equal(missing.statusCode, 404);
  t.match(missing.json(), { error: 'Not Found', message: /\/healthz, \/readyz and \/metrics/ });
});

t.test('/metrics: admissions by outcome, their durations, cache objects by kind, process metrics', async (t) => {
  const sizes: CacheSizes = { namespaces: 12, serviceAccounts: 40, secretProviderClasses: 3 };
  const usage: BudgetUsage = { bytes: 5 * 1024 * 1024, largeBytes: 4 * 1024 * 1024, waiting: 7 };
  const metrics = createMetrics({ cacheSizes: () => sizes, bodyBudget: () => usage });
  const outcomes: Outcome[] = ['injected', 'injected', 'skipped', 'denied', 'error'];
  let next = 0;
  const mutator = async (request: AdmissionRequest): Promise<MutationResult> => ({
    outcome: outcomes[next] ?? 'skipped',
    reason: 'test',
    response: { uid: request.uid, allowed: true },
    // The second injection came from an earlier replica's patch.
    ...(next++ === 1 ? { shared: true as const } : {}),
  });
  const webhook = buildApp({ mutator, logger: quiet(), metrics });
  const health = buildHealthApp({ notReadyReasons: () => [], metrics, logger: quiet() });
  t.teardown(() => Promise.all([webhook.close(), health.close()]));

  const before = await health.inject({ method: 'GET', url: '/metrics' });
  t.match(before.body, /^akv_injector_admissions_total\{outcome="injected"\} 0$/m, 'every outcome is there from the start');
  t.match(before.body, /^akv_injector_admissions_shared_total 0$/m);

  for (let i = 0; i < outcomes.length; i++) {
    const res = await webhook.inject({
      method: 'POST',
      url: '/mutate',
      payload: {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: `uid-${i}`,
          operation: 'CREATE',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          resource: { group: '', version: 'v1', resource: 'pods' },
        },
      },
    });
    t.equal(res.statusCode, 200);
  }
  const bad = await webhook.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload: '{' });
  t.equal(bad.statusCode, 400);

  const res = await health.inject({ method: 'GET', url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  const sample = (name: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  };
  t.equal(sample('akv_injector_admissions_total{outcome="injected"}'), 2);
  t.equal(sample('akv_injector_admissions_total{outcome="skipped"}'), 1);
  t.equal(sample('akv_injector_admissions_total{outcome="denied"}'), 1);
  t.equal(sample('akv_injector_admissions_total{outcome="error"}'), 1);
  t.equal(sample('akv_injector_admissions_total{outcome="invalid"}'), 1, 'a rejected body counts as invalid');
  t.equal(sample('akv_injector_admission_duration_seconds_count{outcome="injected"}'), 2);
  t.equal(sample('akv_injector_admissions_shared_total'), 1, "one injection shared an earlier replica's patch");
  t.equal(sample('akv_injector_admission_duration_seconds_bucket{le="+Inf",outcome="injected"}'), 2);
  t.equal(sample('akv_injector_cache_objects{kind="Namespace"}'), 12);
  t.equal(sample('akv_injector_cache_objects{kind="ServiceAccount"}'), 40);
  t.equal(sample('akv_injector_cache_objects{kind="SecretProviderClass"}'), 3);
  t.equal(sample('akv_injector_admissions_total{outcome="busy"}'), 0, 'shed requests have their outcome from the start');
  t.equal(sample('akv_injector_request_body_bytes{size="all"}'), 5 * 1024 * 1024, 'body bytes admitted');
  t.equal(sample('akv_injector_request_body_bytes{size="large"}'), 4 * 1024 * 1024);
  t.equal(sample('akv_injector_requests_waiting'), 7, 'requests waiting for the budget');
  t.match(text, /^# TYPE akv_injector_admission_duration_seconds histogram$/m);
  t.match(text, /^process_resident_memory_bytes \d+/m, 'default process metrics');
  t.match(text, /^nodejs_heap_size_used_bytes \d+/m);

  sizes.serviceAccounts = 41;
  const again = await health.inject({ method: 'GET', url: '/metrics' });
  t.match(again.body, /^akv_injector_cache_objects\{kind="ServiceAccount"\} 41$/m, 'the gauge is read at scrape time');

  t.notOk((await globalRegistry.metrics()).includes('akv_injector_'), "nothing in prom-client's global registry");
  t.doesNotThrow(() => createMetrics({ defaultMetrics: true }), 'a second registry does not clash with the first');
});

t.test('/metrics: the serving certificate expiry, no sample before a certificate is served', async (t) => {
  let served: { notAfter: Date } | undefined;
  const metrics = createMetrics({ servingCertificate: () => served, defaultMetrics: false });
  const health = buildHealthApp({ notReadyReasons: () => [], metrics, logger: quiet() });
  t.teardown(() => health.close());
  const name = 'akv_injector_serving_certificate_expiry_timestamp_seconds';
  const samples = async (): Promise<string[]> =>
    (await health.inject({ method: 'GET', url: '/metrics' })).body.split('\n').filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`));

  const text = (await health.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'));
  t.same(await samples(), [], 'none yet: not a 0, which an alert would read as expired in 1970');
  served = { notAfter: new Date('2031-05-06T07:08:09.000Z') };
  t.same(await samples(), [`${name} ${Date.UTC(2031, 4, 6, 7, 8, 9) / 1000}`], 'notAfter in Unix seconds, read at scrape');
  served = undefined;
  t.same(await samples(), [], 'and none again when there is none');
});
