// A long-running server's log destination: lines gathered as UTF-8 bytes in one buffer and written to a file
// descriptor in batches, synchronously, so a line per request costs neither a system call of its own nor a string
// of its own. pino's default destination (sonic-boom) gathers lines by concatenating strings and measures the
// whole gathered string again at every line (Buffer.byteLength), which flattens it: ~2.3 KB of garbage and ~2.3 µs
// of CPU per admission line more than this (scripts/measure-log-line.ts, Node 24).
import { writeSync } from 'node:fs';

export interface BatchedWriterOptions {
  /** Write once this many bytes have gathered. */
  batchBytes: number;
  /** Write what has gathered at least this often (ms), so a quiet server's lines still show. */
  flushMs: number;
  /** Where a failure to write is reported, once (default stderr); the lines themselves are dropped. */
  reportFailure?: (message: string) => void;
  /** Wait this long (ms) before trying again when the descriptor is not ready (EAGAIN: a pipe that is full). */
  busyWaitMs?: number;
}

// UTF-8 takes at most 3 bytes per UTF-16 code unit (a surrogate pair, 2 units, takes 4).
const MAX_UTF8_BYTES_PER_UNIT = 3;

// Writers whose lines are still in memory when the process exits.
const open = new Set<BatchedWriter>();
let exitHook = false;

/** pino's destination interface: `write(line)` and `flush(callback)`. */
export class BatchedWriter {
  private readonly buffer: Buffer;
  private length = 0;
  private failed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    private readonly fd: number,
    private readonly options: BatchedWriterOptions,
  ) {
    // Room for a whole batch and the line that completes it: a longer line is written on its own.
    this.buffer = Buffer.allocUnsafe(2 * options.batchBytes);
    this.timer = setInterval(() => this.flushSync(), options.flushMs).unref();
    open.add(this);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const writer of open) writer.flushSync();
      });
    }
  }

  write(line: string): boolean {
    const most = line.length * MAX_UTF8_BYTES_PER_UNIT;
    if (most > this.buffer.length - this.length) {
      this.flushSync();
      if (most > this.buffer.length) {
        this.writeAll(Buffer.from(line, 'utf8'));
        return true;
      }
    }
    this.length += this.buffer.write(line, this.length, 'utf8');
    if (this.length >= this.options.batchBytes) this.flushSync();
    return true;
  }

  /** Write what has gathered now. */
  flushSync(): void {
    if (this.length === 0) return;
    const batch = this.buffer.subarray(0, this.length);
    this.length = 0;
    this.writeAll(batch);
  }

  /** pino's `logger.flush(callback)`. */
  flush(callback?: (error?: Error) => void): void {
    this.flushSync();
    callback?.();
  }

  /** Write what has gathered and stop: no more periodic writes. */
  end(): void {
    this.flushSync();
    clearInterval(this.timer);
    open.delete(this);
  }

  private writeAll(bytes: Uint8Array): void {
    let offset = 0;
    while (offset < bytes.length) {
      try {
        offset += writeSync(this.fd, bytes, offset, bytes.length - offset);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') {
          // A non-blocking pipe that is full: wait for its reader, as a blocking write would.
          Atomics.wait(this.sleeper, 0, 0, this.options.busyWaitMs ?? 10);
          continue;
        }
        this.fail(code);
        return;
      }
    }
  }

  // A log line is not worth an admission: the batch is dropped and the server goes on; the first failure is told.
  private fail(code: string | undefined): void {
    if (this.failed) return;
    this.failed = true;
    const report = this.options.reportFailure ?? ((message: string) => void process.stderr.write(message));
    report(`akv-injector: cannot write log lines to file descriptor ${this.fd} (${code ?? 'unknown error'}); lines are being dropped until it can\n`);
  }
}
