// The set of files published now (what `..data` points to), read back to tell whether a refresh changed anything.
import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, constants } from 'node:fs';
import path from 'node:path';
import { DATA_DIR } from '../atomic-writer.js';
import type { OutputFile } from '../object-spec.js';

/** The in-memory volume's size (webhook/inject.ts SECRETS_VOLUME_SIZE): no published set can be larger. */
export const MAX_PUBLISHED_BYTES = 16 * 1024 * 1024;
/** More entries than any object list writes (objectVersionHistory included). */
export const MAX_PUBLISHED_ENTRIES = 10_000;

export interface Published {
  /** The timestamped directory `..data` points to; undefined when nothing was published. */
  generation: string | undefined;
  /** Its files by relative path. */
  files: Map<string, OutputFile>;
}

/**
 * The current set under `outputDir`. Only regular files and directories count (the writer makes nothing else),
 * and it stops at MAX_PUBLISHED_BYTES and MAX_PUBLISHED_ENTRIES: the volume is shared with the pod's containers.
 */
export function readPublished(outputDir: string): Published {
  let generation: string;
  try {
    generation = readlinkSync(path.join(outputDir, DATA_DIR));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { generation: undefined, files: new Map() };
    throw error;
  }
  // The writer links `..data` to a sibling: anything else is not our set.
  if (generation.includes('/') || !generation.startsWith('..')) throw new Error(`${DATA_DIR} in ${outputDir} points outside the volume`);
  const files = new Map<string, OutputFile>();
  const budget = { bytes: MAX_PUBLISHED_BYTES, entries: MAX_PUBLISHED_ENTRIES };
  walk(path.join(outputDir, generation), '', files, budget);
  return { generation, files };
}

function walk(root: string, prefix: string, files: Map<string, OutputFile>, budget: { bytes: number; entries: number }): void {
  for (const name of readdirSync(path.join(root, prefix)).sort()) {
    if (--budget.entries < 0) throw new Error(`the published set has more than ${MAX_PUBLISHED_ENTRIES} entries`);
    const relative = prefix === '' ? name : `${prefix}/${name}`;
    const full = path.join(root, relative);
    const info = lstatSync(full);
    if (info.isDirectory()) walk(root, relative, files, budget);
    else if (info.isFile()) files.set(relative, readFileBounded(full, relative, budget));
  }
}

function readFileBounded(full: string, relative: string, budget: { bytes: number }): OutputFile {
  // O_NOFOLLOW: the entry was a regular file a moment ago, and must still be one.
  const fd = openSync(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const info = fstatSync(fd);
    if (info.size > budget.bytes) throw new Error(`the published set is larger than ${MAX_PUBLISHED_BYTES} bytes`);
    const data = Buffer.alloc(info.size);
    let read = 0;
    while (read < data.length) {
      const n = readSync(fd, data, read, data.length - read, read);
      if (n === 0) break;
      read += n;
    }
    budget.bytes -= read;
    return { path: relative, data: data.subarray(0, read), mode: info.mode & 0o777 };
  } finally {
    closeSync(fd);
  }
}

/** Whether `files` is exactly the published set: the same paths, bytes and modes. */
export function samePublished(published: Published, files: readonly OutputFile[]): boolean {
  if (published.generation === undefined || published.files.size !== files.length) return false;
  return files.every((file) => {
    const current = published.files.get(file.path);
    return current !== undefined && current.mode === file.mode && current.data.equals(file.data);
  });
}
