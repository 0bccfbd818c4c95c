#!/usr/bin/env node
// dist/cli.js, the CLI's front door: a CommonJS script, so that a fetch, a new process in every pod start, runs its own
// script (src/fetch/code-cache.ts) without starting Node's ES module loader (bench:fetch, Node 24: 5 ms of CPU less per
// fetch). Every other command, and the fetch's help, is the CLI's (cli/main.ts, dist/cli.mjs), loaded as ES modules.
import { loadFetchScript } from '../src/fetch/code-cache.js';
import { mark } from '../src/fetch/phases.js';
import { asksForHelp, finish } from './finish.js';

mark('main');
const [command, ...rest] = process.argv.slice(2);
if (command === 'fetch' && !asksForHelp(rest)) {
  // A script that cannot be read or run is reported as any unexpected error (finish.ts), not thrown past it.
  finish(
    command,
    Promise.resolve().then(() => loadFetchScript(__dirname).fetchCommand(rest)),
  );
} else {
  // The CLI runs its command as it loads; failing to load is the one failure left to report here. (A name in a
  // variable: the file is dist/cli.mjs, there at run time, not a module to bundle.)
  const cli = './cli.mjs';
  import(cli).catch((error: unknown) => finish(command, Promise.reject(error)));
}
