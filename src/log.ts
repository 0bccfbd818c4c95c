// Structured JSON logs (pino). Callers log names, types, versions, sizes and timings, never values or tokens.
import { pino, type Logger, type DestinationStream } from 'pino';
import { BatchedWriter } from './batched-writer.js';

export type { Logger };

const options = (role: string, level: string): pino.LoggerOptions => ({
  level,
  base: { role },
  timestamp: isoTime,
  formatters: { level: (label) => ({ level: label }) },
});

let second = Number.NaN;
let secondText = '';

/**
 * pino's isoTime (`,"time":"2026-11-30T14:10:11.123Z"`), its date and time of day written once a second: formatting
 * a Date is most of what a line costs pino (~1.5 µs of ~5, bench:webhook's profile).
 */
export function isoTime(now: number = Date.now()): string {
  const ms = now - Math.floor(now / 1000) * 1000;
  if (now - ms !== second) {
    second = now - ms;
    // Up to the milliseconds: "2026-11-30T14:10:11."
    secondText = `,"time":"${new Date(second).toISOString().slice(0, -4)}`;
  }
  return `${secondText}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
}

/**
 * A JSON-lines logger for a short-lived role; `destination` defaults to stdout, written synchronously
 * so nothing is lost at exit.
 */
export function createLogger(role: string, destination?: DestinationStream, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(options(role, level), destination ?? pino.destination({ dest: 1, sync: true }));
}

/** The server logger's batches: 16 KiB (~45 admission lines; one write(2) each), or what a second gathered. */
export const SERVER_LOG_BATCH = { batchBytes: 16 * 1024, flushMs: 1000 } as const;

/**
 * A logger for a long-running server: stdout written in batches (SERVER_LOG_BATCH), so a line per request costs no
 * system call of its own and a quiet server's lines still show within a second. Each batch is written synchronously,
 * as pino's default destination writes (an asynchronous write goes through libuv's thread pool: ~11 µs of CPU per
 * admission line against ~6), from one buffer of bytes (batched-writer.ts; pino's default gathers strings: 6.0 µs and
 * 5.8 KB per line against 3.7 µs and 3.5 KB, scripts/measure-log-line.ts). Like any synchronous writer it waits when
 * stdout stops draining; the container runtime drains it. What has gathered is written at exit, or by `flush()`.
 */
export function createServerLogger(role: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(options(role, level), new BatchedWriter(1, SERVER_LOG_BATCH));
}
