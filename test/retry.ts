// Retries: which failures are retried, how long we wait, and that the deadline always wins.
import t from 'tap';
import { classify } from '../src/fetch/diagnose.js';
import { DeadlineError, parseRetryAfter, withRetry } from '../src/fetch/retry.js';
import { answerError, networkError } from './fixtures/rest-error.js';

const httpError = (statusCode: number, headers: Record<string, string> = {}): Error => answerError(statusCode, { headers });

t.test('classification', async (t) => {
  const cases: Array<[string, unknown, boolean, number?]> = [
    ['429 without Retry-After', httpError(429), true],
    ['429 with Retry-After seconds', httpError(429, { 'retry-after': '3' }), true, 3000],
    ['500', httpError(500), true],
    ['503', httpError(503), true],
    ['408', httpError(408), true],
    ['400', httpError(400), false],
    ['401', httpError(401), false],
    ['403', httpError(403), false],
    ['404', httpError(404), false],
    ['ECONNRESET', networkError('ECONNRESET'), true],
    ['ECONNREFUSED', networkError('ECONNREFUSED'), true],
    ['ENOTFOUND is a wrong name, not an outage', networkError('ENOTFOUND'), false],
    ['AADSTS code', new Error('invalid_client: AADSTS70021: No matching federated identity record'), false],
    ['abort', Object.assign(new Error('aborted'), { name: 'AbortError' }), false],
    ['MSAL network error', new Error('network_error: Network request failed'), true],
    ['unknown', new Error('boom'), false],
  ];
  for (const [name, error, retry, after] of cases) {
    const decision = classify(error);
    t.equal(decision.retry, retry, name);
    if (after !== undefined) t.equal(decision.retryAfterMs, after, `${name}: wait`);
  }
});

t.test('Retry-After', async (t) => {
  t.equal(parseRetryAfter('5'), 5000);
  t.equal(parseRetryAfter('0.5'), 500);
  t.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10_000);
  t.equal(parseRetryAfter('soon'), undefined);
  t.equal(parseRetryAfter(undefined), undefined);
});

interface Script {
  failures: unknown[];
}

function scripted(script: Script): { attempt: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    attempt: async () => {
      const failure = script.failures[calls++];
      if (failure !== undefined) throw failure;
      return 'ok';
    },
    calls: () => calls,
  };
}

t.test('transient failures are retried with jittered backoff, honouring Retry-After', async (t) => {
  const waits: number[] = [];
  const { attempt, calls } = scripted({ failures: [httpError(503), networkError('ECONNRESET'), httpError(429, { 'retry-after': '2' }), httpError(429)] });
  const result = await withRetry(attempt, {
    signal: new AbortController().signal,
    remainingMs: () => 60_000,
    classify,
    random: () => 0.5,
    sleep: async (ms) => {
      waits.push(ms);
    },
  });
  t.equal(result, 'ok');
  t.equal(calls(), 5);
  t.same(waits, [100, 200, 2000, 800], 'half of 200·2^n (full jitter at 0.5), and Retry-After when longer');
});

t.test('permanent failures are not retried', async (t) => {
  const { attempt, calls } = scripted({ failures: [httpError(403)] });
  const error = await withRetry(attempt, { signal: new AbortController().signal, remainingMs: () => 60_000, classify, sleep: async () => {} }).catch(
    (e: unknown) => e,
  );
  t.match(error, { statusCode: 403 });
  t.equal(calls(), 1);
});

t.test('a wait that would pass the deadline fails now with the real cause', async (t) => {
  const { attempt, calls } = scripted({ failures: [httpError(429, { 'retry-after': '30' })] });
  const error = await withRetry(attempt, { signal: new AbortController().signal, remainingMs: () => 5_000, classify, sleep: async () => {} }).catch(
    (e: unknown) => e,
  );
  t.type(error, DeadlineError);
  t.match(error, { lastError: { statusCode: 429 }, retryAfterMs: 30_000, remainingMs: 5_000 }, 'says the server asked for a wait beyond the deadline');
  t.equal(calls(), 1);
});

t.test("a backoff that would pass the deadline is not a server's request to wait", async (t) => {
  const { attempt } = scripted({ failures: [httpError(503)] });
  const error = await withRetry(attempt, {
    signal: new AbortController().signal,
    remainingMs: () => 50,
    classify,
    random: () => 1,
    sleep: async () => {},
  }).catch((e: unknown) => e);
  t.match(error, { name: 'DeadlineError', lastError: { statusCode: 503 }, retryAfterMs: undefined });
});

t.test('the deadline ends an attempt that ignores the signal', async (t) => {
  const controller = new AbortController();
  const earlier = httpError(503);
  let calls = 0;
  const attempt = (): Promise<string> => (calls++ === 0 ? Promise.reject(earlier) : new Promise<string>(() => {}));
  const settled = withRetry(attempt, { signal: controller.signal, remainingMs: () => 60_000, classify, sleep: async () => {} }).catch((e: unknown) => e);
  // The second attempt never settles; only the deadline can end it.
  setImmediate(() => controller.abort(new Error('deadline')));
  const error = await settled;
  t.type(error, DeadlineError);
  t.equal((error as DeadlineError).lastError, earlier, 'the cause is what failed before, not the cut');
  t.equal(calls, 2);
});

t.test('the deadline aborts a wait in progress', async (t) => {
  const controller = new AbortController();
  const { attempt } = scripted({ failures: [httpError(503), httpError(503), httpError(503)] });
  setTimeout(() => controller.abort(new Error('deadline')), 30);
  const started = Date.now();
  const error = await withRetry(attempt, { signal: controller.signal, remainingMs: () => 60_000, classify, random: () => 1, baseDelayMs: 10_000 }).catch(
    (e: unknown) => e,
  );
  t.type(error, DeadlineError);
  t.match((error as DeadlineError).lastError, { statusCode: 503 });
  t.ok(Date.now() - started < 5_000, 'did not sleep the full backoff');
});

t.test('an attempt already past the deadline is not made', async (t) => {
  const controller = new AbortController();
  controller.abort();
  const { attempt, calls } = scripted({ failures: [] });
  await t.rejects(withRetry(attempt, { signal: controller.signal, remainingMs: () => 0, classify }), DeadlineError);
  t.equal(calls(), 0);
});
