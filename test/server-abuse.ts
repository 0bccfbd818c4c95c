// The bundled webhook in its own process, with the Deployment's Node flags, under the large bodies any pod in the
// cluster can send it: many at once, of the shapes that cost the most memory per byte, while the API server sends
// ordinary pods. Its peak resident memory stays inside the Deployment's limit and every ordinary pod is answered.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import { MAX_JSON_VALUES } from '../webhook/json-body.js';
import { makeTestPki } from './fixtures/tls.js';
import { waitFor } from './fixtures/wait-for.js';
import { checkInjected, deploymentRuntime, padTo, postMutate, shopReview, startReadyShopWebhook, type Review } from './fixtures/webhook-process.js';

const MiB = 1024 * 1024;
const pki = makeTestPki(['localhost', '127.0.0.1']);
const runtime = deploymentRuntime();

/** A map of `count` short keys: the costliest JSON per byte the API server itself can send (~190 bytes a member). */
function denseMap(count: number): Record<string, string> {
  const map: Record<string, string> = {};
  for (let i = 0; i < count; i++) map[`k${i.toString(36)}`] = '';
  return map;
}

/** Large bodies, each about 4 MiB: the most expensive shapes under the value bound, and one past it. */
const LARGE_SHAPES: Array<{ name: string; edit: (r: Review) => void; expect: readonly number[]; denial?: RegExp }> = [
  {
    name: 'CSI volumeAttributes just under the value bound',
    edit: (r) => {
      const spec = r.request.object.spec ?? { containers: [] };
      spec.volumes = [
        ...(spec.volumes ?? []),
        { name: 'vendor', csi: { driver: 'secrets.vendor.example.com', volumeAttributes: denseMap(MAX_JSON_VALUES - 5_000) } },
      ];
      padTo(r, 4 * MiB - 4096);
    },
    expect: [200, 503],
  },
  {
    name: 'annotations just under the value bound',
    edit: (r) => {
      Object.assign(((r.request.object.metadata ??= {}).annotations ??= {}), denseMap(MAX_JSON_VALUES - 5_000));
      padTo(r, 4 * MiB - 4096);
    },
    expect: [200, 503],
    // An injected pod has at most 1000 annotations: answered, with a denial that says so.
    denial: /annotations; akv-injector injects pods of at most 1000/,
  },
  { name: 'one 4 MiB annotation', edit: (r) => padTo(r, 4 * MiB - 4096), expect: [200, 503] },
  {
    name: 'a million empty arrays (past the value bound)',
    edit: (r) => Object.assign(r.request.object.spec ?? {}, { x: Array.from({ length: 1_300_000 }, () => []) }),
    expect: [413, 503],
  },
];

t.test('large bodies of every shape at once, and ordinary pods meanwhile: memory inside the limit, every pod answered', async (t) => {
  const { webhook } = await startReadyShopWebhook(t, pki);
  t.comment(
    `node ${webhook.node}, NODE_OPTIONS "${webhook.nodeOptions}", limit ${runtime.memoryLimitBytes / MiB} MiB, at start ${((await webhook.memory()).rss / MiB).toFixed(0)} MiB`,
  );

  // Five of each shape, built once (building them is the slow part) and sent with their own uids.
  const large = LARGE_SHAPES.flatMap((shape) => {
    const first = shopReview(shape.edit);
    return Array.from({ length: 5 }, () => {
      const uid = randomUUID();
      return { shape, sent: { ...first, uid, body: first.body.replace(first.uid, uid) } };
    });
  });
  // Ordinary pods of 5, 20 and 50 KB over keep-alive connections, as the API server sends them, during the flood.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 8, ca: pki.caCertPem });
  t.teardown(() => agent.destroy());
  const ordinary = [5, 20, 50].flatMap((kb) => Array.from({ length: 20 }, () => shopReview((r) => padTo(r, kb * 1024))));

  const largeAnswers = Promise.all(large.map(({ sent }) => postMutate(webhook.port, pki.caCertPem, sent.body)));
  const ordinaryAnswers = Promise.all(ordinary.map((sent) => postMutate(webhook.port, pki.caCertPem, sent.body, agent)));

  for (const [i, answer] of (await ordinaryAnswers).entries()) {
    const sent = ordinary[i] as (typeof ordinary)[number];
    checkInjected(t, `ordinary pod ${i} (${sent.body.length} bytes)`, sent, answer);
  }
  const answers = await largeAnswers;
  const statuses = new Map<string, number[]>();
  for (const [i, answer] of answers.entries()) {
    const { shape, sent } = large[i] as (typeof large)[number];
    statuses.set(shape.name, [...(statuses.get(shape.name) ?? []), answer.status]);
    t.ok(shape.expect.includes(answer.status), `${shape.name}: ${answer.status} is one of ${shape.expect.join(', ')}`);
    if (answer.status === 200 && shape.denial !== undefined) {
      t.match(
        JSON.parse(answer.body),
        { response: { uid: sent.uid, allowed: false, status: { code: 400, message: shape.denial } } },
        `${shape.name}: denied, saying why`,
      );
    } else if (answer.status === 200) checkInjected(t, shape.name, sent, answer);
    else
      t.match(JSON.parse(answer.body), { error: String, message: /^akv-injector is busy|^the body holds more than/ }, `${shape.name}: a JSON error saying why`);
  }
  t.comment(`large bodies: ${JSON.stringify(Object.fromEntries(statuses))}`);
  // Whether any waits past the budget's 2 s depends on how fast this machine parses 4 MiB: shedding itself is
  // test/server.ts's (a body held, another shed); here, each shed one is an answer and is counted.
  const shed = answers.filter((a) => a.status === 503).length;
  t.comment(`${shed} of ${answers.length} large bodies shed by the body budget`);
  t.ok(
    answers.some((a) => a.status === 200),
    'large bodies served',
  );

  const memory = await webhook.memory();
  t.comment(`peak RSS ${(memory.peak / MiB).toFixed(1)} MiB`);
  t.ok(memory.peak < runtime.memoryLimitBytes, `peak RSS ${(memory.peak / MiB).toFixed(1)} MiB < the Deployment's limit ${runtime.memoryLimitBytes / MiB} MiB`);
  t.equal((await webhook.health('/healthz')).status, 200, 'still serving');
  const metrics = (await webhook.health('/metrics')).body;
  t.match(metrics, new RegExp(`^akv_injector_admissions_total\\{outcome="busy"\\} ${shed}$`, 'm'), 'shed requests counted, each once');
  await waitFor('every admitted byte given back', () =>
    webhook.health('/metrics').then((m) => /^akv_injector_request_body_bytes\{size="all"\} 0$/m.test(m.body)),
  );
});
