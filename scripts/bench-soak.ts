// bench:soak — the bundled webhook (its own process, the Deployment's Node flags) against the fake API server, at a
// fixed request rate for a minute, through a TLS certificate rotation and a watch outage; every answer checked.
//
//   tsx scripts/bench-soak.ts            the real soak: 60 s at 50 admissions/s
//   SOAK_SECONDS=20 SOAK_RATE=100 …      shorter or faster (events are placed at fractions of the run)
//   WEBHOOK_NODE=/path/to/node …         run the webhook on another Node.js (production is Node 24)
//
// Targets, checked at the end (exit code 1 when one is missed):
//   - zero failed admissions: every answer a 200 AdmissionReview with its request's uid and a patch that applies
//     and injects the pod
//   - the rate held: at least 95 % of the requests the fixed rate asks for were sent and answered
//   - memory flat: RSS at the end ≤ 1.2 × RSS after the warm-up (the first quarter of the run: on Node 24 the RSS
//     steps up by ~20 MiB around t = 12 s as the JIT tiers and the heap reach their working size); peak under the limit
//   - the new certificate served after the rotation (the ..data symlink swap a Secret volume update makes)
//   - the caches resynced after the watches were ended and the API server refused connections for a while:
//     a ServiceAccount created during the outage reaches the cache (the metric) without a direct read, all watches
//     are open again, and pods running as it are injected for the rest of the run
import { randomUUID, X509Certificate } from 'node:crypto';
import https from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildDist } from '../test/fixtures/dist.js';
import { startFakeApiServer, type FakeApiServer } from '../test/fixtures/fake-apiserver.js';
import { makeTestPki } from '../test/fixtures/tls.js';
import { waitFor } from '../test/fixtures/wait-for.js';
import {
  deploymentRuntime,
  injectionProblem,
  padTo,
  postMutate,
  seedShop,
  shopReview,
  startWebhookProcess,
  type PostResult,
  type SentReview,
  type WebhookProcess,
} from '../test/fixtures/webhook-process.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const RATE = Number(process.env.SOAK_RATE ?? 50);
const REPORT_EVERY_MS = 5_000;
const LATE_SERVICE_ACCOUNT = `created-during-outage-${randomUUID().slice(0, 8)}`;
const MiB = 1024 * 1024;
/** Pod sizes sent in turn, in KB: most pods are small, some carry large env or annotations. */
const POD_KB = [5, 5, 8, 12, 20, 50];

// Two unrelated PKIs (makeTestPki memoizes per host list, so two orders give two): the rotation swaps A for B.
const pkiA = makeTestPki(['localhost', '127.0.0.1']);
const pkiB = makeTestPki(['127.0.0.1', 'localhost']);
const CAS = [pkiA.caCertPem, pkiB.caCertPem];
const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

interface Tally {
  sent: number;
  ok: number;
  failed: number;
  problems: Map<string, number>;
  latenciesMs: number[];
}

const newTally = (): Tally => ({ sent: 0, ok: 0, failed: 0, problems: new Map(), latenciesMs: [] });

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** The certificate the webhook serves on a new connection. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: CAS, servername: 'localhost' }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      resolve(cert.fingerprint256);
    });
    socket.once('error', reject);
  });
}

/** A sample from the webhook's /metrics, or NaN. */
async function metric(webhook: WebhookProcess, name: string, labels: string): Promise<number> {
  const text = (await webhook.health('/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

interface Verdict {
  name: string;
  ok: boolean;
  detail: string;
}

async function main(): Promise<number> {
  const runtime = deploymentRuntime();
  const scratch = await mkdtemp(path.join(tmpdir(), 'bench-soak-'));
  const fake = await startFakeApiServer();
  seedShop(fake);
  let webhook: WebhookProcess | undefined;
  try {
    const cli = await buildDist(scratch);
    webhook = await startWebhookProcess({ cli, fake, dir: path.join(scratch, 'webhook'), pki: pkiA });
    await waitFor(
      'the webhook ready',
      () =>
        webhook?.health('/readyz').then(
          (r) => r.status === 200,
          () => false,
        ),
      30_000,
      50,
    );
    console.log(
      `bench:soak — ${SECONDS} s at ${RATE} admissions/s (pods of ${POD_KB.join(', ')} KB, keep-alive connections), node ${webhook.node}, NODE_OPTIONS "${webhook.nodeOptions}", memory limit ${runtime.memoryLimitBytes / MiB} MiB`,
    );
    return await soak(webhook, fake, runtime.memoryLimitBytes);
  } finally {
    await webhook?.stop();
    await fake.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

async function soak(webhook: WebhookProcess, fake: FakeApiServer, memoryLimit: number): Promise<number> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: CAS });
  const total = newTally();
  let window = newTally();
  const inFlight = new Set<Promise<void>>();
  const durationMs = SECONDS * 1000;
  const at = (fraction: number): number => Math.round(fraction * durationMs);
  const verdicts: Verdict[] = [];
  // Set once the ServiceAccount created during the outage is in the cache: pods running as it are sent from then on.
  let lateServiceAccount: string | undefined;

  const send = (sent: SentReview): void => {
    total.sent++;
    window.sent++;
    const started = performance.now();
    const done = postMutate(webhook.port, CAS.join('\n'), sent.body, agent)
      .catch((error: unknown): PostResult => ({ status: 0, body: `connection error: ${(error as Error).message}` }))
      .then((answer) => {
        const problem = answer.status === 0 ? answer.body : injectionProblem(sent, answer);
        const ms = performance.now() - started;
        for (const tally of [total, window]) {
          tally.latenciesMs.push(ms);
          if (problem === undefined) tally.ok++;
          else {
            tally.failed++;
            tally.problems.set(problem, (tally.problems.get(problem) ?? 0) + 1);
          }
        }
      });
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  };

  const nextPod = (i: number): SentReview =>
    shopReview((review) => {
      if (lateServiceAccount !== undefined && i % 10 === 0) {
        const spec = review.request.object.spec ?? { containers: [] };
        spec.serviceAccountName = lateServiceAccount;
        spec.serviceAccount = lateServiceAccount;
      }
      padTo(review, (POD_KB[i % POD_KB.length] ?? 5) * 1024);
    });

  const events: Array<{ atMs: number; name: string; run: () => Promise<void> }> = [
    {
      atMs: at(0.3),
      name: 'TLS rotation: a new pair published with a ..data symlink swap',
      run: async () => {
        await webhook.rotate(pkiB);
        const expected = fingerprint(pkiB.certPem);
        const seen = await waitFor('the new certificate served', () => servedFingerprint(webhook.port).then((fp) => fp === expected), 20_000, 100).then(
          () => true,
          () => false,
        );
        verdicts.push({
          name: 'certificate rotated',
          ok: seen,
          detail: seen ? 'new connections get the new certificate' : 'still the old certificate after 20 s',
        });
      },
    },
    {
      atMs: at(0.45),
      name: 'watches ended by the API server',
      run: async () => {
        fake.endWatches();
      },
    },
    {
      atMs: at(0.5),
      name: 'API server down (connections refused); a ServiceAccount created meanwhile',
      run: async () => {
        await fake.pause();
        fake.upsert('serviceaccounts', {
          metadata: {
            namespace: 'shop',
            name: LATE_SERVICE_ACCOUNT,
            annotations: {
              'azure.workload.identity/client-id': '8f1c2b7a-3d4e-4f5a-9b6c-7d8e9f0a1b2c',
              'azure.workload.identity/tenant-id': '72f988bf-86f1-41af-91ab-2d7cd011db47',
            },
          },
        });
      },
    },
    {
      atMs: at(0.6),
      name: 'API server back',
      run: async () => {
        const readsBefore = fake.requests.filter((r) => !r.watch && r.path.includes('/serviceaccounts/')).length;
        await fake.resume();
        const cached = (): Promise<boolean> =>
          metric(webhook, 'akv_injector_cache_objects', 'kind="ServiceAccount"').then(
            (n) => n === 2,
            () => false,
          );
        const synced = await waitFor(
          'every watch open again and the ServiceAccount created during the outage cached',
          async () => fake.openWatches() === 3 && (await cached()),
          at(0.35),
          200,
        ).then(
          () => true,
          () => false,
        );
        const watches = fake.openWatches();
        const directReads = fake.requests.filter((r) => !r.watch && r.path.includes('/serviceaccounts/')).length - readsBefore;
        // From now on one pod in ten runs as it: injected only if the cache (or a direct read) finds it.
        if (synced) lateServiceAccount = LATE_SERVICE_ACCOUNT;
        verdicts.push({
          name: 'caches resynced',
          ok: synced && watches === 3 && directReads === 0,
          detail: `ServiceAccounts cached ${await metric(webhook, 'akv_injector_cache_objects', 'kind="ServiceAccount"')} (2 expected), open watches ${watches} (3 expected), direct reads ${directReads}`,
        });
      },
    },
  ];

  const startedAt = performance.now();
  let rssAfterWarmup: number | undefined;
  let nextReport = REPORT_EVERY_MS;
  let i = 0;
  const pending: Array<Promise<void>> = [];
  while (performance.now() - startedAt < durationMs) {
    const elapsed = performance.now() - startedAt;
    // A fixed rate: as many requests as the clock asks for, whatever the answers' latency.
    const due = Math.floor((elapsed / 1000) * RATE);
    while (total.sent < due) send(nextPod(i++));
    const event = events[0];
    if (event !== undefined && elapsed >= event.atMs) {
      events.shift();
      console.log(`  t=${(elapsed / 1000).toFixed(1)}s  event: ${event.name}`);
      pending.push(event.run().catch((error: unknown) => void verdicts.push({ name: event.name, ok: false, detail: (error as Error).message })));
    }
    if (rssAfterWarmup === undefined && elapsed >= at(0.25)) {
      rssAfterWarmup = (await webhook.memory()).rss;
      console.log(`  t=${(elapsed / 1000).toFixed(1)}s  warm-up over: RSS ${(rssAfterWarmup / MiB).toFixed(1)} MiB, the reference for the end`);
    }
    if (elapsed >= nextReport) {
      nextReport += REPORT_EVERY_MS;
      const memory = await webhook.memory();
      console.log(
        `  t=${(elapsed / 1000).toFixed(0).padStart(3)}s  sent ${String(total.sent).padStart(6)}  ok ${String(total.ok).padStart(6)}  failed ${total.failed}  ` +
          `last ${REPORT_EVERY_MS / 1000} s: ${(window.sent / (REPORT_EVERY_MS / 1000)).toFixed(1)}/s p50 ${percentile(window.latenciesMs, 50).toFixed(1)} ms p99 ${percentile(window.latenciesMs, 99).toFixed(1)} ms  ` +
          `RSS ${(memory.rss / MiB).toFixed(1)} MiB (peak ${(memory.peak / MiB).toFixed(1)})`,
      );
      for (const [problem, n] of window.problems) console.log(`         ${n} × ${problem}`);
      window = newTally();
    }
    await sleep(5);
  }
  await Promise.all([...inFlight, ...pending]);
  agent.destroy();
  const memory = await webhook.memory();
  return report(total, verdicts, { start: rssAfterWarmup ?? Number.NaN, end: memory.rss, peak: memory.peak, limit: memoryLimit });
}

function report(total: Tally, events: Verdict[], memory: { start: number; end: number; peak: number; limit: number }): number {
  const expected = Math.floor(SECONDS * RATE);
  const verdicts: Verdict[] = [
    {
      name: 'zero failed admissions',
      ok: total.failed === 0 && total.ok === total.sent,
      detail: `${total.ok} of ${total.sent} answered right, ${total.failed} failed`,
    },
    {
      name: 'rate held (≥ 95 %)',
      ok: total.ok >= 0.95 * expected,
      detail: `${total.ok} answered of the ${expected} the rate asks for (${(total.ok / SECONDS).toFixed(1)}/s)`,
    },
    {
      name: 'RSS flat (end ≤ 1.2 × after warm-up)',
      ok: memory.end <= 1.2 * memory.start,
      detail: `${(memory.start / MiB).toFixed(1)} MiB after warm-up → ${(memory.end / MiB).toFixed(1)} MiB at the end (×${(memory.end / memory.start).toFixed(2)})`,
    },
    { name: 'peak RSS under the limit', ok: memory.peak < memory.limit, detail: `${(memory.peak / MiB).toFixed(1)} MiB < ${memory.limit / MiB} MiB` },
    ...events,
  ];
  if (!events.some((v) => v.name === 'certificate rotated')) verdicts.push({ name: 'certificate rotated', ok: false, detail: 'the rotation did not run' });
  if (!events.some((v) => v.name === 'caches resynced')) verdicts.push({ name: 'caches resynced', ok: false, detail: 'the outage did not run' });
  console.log(
    `latency over the run: p50 ${percentile(total.latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(total.latenciesMs, 99).toFixed(1)} ms, max ${Math.max(...total.latenciesMs).toFixed(1)} ms`,
  );
  for (const [problem, n] of total.problems) console.log(`failed: ${n} × ${problem}`);
  console.log('targets:');
  for (const v of verdicts) console.log(`  ${v.ok ? 'ok    ' : 'MISSED'}  ${v.name}: ${v.detail}`);
  return verdicts.every((v) => v.ok) ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(`bench:soak: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
