// publishFiles: the kubelet-style atomic layout, exact bytes and modes, updates, refusals and failures.
import t from 'tap';
import { lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DATA_DIR, PublishError, publishFiles } from '../src/atomic-writer.js';
import type { OutputFile } from '../src/object-spec.js';
import { listTopLevel, readVisible, type SeenFile } from './fixtures/atomic-writer-tree.js';

const TS_DIR = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[A-Za-z0-9]{6}$/;
const fixedClock = (): Date => new Date(Date.UTC(2024, 1, 29, 23, 59, 58, 123));

function file(p: string, data: string | Buffer, mode = 0o644): OutputFile {
  return { path: p, data: typeof data === 'string' ? Buffer.from(data) : data, mode };
}

/** What readVisible should report for `files`. */
function expected(files: readonly OutputFile[]): Record<string, SeenFile> {
  return Object.fromEntries(files.map((f) => [f.path, { data: f.data.toString('latin1'), mode: f.mode }]));
}

/** The `..` timestamp directories in `dir`. */
async function timestampDirs(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('..') && n !== DATA_DIR).sort();
}

async function publishError(promise: Promise<unknown>): Promise<PublishError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof PublishError) return err;
    throw err;
  }
  throw new Error('expected publishFiles to throw a PublishError');
}

const setA: OutputFile[] = [
  file('username', 'admin'),
  file('certs/tls.crt', '-----BEGIN CERTIFICATE-----\nA\n', 0o440),
  file('certs/tls.key', '-----BEGIN PRIVATE KEY-----\nA\n', 0o400),
  file('bin/run.sh', '#!/bin/sh\necho a\n', 0o755),
  file('token', Buffer.from([0, 1, 2, 255, 254, 0x0a, 0x0d, 0]), 0o600),
  file('only-in-a', 'a'),
  file('shape', 'a file in A, a directory in B'),
];

const setB: OutputFile[] = [
  file('username', 'root'),
  file('certs/tls.crt', '-----BEGIN CERTIFICATE-----\nB\n', 0o444),
  file('certs/deep/chain/ca.crt', 'B chain'),
  file('only-in-b', 'b', 0o600),
  file('shape/inner', 'now a directory'),
];

t.test('first publish into an empty directory: layout, bytes and modes', async (t) => {
  const dir = t.testdir();
  const result = await publishFiles(dir, setA, { now: fixedClock });

  t.match(result.timestampDir, /^\.\.2024_02_29_23_59_58\.[A-Za-z0-9]{6}$/);
  t.same(result.entries, ['bin', 'certs', 'only-in-a', 'shape', 'token', 'username']);
  t.same(result.removed, []);
  t.same(await listTopLevel(dir), [
    `${result.timestampDir}/`,
    `..data -> ${result.timestampDir}`,
    'bin -> ..data/bin',
    'certs -> ..data/certs',
    'only-in-a -> ..data/only-in-a',
    'shape -> ..data/shape',
    'token -> ..data/token',
    'username -> ..data/username',
  ]);
  t.same(await readVisible(dir), expected(setA));
  t.equal((await stat(path.join(dir, result.timestampDir))).mode & 0o7777, 0o755, 'timestamp dir is 0755');
  t.equal((await lstat(path.join(dir, result.timestampDir, 'certs'))).mode & 0o7777, 0o755, 'subdirectory is 0755');
});

t.test('modes are exact whatever the umask', async (t) => {
  const previous = process.umask(0o077);
  t.teardown(() => {
    process.umask(previous);
  });
  const modes = [0o400, 0o440, 0o444, 0o600, 0o640, 0o644, 0o755, 0o777, 0o000];
  const files = modes.map((mode) => file(`nested/mode-${mode.toString(8)}`, `mode ${mode.toString(8)}`, mode));
  const dir = t.testdir();
  const { timestampDir } = await publishFiles(dir, files);
  t.match(timestampDir, TS_DIR);

  for (const f of files) {
    const info = await lstat(path.join(dir, timestampDir, f.path));
    t.equal(info.mode & 0o7777, f.mode, `${f.path} has mode 0${f.mode.toString(8)}`);
    t.equal((await readFile(path.join(dir, f.path))).toString(), f.data.toString(), `${f.path} reads back`);
  }
  t.equal((await stat(path.join(dir, timestampDir))).mode & 0o7777, 0o755, 'timestamp dir is 0755 under umask 077');
  t.equal((await stat(path.join(dir, timestampDir, 'nested'))).mode & 0o7777, 0o755, 'subdirectory is 0755 under umask 077');
});

t.test('a second publish replaces the set and tidies the old one', async (t) => {
  const dir = t.testdir();
  const first = await publishFiles(dir, setA);
  const second = await publishFiles(dir, setB);

  t.not(second.timestampDir, first.timestampDir);
  t.same(second.entries, ['certs', 'only-in-b', 'shape', 'username']);
  t.same(second.removed, ['bin', 'only-in-a', 'token']);
  t.same(await listTopLevel(dir), [
    `${second.timestampDir}/`,
    `..data -> ${second.timestampDir}`,
    'certs -> ..data/certs',
    'only-in-b -> ..data/only-in-b',
    'shape -> ..data/shape',
    'username -> ..data/username',
  ]);
  t.same(await readVisible(dir), expected(setB), 'certs/tls.key is gone, shape is now a directory');

  const third = await publishFiles(dir, setA);
  t.same(third.removed, ['only-in-b']);
  t.same(await readVisible(dir), expected(setA), 'and back again');
  t.same(await timestampDirs(dir), [third.timestampDir]);
});

t.test('an empty set removes every entry', async (t) => {
  const dir = t.testdir();
  await publishFiles(dir, setA);
  const result = await publishFiles(dir, []);
  t.same(result.entries, []);
  t.same(result.removed, ['bin', 'certs', 'only-in-a', 'shape', 'token', 'username']);
  t.same(await listTopLevel(dir), [`${result.timestampDir}/`, `..data -> ${result.timestampDir}`]);
});

t.test('publishes within the same clock second get distinct directories', async (t) => {
  const dir = t.testdir();
  const names = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const { timestampDir } = await publishFiles(dir, [file('n', String(i))], { now: fixedClock });
    names.add(timestampDir);
    t.equal(await readFile(path.join(dir, 'n'), 'utf8'), String(i));
  }
  t.equal(names.size, 5);
  t.equal((await timestampDirs(dir)).length, 1);
});

t.test('entries that are not ours are left alone', async (t) => {
  const dir = t.testdir({ 'lost+found': {}, 'notes.txt': 'mine' });
  await symlink('/etc/hostname', path.join(dir, 'elsewhere'));
  await publishFiles(dir, setA);
  await publishFiles(dir, setB);
  const top = await listTopLevel(dir);
  t.ok(top.includes('lost+found/'));
  t.ok(top.includes('notes.txt'));
  t.ok(top.includes('elsewhere -> /etc/hostname'));
  t.equal(await readFile(path.join(dir, 'notes.txt'), 'utf8'), 'mine');
});

t.test('leftovers of a run that died midway are cleaned up', async (t) => {
  const orphan = '..2020_01_01_00_00_00.dead01';
  const dir = t.testdir({ [orphan]: { secret: 'half-written' } });
  await symlink(orphan, path.join(dir, '..data_tmp'));
  const result = await publishFiles(dir, setA);
  t.same(await timestampDirs(dir), [result.timestampDir], 'orphan directory and ..data_tmp are gone');
  t.same(await readVisible(dir), expected(setA));
});

t.test('invalid paths are refused, every problem listed, nothing written', async (t) => {
  const cases: { name: string; files: OutputFile[]; problems: RegExp[] }[] = [
    { name: 'absolute', files: [file('/etc/passwd', 'x')], problems: [/"\/etc\/passwd": path must be relative/] },
    { name: 'parent', files: [file('..', 'x')], problems: [/"\.\.": path must not contain a "\.\." segment/] },
    { name: 'escapes upward', files: [file('../x', 'x')], problems: [/"\.\.\/x": path must not contain a "\.\." segment/] },
    { name: 'dot-dot inside', files: [file('a/../b', 'x')], problems: [/"a\/\.\.\/b": path must not contain a "\.\." segment/] },
    { name: 'our data link', files: [file('..data', 'x')], problems: [/"\.\.data": path must not start with "\.\."/] },
    { name: 'inside our data link', files: [file('..data/x', 'x')], problems: [/"\.\.data\/x": path must not start with "\.\."/] },
    { name: 'reserved prefix', files: [file('..2024_01_01_00_00_00.abcdef', 'x')], problems: [/must not start with "\.\."/] },
    { name: 'empty', files: [file('', 'x')], problems: [/"": path is empty/] },
    { name: 'trailing slash', files: [file('a/', 'x')], problems: [/"a\/": path must not contain an empty segment/] },
    { name: 'double slash', files: [file('a//b', 'x')], problems: [/"a\/\/b": path must not contain an empty segment/] },
    { name: 'dot', files: [file('.', 'x')], problems: [/"\.": path must not contain a "\." segment/] },
    { name: 'dot inside', files: [file('a/./b', 'x')], problems: [/"a\/\.\/b": path must not contain a "\." segment/] },
    { name: 'NUL', files: [file('a\0b', 'x')], problems: [/path contains a NUL character/] },
    { name: 'name too long', files: [file(`a/${'n'.repeat(256)}`, 'x')], problems: [/name longer than 255 bytes/] },
    { name: 'path too long', files: [file(Array(20).fill('p'.repeat(250)).join('/'), 'x')], problems: [/longer than 4096 bytes/] },
    { name: 'duplicate', files: [file('a', 'x'), file('b', 'y'), file('a', 'z')], problems: [/"a": appears more than once/] },
    { name: 'file and directory', files: [file('a', 'x'), file('a/b/c', 'y')], problems: [/"a": is also a directory of another file/] },
    { name: 'nested file and directory', files: [file('a/b/c', 'y'), file('a/b', 'x')], problems: [/"a\/b": is also a directory/] },
    { name: 'bad mode', files: [file('a', 'x', 0o4755)], problems: [/"a": mode 04755 is not a permission mode/] },
    {
      name: 'several at once',
      files: [file('ok', 'fine'), file('/abs', 'x'), file('a/../b', 'x'), file('dup', 'x'), file('dup', 'y')],
      problems: [/"\/abs"/, /"a\/\.\.\/b"/, /"dup": appears more than once/],
    },
  ];
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const dir = t.testdir();
      const before = await publishFiles(dir, setA);
      const err = await publishError(publishFiles(dir, c.files));
      t.equal(err.problems.length, c.problems.length, 'problem count');
      c.problems.forEach((p, i) => t.match(err.problems[i], p));
      t.match(err.message, /^cannot publish files into /);
      t.same(await timestampDirs(dir), [before.timestampDir], 'no new timestamp directory');
      t.equal(await readlink(path.join(dir, DATA_DIR)), before.timestampDir);
      t.same(await readVisible(dir), expected(setA), 'previous set intact');
    });
  }
  t.test('valid edge cases are accepted', async (t) => {
    const dir = t.testdir();
    const files = [file('a/..b', 'x'), file('.hidden', 'y'), file('a/b..', 'z'), file('é', 'w'), file('empty', '')];
    await publishFiles(dir, files);
    t.same(await readVisible(dir), expected(files));
  });
});

t.test('names already taken in the output directory are refused before writing', async (t) => {
  const cases: {
    name: string;
    prepare: (dir: string) => Promise<void>;
    problem: RegExp;
  }[] = [
    { name: 'regular file', prepare: (dir) => writeFile(path.join(dir, 'username'), 'theirs'), problem: /"username" already exists as a file/ },
    { name: 'directory', prepare: (dir) => mkdir(path.join(dir, 'certs')), problem: /"certs" already exists as a directory/ },
    {
      name: 'foreign symlink',
      prepare: (dir) => symlink('/etc', path.join(dir, 'certs')),
      problem: /"certs" already exists as a symbolic link to "\/etc"/,
    },
    { name: '..data is a directory', prepare: (dir) => mkdir(path.join(dir, '..data')), problem: /"\.\.data" exists and is not a symbolic link/ },
    {
      name: '..data_tmp is a file',
      prepare: (dir) => writeFile(path.join(dir, '..data_tmp'), ''),
      problem: /"\.\.data_tmp" exists and is not a symbolic link/,
    },
  ];
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const dir = t.testdir();
      await c.prepare(dir);
      const before = await listTopLevel(dir);
      const err = await publishError(publishFiles(dir, setA));
      t.equal(err.problems.length, 1, 'one problem');
      t.match(err.problems[0], c.problem);
      t.same(await listTopLevel(dir), before, 'nothing written');
    });
  }
  t.test('output directory missing', async (t) => {
    const dir = path.join(t.testdir(), 'missing');
    const err = await publishError(publishFiles(dir, setA));
    t.match(err.problems[0], /does not exist/);
  });
  t.test('output directory is a file', async (t) => {
    const dir = path.join(t.testdir({ plain: 'x' }), 'plain');
    const err = await publishError(publishFiles(dir, setA));
    t.match(err.problems[0], /is not a directory/);
  });
});

t.test('a failure while writing leaves the previous set intact', async (t) => {
  // Valid relative paths, but under the output directory the absolute path passes PATH_MAX (4096):
  // the kernel refuses with ENAMETOOLONG after earlier files were already written.
  const deep = `${Array(15).fill('d'.repeat(255)).join('/')}/${'f'.repeat(255)}`;
  t.equal(Buffer.byteLength(deep), 4095, 'the relative path itself is valid');
  const dir = t.testdir();
  const before = await publishFiles(dir, setA);
  const top = await listTopLevel(dir);

  await t.rejects(publishFiles(dir, [file('written-first', 'x'), file('certs/tls.crt', 'new'), file(deep, 'x')]), { code: 'ENAMETOOLONG' });
  t.same(await listTopLevel(dir), top, 'same entries, same ..data target, no stray directories or ..data_tmp');
  t.same(await timestampDirs(dir), [before.timestampDir]);
  t.same(await readVisible(dir), expected(setA), 'previous contents and modes intact');

  const after = await publishFiles(dir, setB);
  t.same(await readVisible(dir), expected(setB), 'the directory is still usable');
  t.same(await timestampDirs(dir), [after.timestampDir]);
});

t.test('a concurrent reader only ever sees complete sets', async (t) => {
  const dir = t.testdir();
  const size = 256 * 1024;
  const atLeast = 200;
  // Version v (a byte: they cycle through 1–255): `big` is `size` bytes of v; `certs/tls.crt` says v. A partial or
  // in-place write shows as a short or mixed `big`; a mix of sets shows as two versions in one timestamp dir.
  const setOf = (v: number): OutputFile[] => [file('big', Buffer.alloc(size, v)), file('certs/tls.crt', `version ${v}\n`, 0o440)];
  await publishFiles(dir, setOf(0));

  // Shared with the reader: [stop, reads through the link, pinned set reads, distinct versions seen].
  const shared = new Int32Array(new SharedArrayBuffer(4 * 4));
  const worker = new Worker(READER, { eval: true, workerData: { dir, size, shared: shared.buffer } });
  const report = new Promise<ReaderReport>((resolve, reject) => {
    worker.on('message', (m: ReaderReport | 'ready') => {
      if (m !== 'ready') resolve(m);
    });
    worker.on('error', reject);
  });
  await new Promise<void>((resolve) => worker.once('message', () => resolve()));

  // Publishing goes on until the reader has read both ways and seen the set change while it was being replaced,
  // however the two threads happen to be scheduled: the check needs reads during publishing, not a lucky clock.
  const readDuringPublishing = (): boolean => Atomics.load(shared, 1) > 0 && Atomics.load(shared, 2) > 0 && Atomics.load(shared, 3) > 1;
  const started = Date.now();
  let published = 0;
  while (published < atLeast || !readDuringPublishing()) {
    if (Date.now() - started > 60_000) break;
    await publishFiles(dir, setOf((published % 255) + 1));
    published += 1;
  }
  const last = ((published - 1) % 255) + 1;
  t.ok(readDuringPublishing(), `the reader read during ${published} publishes`);
  Atomics.store(shared, 0, 1);
  const r = await report;
  await worker.terminate();

  t.comment(
    `${published} publishes in ${Date.now() - started} ms; reader: ${r.reads} reads through the visible link, ` +
      `${r.pinnedReads} pinned set reads, ${r.versionsSeen} versions seen, ENOENT ${r.missing.visible} visible / ${r.missing.pinned} pinned`,
  );
  t.same(r.bad, [], 'no partial file, no mixed set');
  t.same(await readVisible(dir), expected(setOf(last)));
  t.equal((await timestampDirs(dir)).length, 1);
});

interface ReaderReport {
  reads: number;
  pinnedReads: number;
  missing: { visible: number; pinned: number };
  versionsSeen: number;
  bad: string[];
}

// Plain CommonJS so the worker needs no loader. Reads `big` through the visible symlink, and
// both files of one set through a single readlink of ..data (what a set-consistent reader does).
// ENOENT is allowed and counted: a path resolved to the old directory just as it is removed.
const READER = `
const { readFileSync, readlinkSync } = require('node:fs');
const { join } = require('node:path');
const { workerData, parentPort } = require('node:worker_threads');
const { dir, size } = workerData;
const shared = new Int32Array(workerData.shared);
const report = { reads: 0, pinnedReads: 0, missing: { visible: 0, pinned: 0 }, versionsSeen: 0, bad: [] };
const seen = new Set();
function saw(v) {
  if (v !== -1) seen.add(v);
  Atomics.store(shared, 3, seen.size);
}
function versionOfBig(buf, where) {
  if (buf.length !== size) { report.bad.push(where + ': big has ' + buf.length + ' bytes'); return -1; }
  const v = buf[0];
  if (!buf.equals(Buffer.alloc(size, v))) { report.bad.push(where + ': big mixes versions'); return -1; }
  return v;
}
function tolerate(kind, fn) {
  try { fn(); } catch (err) { if (err.code === 'ENOENT') report.missing[kind]++; else throw err; }
}
parentPort.postMessage('ready');
while (Atomics.load(shared, 0) === 0) {
  tolerate('visible', () => {
    saw(versionOfBig(readFileSync(join(dir, 'big')), 'visible'));
    Atomics.store(shared, 1, ++report.reads);
  });
  tolerate('pinned', () => {
    const base = join(dir, readlinkSync(join(dir, '..data')));
    const bigBytes = readFileSync(join(base, 'big'));
    const crt = readFileSync(join(base, 'certs/tls.crt'), 'utf8');
    const big = versionOfBig(bigBytes, 'pinned');
    if (crt !== 'version ' + big + '\\n') report.bad.push('pinned: big is ' + big + ' but tls.crt says ' + JSON.stringify(crt));
    saw(big);
    Atomics.store(shared, 2, ++report.pinnedReads);
  });
}
report.versionsSeen = seen.size;
parentPort.postMessage(report);
`;
