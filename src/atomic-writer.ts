// Publish a set of files into a volume atomically: readers see the whole old set or the whole new one.
//
// Layout (every name starting with `..` is reserved for the writer):
//   <outputDir>/..2024_05_01_12_00_00.Ab3xYz/   the files, in a fresh directory per publish
//   <outputDir>/..data -> ..2024_05_01_12_00_00.Ab3xYz
//   <outputDir>/<entry> -> ..data/<entry>       one symlink per top-level entry
// Switching sets is one rename(2) of a symlink over `..data`, as in the kubelet's AtomicWriter.
// Not safe for concurrent writers into the same directory.
//
// The calls are synchronous: a publish is the last step of a fetch, with nothing else for the event
// loop to do, and a synchronous call on tmpfs costs microseconds where a promise's trip through the
// thread pool costs a few hundred: for 40 files, milliseconds instead of tens of milliseconds.
import {
  chmodSync,
  closeSync,
  fchmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import type { OutputFile } from './object-spec.js';
import { formatMode } from './objects.js';

export const DATA_DIR = '..data';
const DATA_TMP = '..data_tmp';
/** Our timestamped directories (and the kubelet's): `..YYYY_MM_DD_HH_MM_SS.<random>`. */
const TIMESTAMP_DIR = /^\.\.\d{4}(?:_\d{2}){5}\.[A-Za-z0-9]+$/;
const DIR_MODE = 0o755;
const MAX_NAME_BYTES = 255;
const MAX_PATH_BYTES = 4096;

export interface PublishOptions {
  /** Clock for the timestamped directory's name (UTC). */
  now?: () => Date;
}

export interface PublishResult {
  /** Name (not path) of the timestamped directory `..data` now points to. */
  timestampDir: string;
  /** Top-level entries now visible, sorted. */
  entries: string[];
  /** Top-level entries of the previous set that are gone, sorted. */
  removed: string[];
}

/** The set cannot be published as asked; nothing was written. Lists every problem found. */
export class PublishError extends Error {
  readonly problems: readonly string[];

  constructor(outputDir: string, problems: readonly string[]) {
    super(`cannot publish files into ${outputDir}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'PublishError';
    this.problems = problems;
  }
}

/**
 * Publish `files` into `outputDir` (which must exist and is never replaced) atomically as a set,
 * replacing any set published there before. Throws `PublishError` before writing anything when a
 * path is invalid or a top-level name is taken by something this writer did not create. If writing
 * fails before the switch, the new directory is removed, the previous set stays intact and the
 * I/O error is rethrown; an error after the switch (tidying links and old directories) leaves the
 * new set published. A promise API, though the calls inside are synchronous (see the top of this file).
 */
export async function publishFiles(outputDir: string, files: readonly OutputFile[], options: PublishOptions = {}): Promise<PublishResult> {
  const pathProblems = validateOutputFiles(files);
  if (pathProblems.length > 0) throw new PublishError(outputDir, pathProblems);
  const entries = topLevelEntries(files);
  const dirProblems = inspectOutputDir(outputDir, entries);
  if (dirProblems.length > 0) throw new PublishError(outputDir, dirProblems);

  const now = options.now ?? ((): Date => new Date());
  const tsPath = mkdtempSync(path.join(outputDir, timestampPrefix(now())));
  const tsName = path.basename(tsPath);
  try {
    writeFiles(tsPath, files);
    // mkdtemp made it 0700, which kept half-written files private; readers need 0755.
    chmodSync(tsPath, DIR_MODE);
    switchDataLink(outputDir, tsName);
  } catch (err) {
    try {
      rmSync(tsPath, { recursive: true, force: true });
    } catch {
      // The original error is the one to report.
    }
    throw err;
  }

  linkEntries(outputDir, entries);
  const removed = unlinkStaleEntries(outputDir, new Set(entries));
  removeTimestampDirs(outputDir, tsName);
  return { timestampDir: tsName, entries, removed };
}

/** Every problem with the paths and modes of `files`, as user-facing sentences; empty when valid. */
export function validateOutputFiles(files: readonly OutputFile[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const duplicates = new Set<string>();
  const dirs = new Set<string>();
  for (const file of files) {
    const problem = pathProblem(file.path);
    if (problem !== undefined) {
      problems.push(`file ${quote(file.path)}: ${problem}`);
      continue;
    }
    if (!Number.isInteger(file.mode) || file.mode < 0 || file.mode > 0o777) {
      problems.push(`file ${quote(file.path)}: mode ${formatMode(file.mode)} is not a permission mode from 0 to 0777`);
    }
    if (seen.has(file.path)) duplicates.add(file.path);
    seen.add(file.path);
    for (const dir of parentDirs(file.path)) dirs.add(dir);
  }
  for (const p of duplicates) problems.push(`file ${quote(p)}: appears more than once`);
  for (const p of seen) {
    if (dirs.has(p)) problems.push(`file ${quote(p)}: is also a directory of another file`);
  }
  return problems;
}

/** A path for a message: JSON-quoted, long ones shortened. */
function quote(p: string): string {
  return JSON.stringify(p.length > 80 ? `${p.slice(0, 60)}…${p.slice(-10)}` : p);
}

function pathProblem(p: string): string | undefined {
  if (p === '') return 'path is empty';
  if (p.includes('\0')) return 'path contains a NUL character';
  if (path.posix.isAbsolute(p)) return 'path must be relative';
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) return `path is longer than ${MAX_PATH_BYTES} bytes`;
  const segments = p.split('/');
  if (segments.includes('..')) return 'path must not contain a ".." segment';
  if (segments.includes('.')) return 'path must not contain a "." segment';
  if (segments.includes('')) return 'path must not contain an empty segment (a trailing or doubled "/")';
  if (segments.some((s) => Buffer.byteLength(s) > MAX_NAME_BYTES)) return `path has a name longer than ${MAX_NAME_BYTES} bytes`;
  if (p.startsWith('..')) return 'path must not start with "..", which is reserved for the writer';
  return undefined;
}

/** `a/b/c` → `a`, `a/b`. */
function parentDirs(p: string): string[] {
  const segments = p.split('/');
  return segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join('/'));
}

function topLevelEntries(files: readonly OutputFile[]): string[] {
  const names = new Set(files.map((f) => f.path.split('/')[0] ?? f.path));
  return [...names].sort();
}

function entryTarget(entry: string): string {
  return `${DATA_DIR}/${entry}`;
}

/** What in `outputDir` would stop a publish, checked before anything is written. */
function inspectOutputDir(outputDir: string, entries: readonly string[]): string[] {
  const dir = statOrUndefined(outputDir);
  if (dir === undefined) return [`output directory ${outputDir} does not exist`];
  if (!dir.isDirectory()) return [`output directory ${outputDir} is not a directory`];

  const problems: string[] = [];
  for (const reserved of [DATA_DIR, DATA_TMP]) {
    const found = lstatOrUndefined(path.join(outputDir, reserved));
    if (found !== undefined && !found.isSymbolicLink()) {
      problems.push(`"${reserved}" exists and is not a symbolic link; remove it`);
    }
  }
  for (const entry of entries) {
    const full = path.join(outputDir, entry);
    const found = lstatOrUndefined(full);
    if (found === undefined) continue;
    if (!found.isSymbolicLink()) {
      problems.push(`"${entry}" already exists as a ${found.isDirectory() ? 'directory' : 'file'} not made by this writer; remove it or choose another alias`);
      continue;
    }
    const target = readlinkSync(full);
    if (target !== entryTarget(entry)) {
      problems.push(`"${entry}" already exists as a symbolic link to "${target}", not made by this writer; remove it or choose another alias`);
    }
  }
  return problems;
}

/** `..YYYY_MM_DD_HH_MM_SS.` in UTC; mkdtemp appends the random part. */
function timestampPrefix(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new Error('publishFiles: the clock returned an invalid Date');
  const two = (n: number): string => String(n).padStart(2, '0');
  const day = `${String(date.getUTCFullYear()).padStart(4, '0')}_${two(date.getUTCMonth() + 1)}_${two(date.getUTCDate())}`;
  return `..${day}_${two(date.getUTCHours())}_${two(date.getUTCMinutes())}_${two(date.getUTCSeconds())}.`;
}

function writeFiles(tsPath: string, files: readonly OutputFile[]): void {
  const made = new Set<string>();
  for (const file of files) {
    for (const dir of parentDirs(file.path)) {
      if (made.has(dir)) continue;
      const full = path.join(tsPath, dir);
      mkdirSync(full);
      chmodSync(full, DIR_MODE); // mkdir's mode is filtered by the umask
      made.add(dir);
    }
    writeFile(path.join(tsPath, file.path), file.data, file.mode);
  }
}

function writeFile(full: string, data: Buffer, mode: number): void {
  // Created owner-only, then chmod'ed: open's mode is filtered by the umask, chmod's is not.
  const fd = openSync(full, 'wx', 0o600);
  try {
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written, written);
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}

/** The commit point: `..data_tmp` → new dir, renamed over `..data` in one step. */
function switchDataLink(outputDir: string, tsName: string): void {
  const tmp = path.join(outputDir, DATA_TMP);
  unlinkIfPresent(tmp); // left by a run that died here; inspectOutputDir checked it is a symlink
  symlinkSync(tsName, tmp);
  try {
    renameSync(tmp, path.join(outputDir, DATA_DIR));
  } catch (err) {
    try {
      unlinkIfPresent(tmp);
    } catch {
      // The rename's error is the one to report.
    }
    throw err;
  }
}

function linkEntries(outputDir: string, entries: readonly string[]): void {
  for (const entry of entries) {
    const full = path.join(outputDir, entry);
    try {
      symlinkSync(entryTarget(entry), full);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      const target = readlinkSync(full);
      if (target !== entryTarget(entry)) throw new Error(`"${full}" appeared during publish and points to "${target}"`, { cause: err });
    }
  }
}

/** Remove our top-level symlinks whose entry is not in the new set. */
function unlinkStaleEntries(outputDir: string, keep: ReadonlySet<string>): string[] {
  const removed: string[] = [];
  for (const dirent of readdirSync(outputDir, { withFileTypes: true })) {
    const name = dirent.name;
    if (!dirent.isSymbolicLink() || name.startsWith('..') || keep.has(name)) continue;
    const full = path.join(outputDir, name);
    if (readlinkSync(full) !== entryTarget(name)) continue;
    unlinkIfPresent(full);
    removed.push(name);
  }
  return removed.sort();
}

/** Remove the previous set's directory, and any left by runs that died before tidying up. */
function removeTimestampDirs(outputDir: string, current: string): void {
  for (const name of readdirSync(outputDir)) {
    if (name === current || !TIMESTAMP_DIR.test(name)) continue;
    rmSync(path.join(outputDir, name), { recursive: true, force: true });
  }
}

// A file-system call whose target may be missing: ENOENT is undefined, any other error is thrown.
function ifPresent<T>(call: () => T): T | undefined {
  try {
    return call();
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function unlinkIfPresent(full: string): void {
  ifPresent(() => unlinkSync(full));
}

function statOrUndefined(full: string): Stats | undefined {
  return ifPresent(() => statSync(full));
}

function lstatOrUndefined(full: string): Stats | undefined {
  return ifPresent(() => lstatSync(full));
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}
