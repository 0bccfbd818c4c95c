// The kubelet's termination message file: `kubectl describe pod` shows what a failed container wrote there.
import { open } from 'node:fs/promises';

export const TERMINATION_LOG = '/dev/termination-log';
// The kubelet keeps at most 4096 bytes of it.
const LIMIT = 4000;

/** Write `message` to the termination log if the file exists (the kubelet creates it); never create it. */
export async function writeTerminationLog(message: string, path: string = TERMINATION_LOG): Promise<boolean> {
  const bytes = Buffer.from(message, 'utf8');
  const text = bytes.length <= LIMIT ? bytes : Buffer.concat([bytes.subarray(0, LIMIT - 24), Buffer.from('\n… (see the logs)\n')]);
  try {
    const file = await open(path, 'r+');
    try {
      await file.truncate(0);
      await file.write(text, 0, text.length, 0);
    } finally {
      await file.close();
    }
    return true;
  } catch {
    return false;
  }
}

/** A command's configuration is invalid: every problem on stderr and in the termination log; the exit code, 2. */
export async function refuseConfiguration(command: string, problems: readonly string[]): Promise<number> {
  const message = `akv-injector ${command}: invalid configuration:\n${problems.map((p) => `- ${p}`).join('\n')}\n`;
  process.stderr.write(message);
  await writeTerminationLog(message);
  return 2;
}
