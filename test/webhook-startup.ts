// The bundled webhook started while the API server is unreachable: it serves, says why it is not ready, answers
// admissions it cannot resolve with a retryable denial instead of crashing, and is ready once the API server is back.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AdmissionReview } from '../webhook/admission.js';
import { buildDist } from './fixtures/dist.js';
import { startFakeApiServer } from './fixtures/fake-apiserver.js';
import { makeTestPki } from './fixtures/tls.js';
import { waitFor } from './fixtures/wait-for.js';
import { checkInjected, postMutate, seedShop, shopReview, startWebhookProcess } from './fixtures/webhook-process.js';

const pki = makeTestPki(['localhost', '127.0.0.1']);

t.test('API server unreachable at start-up: not ready with the reason, no crash, ready once it is back', async (t) => {
  const dir = t.testdir({ dist: {}, webhook: {} });
  const cli = await buildDist(`${dir}/dist`);
  // The port is reserved but closed: connection refused, as for an API server that is down.
  const fake = await startFakeApiServer({ paused: true });
  t.teardown(() => fake.close());
  seedShop(fake);
  const webhook = await startWebhookProcess({ cli, fake, dir: `${dir}/webhook`, pki });
  t.teardown(() => webhook.stop());
  let exited: number | string | undefined;
  void webhook.exited.then((code) => (exited = code));

  t.equal((await webhook.health('/healthz')).status, 200, 'live');
  const notReady = await webhook.health('/readyz');
  t.equal(notReady.status, 503, 'not ready');
  t.match(JSON.parse(notReady.body), {
    status: 'not ready',
    reason: 'the cluster caches have not synced with the API server yet',
    reasons: ['the cluster caches have not synced with the API server yet', /^the API server's version is not known yet/],
  });

  const early = shopReview();
  const answer = await postMutate(webhook.port, pki.caCertPem, early.body);
  t.equal(answer.status, 200, 'an admission meanwhile is answered');
  t.match(
    JSON.parse(answer.body) as AdmissionReview,
    { response: { uid: early.uid, allowed: false, status: { code: 500, message: /retry the request/ } } },
    'with a denial that says to retry, not a guess',
  );

  // Probed as the kubelet probes it, through several of the caches' retries (500 ms, doubling): up, and not ready.
  const probes: number[] = [];
  for (let i = 0; i < 5; i++) {
    await sleep(1_000);
    probes.push((await webhook.health('/readyz')).status);
  }
  t.same(probes, [503, 503, 503, 503, 503], 'not ready at every probe while the API server is down');
  t.equal(exited, undefined, 'the process is still running');

  await fake.resume();
  await waitFor(
    'ready once the API server is back',
    () =>
      webhook.health('/readyz').then(
        (r) => r.status === 200,
        () => false,
      ),
    45_000,
    100,
  );
  const later = shopReview();
  checkInjected(t, 'an admission once ready', later, await postMutate(webhook.port, pki.caCertPem, later.body));
  // Read as `kubectl logs` reads it, while the webhook runs: a quiet server's lines are not held back for more.
  const admissionLine = (uid: string) => (): boolean =>
    webhook
      .output()
      .stdout.split('\n')
      .some((line) => line.includes(`"uid":"${uid}"`) && line.includes('"msg":"admission"'));
  // The logger flushes every second; the bound leaves room for a loaded machine (one waiting for a full batch never wrote it).
  await waitFor("the admission's log line on stdout while the webhook runs", admissionLine(later.uid), 5_000, 50);
  t.ok(admissionLine(early.uid)(), "the early admission's line too");
  t.equal(exited, undefined, 'never exited');
  t.notMatch(webhook.output().stderr, /Unhandled|uncaught|ERR_/i, 'nothing unhandled on stderr');
  t.equal(await webhook.stop(), 0, 'a clean stop: exit code 0');
});
