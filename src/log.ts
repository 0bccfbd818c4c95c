// Structured JSON logs (pino). Callers log names, types, versions, sizes and timings, never values or tokens.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

const options = (role: string, level: string): pino.LoggerOptions => ({
  level,
  base: { role },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
});

/**
 * A JSON-lines logger for a short-lived role; `destination` defaults to stdout, written synchronously
 * so nothing is lost at exit.
 */
export function createLogger(role: string, destination?: DestinationStream, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(options(role, level), destination ?? pino.destination({ dest: 1, sync: true }));
}

/**
 * A logger for a long-running server: stdout written in batches of 4 KiB, or of what a second gathered, so a line per
 * request costs no system call of its own and a quiet server's lines still show within a second. Each batch is
 * written synchronously, as pino's default destination writes: an asynchronous write goes through libuv's thread
 * pool, which cost ~11 µs of CPU per admission line against ~6 (to a pipe, Node 24; scripts/measure-log-line.ts).
 * Like any synchronous writer it waits when stdout stops draining; the container runtime drains it. Call `flush()`
 * before exiting.
 */
export function createServerLogger(role: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(options(role, level), pino.destination({ dest: 1, sync: true, minLength: 4096, periodicFlush: 1000 }));
}
