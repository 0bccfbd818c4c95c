// The bundled webhook in its own process, with the Deployment's Node flags, against clients that hold connections:
// slow bodies and slow headers are cut within their time bounds, connections past the cap are refused at once,
// and ordinary pods are answered meanwhile, with the peak resident memory inside the Deployment's limit.
import t from 'tap';
import tls from 'node:tls';
import { MAX_CONNECTIONS, TIMEOUTS } from '../webhook/server.js';
import { makeTestPki } from './fixtures/tls.js';
import { waitFor } from './fixtures/wait-for.js';
import { checkInjected, deploymentRuntime, padTo, postMutate, shopReview, startReadyShopWebhook } from './fixtures/webhook-process.js';

const MiB = 1024 * 1024;
const pki = makeTestPki(['localhost', '127.0.0.1']);
const runtime = deploymentRuntime();
/** Time Node may take past a timeout: its next connection check, and a busy machine's scheduling. */
const SLACK_MS = TIMEOUTS.checkingIntervalMs + 4_000;

interface SlowClient {
  /** When its request began (the TLS handshake done): what the server's timeouts count from. */
  startedAt: number;
  /** When the server closed it; undefined while open. */
  closedAt?: number;
  /** The status the server answered before closing, if any. */
  status?: number;
}

/** A TLS client that sends `head` at once, then one byte of `drip` every `everyMs`, never finishing; 'refused' if never connected. */
function slowClient(port: number, head: string, drip: string, everyMs: number): Promise<SlowClient | 'refused'> {
  return new Promise((resolve) => {
    const client: SlowClient = { startedAt: Date.now() };
    const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.caCertPem, servername: 'localhost' });
    let timer: NodeJS.Timeout | undefined;
    socket.once('secureConnect', () => {
      client.startedAt = Date.now();
      socket.write(head);
      let i = 0;
      timer = setInterval(() => socket.write(drip[i++ % drip.length] ?? ' '), everyMs);
      resolve(client);
    });
    socket.on('data', (chunk: Buffer) => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1'))?.[1];
      if (status !== undefined) client.status = Number(status);
    });
    socket.on('error', () => resolve('refused'));
    socket.on('close', () => {
      clearInterval(timer);
      client.closedAt = Date.now();
    });
  });
}

const lifetimes = (clients: SlowClient[]): number[] => clients.map((c) => (c.closedAt ?? Number.POSITIVE_INFINITY) - c.startedAt);
// A body declared small (charged only once it has arrived) and one declared large (charged before it is read).
const SMALL_BODY_HEAD = 'POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 40000\r\n\r\n{"apiVersion":';
const LARGE_BODY_HEAD = 'POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 3000000\r\n\r\n{"apiVersion":';
const HEADERS_HEAD = 'POST /mutate HTTP/1.1\r\nhost: localhost\r\n';

t.test('slow clients against the webhook process', async (t) => {
  const { webhook } = await startReadyShopWebhook(t, pki);

  // Both scenes share one wait for the request timeout: the slow clients, then the clients past the cap, all open at once.
  const connected = await Promise.all([
    ...Array.from({ length: 200 }, () => slowClient(webhook.port, SMALL_BODY_HEAD, ' ', 200)),
    ...Array.from({ length: 20 }, () => slowClient(webhook.port, LARGE_BODY_HEAD, ' ', 200)),
    ...Array.from({ length: 80 }, () => slowClient(webhook.port, HEADERS_HEAD, 'x', 200)),
  ]);
  const open = connected.filter((c): c is SlowClient => c !== 'refused');
  t.equal(open.length, 300, '300 slow clients connected (under the cap)');

  for (const kb of [5, 50]) {
    const sent = shopReview((r) => padTo(r, kb * 1024));
    checkInjected(t, `a ${kb} KB pod while 300 clients trickle`, sent, await postMutate(webhook.port, pki.caCertPem, sent.body));
  }

  // Past the connection cap new connections are refused at once: 100 more attempts than the slots left. A slow client
  // cut meanwhile (on a loaded machine the slow headers may reach their timeout) frees its slot: only those still open
  // once every attempt has been answered held theirs throughout, and each one cut lets one more attempt in.
  const stillOpen = (): number => open.filter((c) => c.closedAt === undefined).length;
  const attempts = await Promise.all(Array.from({ length: MAX_CONNECTIONS - stillOpen() + 100 }, () => slowClient(webhook.port, SMALL_BODY_HEAD, ' ', 500)));
  const accepted = attempts.filter((c): c is SlowClient => c !== 'refused');
  // A slow client the server cut while the attempts were being accepted freed its slot, but on a busy machine this
  // process may notice the close only after it has noticed later accepts. Let pending events in, then count as freed
  // those noticed closed by the last accept (with 100 ms for the order in which one poll's events are handled).
  const lastAcceptedAt = Math.max(0, ...accepted.map((c) => c.startedAt));
  await new Promise((resolve) => setTimeout(resolve, 200));
  const freed = open.filter((c) => c.closedAt !== undefined && c.closedAt <= lastAcceptedAt + 100).length;
  const heldThroughout = open.length - freed;
  t.comment(`${accepted.length} more accepted, ${attempts.length - accepted.length} refused (${freed} slow clients cut meanwhile)`);
  t.ok(heldThroughout + accepted.length <= MAX_CONNECTIONS, `at most ${MAX_CONNECTIONS} open at once`);
  t.ok(attempts.length - accepted.length >= 100 - freed, 'the rest refused');

  await waitFor('every slow client cut', () => [...open, ...accepted].every((c) => c.closedAt !== undefined), TIMEOUTS.requestMs + SLACK_MS + 5_000, 100);
  const small = lifetimes(open.slice(0, 200));
  const large = lifetimes(open.slice(200, 220));
  const headers = lifetimes(open.slice(220));
  t.comment(
    `slow small bodies cut after ${Math.min(...small)}–${Math.max(...small)} ms, large ${Math.min(...large)}–${Math.max(...large)} ms, slow headers ${Math.min(...headers)}–${Math.max(...headers)} ms`,
  );
  t.ok(Math.max(...small) <= TIMEOUTS.requestMs + SLACK_MS, `slow small bodies cut within ${TIMEOUTS.requestMs} ms (request timeout) + ${SLACK_MS} ms`);
  t.ok(Math.min(...small) >= TIMEOUTS.requestMs - 1_000, 'and not before: they hold no budget, so nothing sheds them');
  t.ok(
    open.slice(0, 200).every((c) => c.status === 408),
    'each told 408 Request Timeout',
  );
  // Large ones beyond the first wait unread for the budget and are shed after budgetWaitMs; the first reads until the request timeout.
  t.ok(Math.max(...large) <= TIMEOUTS.requestMs + SLACK_MS, 'slow large bodies cut within the request timeout');
  t.ok(
    open.slice(200, 220).every((c) => c.status === 408 || c.status === 503),
    'each told 408, or 503 when shed while waiting',
  );
  t.ok(Math.max(...headers) <= TIMEOUTS.headersMs + SLACK_MS, `slow headers cut within ${TIMEOUTS.headersMs} ms (headers timeout) + ${SLACK_MS} ms`);
  t.ok(Math.max(...lifetimes(accepted)) <= TIMEOUTS.requestMs + SLACK_MS, 'those accepted past the slow ones cut within the request timeout too');

  const sent = shopReview();
  checkInjected(t, 'an ordinary pod once the slots are free', sent, await postMutate(webhook.port, pki.caCertPem, sent.body));

  const memory = await webhook.memory();
  t.comment(`peak RSS ${(memory.peak / MiB).toFixed(1)} MiB`);
  t.ok(memory.peak < runtime.memoryLimitBytes, `peak RSS ${(memory.peak / MiB).toFixed(1)} MiB < the Deployment's limit ${runtime.memoryLimitBytes / MiB} MiB`);
  t.equal((await webhook.health('/healthz')).status, 200, 'still serving');
});
