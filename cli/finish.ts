// How the CLI's process ends, whichever door a command came in by (cli/launch.ts, cli/main.ts).

/** True when the arguments ask for help (before a `--`, which ends the flags). */
export function asksForHelp(args: string[]): boolean {
  const flags = args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
  return flags.includes('--help') || flags.includes('-h');
}

/**
 * Set the exit code from `outcome`: 70 with the error's kind and frames when it rejects. A fetch and a refresh then
 * exit at once.
 */
export function finish(command: string | undefined, outcome: Promise<number>): void {
  outcome
    .catch((error: unknown) => {
      // The kind of error and where it was thrown; its message may quote what a server sent, so it is not shown.
      const frames =
        error instanceof Error
          ? (error.stack ?? '')
              .split('\n')
              .filter((line) => /^\s+at /.test(line))
              .join('\n')
          : '';
      process.stderr.write(`akv-injector: unexpected error (${error instanceof Error ? error.name : typeof error})\n${frames}\n`);
      return 70;
    })
    .then((code) => {
      // The fetch's outcome is final once it is reported: nothing still pending (a token request the identity
      // pipeline is still retrying, a connection that never answers) may keep the init container running.
      if (command === 'fetch' || command === 'refresh') process.exit(code);
      process.exitCode = code;
    });
}
