// The log lines' timestamp (src/log.ts): the text pino's own isoTime writes, for every millisecond, in any order.
import fc from 'fast-check';
import { pino } from 'pino';
import t from 'tap';
import { isoTime } from '../src/log.js';

/** pino.stdTimeFunctions.isoTime at `now`: it reads Date.now(). */
function pinoIsoTime(now: number): string {
  const realNow = Date.now;
  Date.now = () => now;
  try {
    return pino.stdTimeFunctions.isoTime();
  } finally {
    Date.now = realNow;
  }
}

t.test("the same text as pino's isoTime: each millisecond's digits, and the second each one falls in", async (t) => {
  const second = Date.UTC(2026, 10, 30, 14, 10, 11);
  for (const now of [0, 9, 10, 99, 100, 999, 1000, second, second + 7, second + 42, second + 999, second + 1000, Date.UTC(9999, 11, 31, 23, 59, 59, 999)]) {
    t.equal(isoTime(now), pinoIsoTime(now), new Date(now).toISOString());
  }
  t.equal(isoTime(second - 1), ',"time":"2026-11-30T14:10:10.999Z"', 'back a second');
});

t.test('any time, in any order', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -8.64e12, max: 8.64e12 }), { minLength: 1, maxLength: 50 }), (times) => {
      for (const now of times) if (isoTime(now) !== pinoIsoTime(now)) throw new Error(`${now}: ${isoTime(now)} ≠ ${pinoIsoTime(now)}`);
      // Neighbours, where the kept second is reused.
      for (const now of times) for (const step of [1, 2, 999]) if (isoTime(now + step) !== pinoIsoTime(now + step)) throw new Error(`${now + step}`);
    }),
    { numRuns: 300, seed: 30_11 },
  );
  t.pass('matched');
  t.match(isoTime(), /^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/, 'now, by default');
});
