// The measurement scripts' child processes: each script runs its own file again as a child, on BENCH_NODE (default:
// this Node.js), and takes the one figure the child sends back.
import { fork } from 'node:child_process';

export interface ChildOptions {
  /** Run with the image's young generation (Dockerfile: NODE_OPTIONS=--max-semi-space-size=1), as the fetch runs. */
  imageHeap?: boolean;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Give the child a stdout of its own: a pipe this process drains, as a container runtime drains a container's. */
  pipeStdout?: boolean;
}

/** Fork `script` with `args` (tsx's loader comes through execArgv) and resolve with the first message it sends. */
export function childFigure<T>(script: string, args: string[], options: ChildOptions = {}): Promise<T> {
  const proc = fork(script, args, {
    execPath: process.env.BENCH_NODE ?? process.execPath,
    execArgv: options.imageHeap ? [...process.execArgv, '--max-semi-space-size=1'] : process.execArgv,
    ...(options.env ? { env: options.env } : {}),
    ...(options.pipeStdout ? { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] } : {}),
  });
  proc.stdout?.resume();
  return new Promise((resolve, reject) => {
    proc.once('message', (message) => {
      resolve(message as T);
      // A child that stays for its IPC channel ends with it; one that exits on its own may be gone already.
      if (proc.connected) proc.disconnect();
    });
    proc.once('exit', (code) => reject(new Error(`the child (${args.join(' ')}) exited (${code}) without a figure`)));
  });
}
