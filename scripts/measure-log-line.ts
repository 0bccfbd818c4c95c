// What one admission log line costs the webhook's logger (src/log.ts, createServerLogger: pino writing into
// batched-writer.ts's buffer of bytes, 16 KiB batches written synchronously) against pino's own destination
// (sonic-boom) gathering 4 KiB batches, written synchronously (the webhook's logger until 2026-11-30 10:18 UTC) and
// asynchronously through libuv's thread pool (until ~01:00 UTC), and against pino formatting the line into nothing.
// Each runs in a child process whose stdout is a pipe that this process drains, as a container runtime drains a
// container's. Prints µs of CPU per line (user + system, every thread of the child), the median of three children
// each, and the bytes one line allocates (V8's sampling heap profiler; the line's fields included). A measurement,
// with no target.
//
//   npx tsx scripts/measure-log-line.ts
//   BENCH_NODE=$(npx -y node@24 -p process.execPath) npx tsx scripts/measure-log-line.ts   # the image's Node 24
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createLogger, createServerLogger, type Logger } from '../src/log.js';
import { childFigure } from './child-figure.js';
import { allocatedBytes } from './heap-sampling.js';
import { median } from './median.js';

const LINES = 200_000;
const ALLOCATION_LINES = 20_000;
const WARMUP_LINES = 20_000;
const VARIANTS = {
  'the webhook (bytes, 16 KiB batches)': () => createServerLogger('webhook', 'info'),
  'pino, synchronous 4 KiB batches': () => createLogger('webhook', pino.destination({ dest: 1, sync: true, minLength: 4096 }), 'info'),
  'pino, asynchronous 4 KiB batches': () => createLogger('webhook', pino.destination({ dest: 1, sync: false, minLength: 4096 }), 'info'),
  'pino into nothing (its format alone)': () => createLogger('webhook', { write: () => true }, 'info'),
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
  const allocated = await allocatedBytes(() => write(0, ALLOCATION_LINES));
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  process.send?.({ us: (used.user + used.system) / LINES, bytes: allocated / ALLOCATION_LINES, version: process.version });
}

interface Figure {
  us: number;
  bytes: number;
  version: string;
}

if (process.argv[2] === 'child') {
  await child(process.argv[3] as Variant);
} else {
  const results = new Map<Variant, Figure[]>();
  let version = '';
  // Interleaved, so drift on a shared machine hits both alike.
  for (let round = 0; round < 3; round++) {
    for (const variant of Object.keys(VARIANTS) as Variant[]) {
      const figure = await childFigure<Figure>(fileURLToPath(import.meta.url), ['child', variant], { pipeStdout: true });
      version = figure.version;
      results.set(variant, [...(results.get(variant) ?? []), figure]);
    }
  }
  console.log(`one admission log line, ${LINES} lines to a pipe, Node.js ${version}: µs of CPU per line and bytes allocated per line (medians of 3)`);
  for (const [variant, figures] of results) {
    const us = figures.map((f) => f.us);
    const bytes = median(figures.map((f) => f.bytes));
    console.log(
      `  ${variant.padEnd(38)} ${median(us).toFixed(1).padStart(5)} µs   ${(bytes / 1000).toFixed(1).padStart(4)} KB   (µs: ${us.map((v) => v.toFixed(1)).join(', ')})`,
    );
  }
}
