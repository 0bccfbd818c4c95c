// Every command block a README marks with `<!-- test: run -->` (those that need no cluster), run as a user runs
// it: bash, from the root of a copy of the repository, with `akv-injector` on the PATH as the built bundle.
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t, { type Test } from 'tap';
import { parseAllDocuments } from 'yaml';
import { CERTS_FILES } from '../src/certs-command.js';
import { buildDist } from './fixtures/dist.js';
import { exactEnv } from './fixtures/exact-env.js';

const ROOT = resolve(import.meta.dirname, '..');
const MARK = '<!-- test: run -->';
// What the self-signed overlay's certs step writes, git-ignored: never copied from a working tree.
const GENERATED: readonly string[] = CERTS_FILES;

interface Block {
  file: string;
  line: number;
  script: string;
}

/** The ```sh blocks right after a marker line (blank lines between are allowed); a marker before anything else is an error. */
function markedBlocks(text: string, file: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== MARK) continue;
    let start = i + 1;
    while (lines[start]?.trim() === '') start++;
    if (!/^```(sh|bash|shell)\s*$/.test(lines[start] ?? '')) throw new Error(`${file}:${i + 1}: ${MARK} is not followed by a \`\`\`sh block`);
    const end = lines.findIndex((line, index) => index > start && /^```\s*$/.test(line));
    if (end < 0) throw new Error(`${file}:${start + 1}: the block does not end`);
    blocks.push({ file, line: start + 1, script: lines.slice(start + 1, end).join('\n') });
    i = end;
  }
  return blocks;
}

async function readmes(): Promise<string[]> {
  const found = ['README.md'];
  for (const folder of ['examples', 'manifests']) {
    for (const entry of await readdir(join(ROOT, folder), { recursive: true })) if (entry.endsWith('README.md')) found.push(join(folder, entry));
  }
  return found.sort();
}

const dir = await mkdtemp(join(tmpdir(), 'akv-readme-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const cli = await buildDist(dir);
const bin = join(dir, 'bin');
await mkdir(bin);
await writeFile(join(bin, 'akv-injector'), `#!/bin/sh\nexec '${process.execPath}' '${cli}' "$@"\n`);
await chmod(join(bin, 'akv-injector'), 0o755);

/** A copy of what the READMEs' commands read (the examples, the manifests, package.json), without generated files. */
async function workingCopy(): Promise<string> {
  const copy = await mkdtemp(join(dir, 'repo-'));
  for (const entry of ['examples', 'manifests', 'package.json']) {
    await cp(join(ROOT, entry), join(copy, entry), { recursive: true, filter: (source) => !GENERATED.some((name) => source.endsWith(`/self-signed/${name}`)) });
  }
  return copy;
}

function bash(script: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      ...exactEnv('bash', ['-e', '-o', 'pipefail', '-c', script], { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: cwd }),
      { cwd, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const files = await readmes();
const blocks = (await Promise.all(files.map(async (file) => markedBlocks(await readFile(join(ROOT, file), 'utf8'), file)))).flat();

t.test('the marked blocks cover what needs no cluster', async (t) => {
  const all = blocks.map((b) => b.script).join('\n');
  for (const command of [
    'akv-injector --help',
    'akv-injector webhook --help',
    'akv-injector fetch --help',
    'akv-injector render --help',
    'akv-injector certs --help',
  ])
    t.match(all, command, command);
  for (const example of await readdir(join(ROOT, 'examples')))
    t.match(all, new RegExp(`examples/${example}/.*\\| akv-injector render|render -f examples/${example}/`), `render of examples/${example}`);
  t.match(all, /akv-injector certs --service .* --out-dir /, 'certs');
  t.match(all, 'kubectl kustomize manifests/overlays/cert-manager', 'kustomize of an overlay');
  t.match(all, /images:\n\s+- name: ghcr\.io\/akv-injector\/akv-injector/, 'an images: override');
});

t.test('markers: only before a ```sh block', async (t) => {
  t.same(markedBlocks(`${MARK}\n\n\`\`\`sh\necho a\n\`\`\`\n`, 'x.md'), [{ file: 'x.md', line: 3, script: 'echo a' }]);
  t.throws(() => markedBlocks(`${MARK}\n\`\`\`yaml\na: 1\n\`\`\`\n`, 'x.md'), /x\.md:1: <!-- test: run --> is not followed by a ```sh block/);
});

// The blocks of one README run in order in one copy: a later step may use what an earlier one made.
for (const file of files) {
  const own = blocks.filter((b) => b.file === file);
  if (own.length === 0) continue;
  t.test(`${file}: every marked block runs`, async (t) => {
    const copy = await workingCopy();
    for (const block of own) {
      const result = await bash(block.script, copy);
      t.equal(result.code, 0, `${file}:${block.line}: exit 0\n${block.script}\n--- stderr:\n${result.stderr}`);
      checkOutcome(t, block, result.stdout, result.stderr);
    }
    t.comment(`${own.length} blocks of ${file}`);
  });
}

/** What a block's output must show beyond its exit code. */
function checkOutcome(t: Test, block: Block, stdout: string, stderr: string): void {
  const where = `${block.file}:${block.line}`;
  if (/\bakv-injector render\b/.test(block.script) && !block.script.includes('--help')) {
    const renders = block.script.split('\n').filter((line) => /\bakv-injector render\b/.test(line)).length;
    const injectedLines = stderr.split('\n').filter((line) => / injected akv-injector \(https:\/\/kv-[a-z]+\.vault\.azure\.net\//.test(line));
    t.ok(injectedLines.length >= renders, `${where}: stderr says what was injected, per render (${injectedLines.length} lines for ${renders})`);
    const docs = parseAllDocuments(stdout);
    t.same(
      docs.flatMap((d) => d.errors.map((e) => e.message)),
      [],
      `${where}: the output is valid YAML`,
    );
    t.equal(stdout.split('akv-injector.io/status: injected').length - 1, injectedLines.length, `${where}: one injected workload per line`);
  }
  if (block.script.includes('--help')) {
    const commands = block.script.split('\n').filter((line) => line.startsWith('akv-injector ')).length;
    t.equal(stdout.split(/^Usage: akv-injector/m).length - 1, commands, `${where}: one usage per command`);
  }
  if (block.script.includes('newName: myregistry.azurecr.io/akv-injector')) {
    t.equal(stdout.split('myregistry.azurecr.io/akv-injector:0.1.0').length - 1, 2, `${where}: the image and AKV_INJECTOR_IMAGE both changed`);
    t.notMatch(stdout, 'ghcr.io/akv-injector', `${where}: the old image nowhere`);
  }
  if (/akv-injector certs --service/.test(block.script)) {
    t.match(stdout, new RegExp(CERTS_FILES.map((name) => `${name.replace('.', '\\.')}\n`).join('.*')), `${where}: the files written`);
    t.match(stdout, /serving certificate for .* expires on \d{4}-\d\d-\d\d/, `${where}: and when the certificate expires`);
  }
  if (block.script.includes('kubectl kustomize manifests/overlays/self-signed')) {
    const bundles = [...stdout.matchAll(/caBundle: (\S+)/g)].map((m) => Buffer.from(m[1] ?? '', 'base64').toString());
    t.equal(bundles.length, 2, `${where}: both webhooks have a caBundle`);
    t.ok(
      bundles.every((b) => b.startsWith('-----BEGIN CERTIFICATE-----')),
      `${where}: a PEM certificate in each`,
    );
  }
}
