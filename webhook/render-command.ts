// `akv-injector render -f FILE|DIR|- ...`: print manifests as the webhook would mutate them (for review and GitOps).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cloudFromFlag } from '../src/clouds.js';
import { IMAGE } from '../src/version.js';
import { WORKLOAD_IDENTITY } from './names.js';
import { renderManifests, type RenderOptions } from './render.js';

export interface RenderIo {
  readStdin: () => Promise<string>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export async function renderCommand(args: string[], io: RenderIo): Promise<number> {
  let values: Record<string, string | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        file: { type: 'string', short: 'f', multiple: true },
        namespace: { type: 'string', short: 'n' },
        image: { type: 'string' },
        'windows-image': { type: 'string' },
        'tenant-id': { type: 'string' },
        'client-id': { type: 'string' },
        cloud: { type: 'string' },
        'namespace-annotation': { type: 'string', multiple: true },
        'namespace-label': { type: 'string', multiple: true },
      },
      strict: true,
    }));
  } catch (error) {
    io.stderr(`akv-injector render: ${(error as Error).message}\nRun "akv-injector render --help" for the flags.\n`);
    return 2;
  }
  const problems: string[] = [];
  const files = (values.file as string[] | undefined) ?? [];
  if (files.length === 0) problems.push('-f FILE is required (- for stdin, or a folder)');
  const { cloud, problem: cloudProblem } = cloudFromFlag(values.cloud as string | undefined);
  if (cloudProblem !== undefined) problems.push(cloudProblem);
  const namespaceAnnotations = pairs(values['namespace-annotation'], '--namespace-annotation', problems);
  const namespaceLabels = pairs(values['namespace-label'], '--namespace-label', problems);
  if (problems.length > 0 || cloud === undefined) {
    io.stderr(`akv-injector render: invalid flags:\n${problems.map((p) => `- ${p}`).join('\n')}\nRun "akv-injector render --help" for the flags.\n`);
    return 2;
  }

  const read = await readInputs(files, io);
  if (typeof read === 'string') {
    io.stderr(`akv-injector render: ${read}\n`);
    return 2;
  }
  const text = read.join('');
  const file = files.join(', ');
  const clientId = values['client-id'] as string | undefined;
  const tenantId = values['tenant-id'] as string | undefined;
  const options: RenderOptions = {
    settings: {
      image: (values.image as string | undefined) ?? IMAGE,
      ...(values['windows-image'] ? { windowsImage: values['windows-image'] as string } : {}),
      ...(tenantId ? { tenantId } : {}),
      cloud,
      namespace: 'akv-injector',
    },
    namespace: (values.namespace as string | undefined) ?? 'default',
    namespaceAnnotations,
    namespaceLabels,
    serviceAccountAnnotations: clientId ? { [WORKLOAD_IDENTITY.clientId]: clientId } : {},
  };
  try {
    const result = await renderManifests(text, options);
    for (const warning of result.warnings) io.stderr(`warning: ${warning}\n`);
    for (const line of result.summary) io.stderr(`${line}\n`);
    if (result.problems.length > 0) {
      io.stderr(
        `akv-injector render: ${result.problems.length} ${result.problems.length === 1 ? 'workload is' : 'workloads are'} not valid for injection:\n${result.problems.join('\n')}\n`,
      );
      return 1;
    }
    io.stdout(result.output);
    return 0;
  } catch (error) {
    io.stderr(`akv-injector render: ${file === '-' ? 'stdin' : file}: ${(error as Error).message}\n`);
    return 1;
  }
}

/**
 * The texts of the inputs, in order: stdin for `-`, a folder's *.yaml and *.yml files in name order; each after
 * the first starts a document of its own, so files without `---` do not run into each other.
 * A message naming the input when one cannot be read.
 */
async function readInputs(inputs: string[], io: RenderIo): Promise<string[] | string> {
  const texts: string[] = [];
  for (const input of inputs) {
    const paths = input === '-' ? ['-'] : await expand(input);
    if (typeof paths === 'string') return paths;
    for (const path of paths) {
      let text: string;
      try {
        text = path === '-' ? await io.readStdin() : await readFile(path, 'utf8');
      } catch (error) {
        return `cannot read ${path}: ${(error as Error).message}`;
      }
      // A stream of one input stays byte for byte; the next input starts on a line and a document of its own.
      const last = texts.length - 1;
      if (last >= 0 && !(texts[last] as string).endsWith('\n') && texts[last] !== '') texts[last] += '\n';
      if (last >= 0 && text.trim() !== '' && !/^---(\s|$)/.test(firstContentLine(text))) text = `---\n${text}`;
      texts.push(text);
    }
  }
  return texts;
}

/** A file is itself; a folder is its *.yaml and *.yml files in name order. A message when it is neither. */
async function expand(input: string): Promise<string[] | string> {
  let info;
  try {
    info = await stat(input);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `cannot read ${input}: no such file or folder` : `cannot read ${input}: ${(error as Error).message}`;
  }
  if (!info.isDirectory()) return [input];
  const names = (await readdir(input)).filter((name) => /\.ya?ml$/.test(name)).sort();
  if (names.length === 0) return `cannot read ${input}: the folder has no *.yaml or *.yml file`;
  return names.map((name) => join(input, name));
}

/** The first line that is not blank, a comment or a directive: where a document marker would be. */
function firstContentLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '' && !line.startsWith('#') && !line.startsWith('%')) ?? '';
}

function pairs(list: string | string[] | undefined, flag: string, problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of [list ?? []].flat()) {
    const at = item.indexOf('=');
    if (at <= 0) {
      problems.push(`${flag} ${JSON.stringify(item)} must be KEY=VALUE`);
      continue;
    }
    out[item.slice(0, at)] = item.slice(at + 1);
  }
  return out;
}
