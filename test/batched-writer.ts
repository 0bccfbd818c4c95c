// The server logger's destination (src/batched-writer.ts) against real file descriptors: a file read back byte for
// byte, a FIFO whose reader is slow (a real EAGAIN on a full non-blocking pipe, as a container runtime's stdout pipe
// can be), a descriptor that refuses writes (a real EBADF), and a real process that exits with lines gathered.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { BatchedWriter } from '../src/batched-writer.js';
import { exactEnv } from './fixtures/exact-env.js';
import { waitFor } from './fixtures/wait-for.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function scratch(t: Test): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'akv-batched-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A writer into a fresh file, and what the file holds now. */
function fileWriter(t: Test, options: { batchBytes: number; flushMs?: number }): { writer: BatchedWriter; read: () => string; bytes: () => Buffer } {
  const file = path.join(scratch(t), 'out.log');
  const fd = openSync(file, 'w');
  const writer = new BatchedWriter(fd, { flushMs: 60_000, ...options });
  t.teardown(() => {
    writer.end();
    closeSync(fd);
  });
  return { writer, read: () => readFileSync(file, 'utf8'), bytes: () => readFileSync(file) };
}

t.test('lines gather until a batch is full, then go out as one write, byte for byte', async (t) => {
  const { writer, read, bytes } = fileWriter(t, { batchBytes: 100 });
  // Two-byte, three-byte and four-byte UTF-8, a lone surrogate (written as U+FFFD, as Buffer.from writes it).
  const lines = ['{"msg":"é"}\n', '{"msg":"€ 東京"}\n', '{"msg":"😀"}\n', '{"msg":"\ud800"}\n'];
  for (const line of lines) writer.write(line);
  t.equal(read(), '', 'under a batch: nothing written yet');
  const filler = `{"msg":"${'x'.repeat(80)}"}\n`;
  writer.write(filler);
  t.same(bytes(), Buffer.from(lines.join('') + filler, 'utf8'), 'past the batch size: everything, in order');
  writer.write('{"after":1}\n');
  t.same(bytes(), Buffer.from(lines.join('') + filler, 'utf8'), 'the next line waits for the next batch');
  writer.flushSync();
  t.same(bytes(), Buffer.from(`${lines.join('')}${filler}{"after":1}\n`, 'utf8'));
});

t.test('a line longer than the buffer goes out on its own, after the lines before it', async (t) => {
  const { writer, read } = fileWriter(t, { batchBytes: 64 });
  writer.write('{"first":true}\n');
  // 3 bytes per character: 3 × 100 > the 128-byte buffer.
  const long = `${'€'.repeat(100)}\n`;
  writer.write(long);
  t.equal(read(), `{"first":true}\n${long}`);
  writer.write('{"last":true}\n');
  writer.flushSync();
  t.equal(read(), `{"first":true}\n${long}{"last":true}\n`);
});

t.test('a line that does not fit in the room left sends the batch first', async (t) => {
  const { writer, read } = fileWriter(t, { batchBytes: 40 });
  writer.write(`${'a'.repeat(30)}\n`);
  // 31 bytes gathered in an 80-byte buffer; this one may take up to 3 × 20 = 60 bytes, which do not fit.
  writer.write(`${'b'.repeat(19)}\n`);
  t.equal(read(), `${'a'.repeat(30)}\n`, 'the gathered lines went first');
  writer.flushSync();
  t.equal(read(), `${'a'.repeat(30)}\n${'b'.repeat(19)}\n`);
});

t.test('a quiet writer still writes what it gathered, every flushMs', async (t) => {
  const { writer, read } = fileWriter(t, { batchBytes: 16 * 1024, flushMs: 20 });
  writer.write('{"quiet":true}\n');
  await waitFor('the periodic write', () => read() === '{"quiet":true}\n', 5_000);
  t.pass();
});

t.test('flush(callback), as pino calls it, writes what gathered before calling back', async (t) => {
  const { writer, read } = fileWriter(t, { batchBytes: 1024 });
  writer.write('{"a":1}\n');
  const called = await new Promise<string>((resolve) => writer.flush(() => resolve(read())));
  t.equal(called, '{"a":1}\n');
});

t.test('a full non-blocking pipe (EAGAIN): the writer waits for its reader and nothing is lost', async (t) => {
  const dir = scratch(t);
  const fifo = path.join(dir, 'stdout.fifo');
  await promisify(execFile)('mkfifo', [fifo]);
  // The reader opens the FIFO, sleeps while the writer fills the pipe (64 KiB), then reads it all and reports.
  const reader = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('node:fs'); const fd = fs.openSync(process.argv[1], 'r');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
       const chunks = []; const b = Buffer.alloc(65536); let n;
       while ((n = fs.readSync(fd, b)) > 0) chunks.push(Buffer.from(b.subarray(0, n)));
       const all = Buffer.concat(chunks);
       process.stdout.write(JSON.stringify({ bytes: all.length, sha256: require('node:crypto').createHash('sha256').update(all).digest('hex') }));`,
      fifo,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let report = '';
  reader.stdout.on('data', (chunk: Buffer) => (report += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => reader.once('exit', resolve));
  // Non-blocking, as Node.js leaves a pipe it was given; the open fails (ENXIO) until the reader has it open.
  let fd = -1;
  await waitFor(
    'the reader to open the FIFO',
    () => {
      try {
        fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        return true;
      } catch {
        return false;
      }
    },
    10_000,
  );
  const failures: string[] = [];
  const writer = new BatchedWriter(fd, { batchBytes: 16 * 1024, flushMs: 60_000, busyWaitMs: 5, reportFailure: (m) => failures.push(m) });
  const hash = createHash('sha256');
  let total = 0;
  for (let i = 0; i < 2_000; i++) {
    const line = `{"level":"info","uid":"${String(i).padStart(36, '0')}","msg":"admission"}\n`;
    writer.write(line);
    hash.update(line);
    total += Buffer.byteLength(line);
  }
  writer.end();
  closeSync(fd);
  t.equal(await exited, 0, 'the reader finished');
  t.ok(total > 2 * 65536, `more than the pipe holds was written (${total} bytes)`);
  t.same(JSON.parse(report), { bytes: total, sha256: hash.digest('hex') }, 'every byte arrived, in order');
  t.same(failures, [], 'no failure reported');
});

t.test('a descriptor that refuses writes: the lines are dropped, the failure told once, nothing thrown', async (t) => {
  const file = path.join(scratch(t), 'read-only');
  closeSync(openSync(file, 'w'));
  const fd = openSync(file, 'r');
  t.teardown(() => closeSync(fd));
  const failures: string[] = [];
  const writer = new BatchedWriter(fd, { batchBytes: 16, flushMs: 60_000, reportFailure: (m) => failures.push(m) });
  t.teardown(() => writer.end());
  t.doesNotThrow(() => {
    for (let i = 0; i < 10; i++) writer.write(`{"line":${i},"pad":"xxxxxxxx"}\n`);
    writer.flushSync();
  });
  t.equal(failures.length, 1, 'told once');
  t.match(failures[0], new RegExp(`cannot write log lines to file descriptor ${fd} \\(EBADF\\); lines are being dropped`));
  t.equal(readFileSync(file, 'utf8'), '');
});

t.test('the server logger writes what gathered when the process exits, whichever way it exits', async (t) => {
  const cases = [
    { name: 'process.exit()', end: 'process.exit(3)', code: 3 },
    { name: 'the event loop running dry', end: '', code: 0 },
  ];
  for (const { name, end, code } of cases) {
    const script = `import { createServerLogger } from ${JSON.stringify(path.join(ROOT, 'src/log.ts'))};
      const logger = createServerLogger('webhook');
      for (let i = 0; i < 3; i++) logger.info({ i }, 'gathered');
      ${end}`;
    // Exactly this environment: without the test runner's loader, whose coverage of the child's own transpiled
    // modules would be merged into the sources' (exact-env.ts).
    const child = spawn(...exactEnv(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { PATH: process.env.PATH }), {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exit = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    t.equal(exit, code, `${name}: exit code`);
    const lines = out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { i: number; msg: string; role: string });
    t.same(
      lines.map((l) => [l.i, l.msg, l.role]),
      [
        [0, 'gathered', 'webhook'],
        [1, 'gathered', 'webhook'],
        [2, 'gathered', 'webhook'],
      ],
      `${name}: all three lines`,
    );
  }
});
