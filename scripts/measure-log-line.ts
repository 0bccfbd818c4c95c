// What one admission log line costs the webhook's logger (src/log.ts, createServerLogger: 4 KiB batches written
// synchronously) against the same batches written asynchronously through libuv's thread pool, the webhook's logger
// until 2026-11-30. Each runs in a child process whose stdout is a pipe that this process drains, as a container
// runtime drains a container's. Prints µs of CPU per line (user + system, every thread of the child), the median of
// three children each. A measurement, with no target.
//
//   npx tsx scripts/measure-log-line.ts
//   BENCH_NODE=$(npx -y node@24 -p process.execPath) npx tsx scripts/measure-log-line.ts   # the image's Node 24
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createLogger, createServerLogger, type Logger } from '../src/log.js';
import { childFigure } from './child-figure.js';
import { median } from './median.js';

const LINES = 200_000;
const WARMUP_LINES = 20_000;
const VARIANTS = {
  'synchronous batches (the webhook)': () => createServerLogger('webhook', 'info'),
  'asynchronous batches (before)': () => createLogger('webhook', pino.destination({ dest: 1, sync: false, minLength: 4096 }), 'info'),
} satisfies Record<string, () => Logger>;
type Variant = keyof typeof VARIANTS;

/** The fields of server.ts's admission line, with a uid of its own per line. */
const line = (i: number): Record<string, unknown> => ({
  uid: `6a1f2d9c-1b2c-4d5e-8f90-${String(i).padStart(12, '0')}`,
  namespace: 'shop',
  pod: 'checkout-7d9f8c6b5-',
  operation: 'CREATE',
  resource: 'v1/pods',
  outcome: 'injected',
  reason: 'the pod is annotated akv-injector.io/inject: "true"',
  shared: true,
  ms: 0.42,
});

async function child(variant: Variant): Promise<void> {
  const logger = VARIANTS[variant]();
  const write = async (from: number, count: number): Promise<void> => {
    for (let i = from; i < from + count; i++) {
      logger.info(line(i), 'admission');
      // A turn of the event loop now and then, as between requests: asynchronous writes complete there.
      if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await write(0, WARMUP_LINES);
  const before = process.cpuUsage();
  await write(WARMUP_LINES, LINES);
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  const used = process.cpuUsage(before);
  process.send?.({ us: (used.user + used.system) / LINES, version: process.version });
}

interface Figure {
  us: number;
  version: string;
}

if (process.argv[2] === 'child') {
  await child(process.argv[3] as Variant);
} else {
  const results = new Map<Variant, number[]>();
  let version = '';
  // Interleaved, so drift on a shared machine hits both alike.
  for (let round = 0; round < 3; round++) {
    for (const variant of Object.keys(VARIANTS) as Variant[]) {
      const figure = await childFigure<Figure>(fileURLToPath(import.meta.url), ['child', variant], { pipeStdout: true });
      version = figure.version;
      results.set(variant, [...(results.get(variant) ?? []), figure.us]);
    }
  }
  console.log(`one admission log line, ${LINES} lines to a pipe, Node.js ${version}: µs of CPU per line (median of 3)`);
  for (const [variant, values] of results) {
    console.log(`  ${variant.padEnd(36)} ${median(values).toFixed(1).padStart(5)}   (${values.map((v) => v.toFixed(1)).join(', ')})`);
  }
}
