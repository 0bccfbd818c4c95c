// Structured JSON logs (pino). Callers log names, types, versions, sizes and timings, never values or tokens.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** A JSON-lines logger for a role; `destination` defaults to stdout, written synchronously so nothing is lost at exit. */
export function createLogger(role: string, destination?: DestinationStream, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { role },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
