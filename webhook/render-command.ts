// `akv-injector render -f FILE`: print manifests as the webhook would mutate them (for review and GitOps).
import { readFile } from 'node:fs/promises';
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
        file: { type: 'string', short: 'f' },
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
    io.stderr(`akv-injector render: ${(error as Error).message}\n`);
    return 2;
  }
  const problems: string[] = [];
  const file = values.file as string | undefined;
  if (file === undefined) problems.push('-f FILE is required (- for stdin)');
  const { cloud, problem: cloudProblem } = cloudFromFlag(values.cloud as string | undefined);
  if (cloudProblem !== undefined) problems.push(cloudProblem);
  const namespaceAnnotations = pairs(values['namespace-annotation'], '--namespace-annotation', problems);
  const namespaceLabels = pairs(values['namespace-label'], '--namespace-label', problems);
  if (problems.length > 0 || file === undefined || cloud === undefined) {
    io.stderr(`akv-injector render: invalid flags:\n${problems.map((p) => `- ${p}`).join('\n')}\n`);
    return 2;
  }

  let text: string;
  try {
    text = file === '-' ? await io.readStdin() : await readFile(file, 'utf8');
  } catch (error) {
    io.stderr(`akv-injector render: cannot read ${file}: ${(error as Error).message}\n`);
    return 2;
  }
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
