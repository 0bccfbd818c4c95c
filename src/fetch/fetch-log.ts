// The fetch's logger: pino's JSON lines (level label, ISO time, role, fields, msg), written to stdout synchronously
// one line per write, without pino. Loading pino costs the short-lived fetch ~35 ms of CPU at each start-up.
import { writeSync } from 'node:fs';

export type LevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
type LogFn = (fields: object, msg: string) => void;

/** What the fetch logs through; a pino Logger is one too (the tests pass either). */
export interface FetchLogger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  isLevelEnabled(level: LevelName): boolean;
}

const LEVELS: Record<LevelName, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** Where lines go: a function of the whole line (newline included). */
export type LineSink = (line: string) => void;

/**
 * A logger for `role` at `level` (default LOG_LEVEL, else info; an unknown name means info). Fields are the
 * caller's (names, types, sizes, timings: never values or tokens); `role`, `level`, `time` and `msg` are the logger's.
 */
export function createFetchLogger(role: string, sink: LineSink = writeStdout, level: string = process.env.LOG_LEVEL ?? 'info'): FetchLogger {
  const threshold = Object.hasOwn(LEVELS, level) ? LEVELS[level as LevelName] : LEVELS.info;
  const at =
    (label: LevelName): LogFn =>
    (fields, msg) => {
      if (LEVELS[label] < threshold) return;
      // The logger's keys come first and `msg` last, as pino writes them; a field cannot replace them.
      const head = JSON.stringify({ level: label, time: new Date().toISOString(), role });
      const body = JSON.stringify({ ...fields, level: undefined, time: undefined, role: undefined, msg });
      sink(`${head.slice(0, -1)},${body.slice(1)}\n`);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    isLevelEnabled: (label) => LEVELS[label] >= threshold,
  };
}

// A full pipe answers EAGAIN: wait a millisecond and write the rest, so no line is lost or torn.
function writeStdout(line: string): void {
  let rest = Buffer.from(line);
  while (rest.length > 0) {
    try {
      rest = rest.subarray(writeSync(1, rest));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}
