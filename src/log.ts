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
 * A logger for a long-running server: stdout written asynchronously in batches, so a line per request
 * costs no system call of its own. Call `flush()` before exiting.
 */
export function createServerLogger(role: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(options(role, level), pino.destination({ dest: 1, sync: false, minLength: 4096 }));
}
