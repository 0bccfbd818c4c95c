#!/usr/bin/env node
// akv-injector's command line, above both roles: read the command, then load only that command's code.
import { compileCacheDir, useCompileCache } from '../src/fetch/compile-cache.js';
import { mark } from '../src/fetch/phases.js';
import { VERSION } from '../src/version.js';

mark('main');

const USAGE = `Usage: akv-injector <command> [flags]

Commands:
  fetch      Fetch Key Vault objects into AKV_INJECTOR_OUTPUT_DIR (the init container's role).
             Flags: --timeout DURATION (default 2m; env AKV_INJECTOR_TIMEOUT; 1s to 24h): the deadline of
                                       the whole fetch; one request waits at most a quarter of it, up to 20s
                    --concurrency N   (default 64; env AKV_INJECTOR_CONCURRENCY)
             Exit 0: all written; 1: failed, the summary on stderr and in /dev/termination-log;
                    2: invalid flags or environment.
             Environment: AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE,
                    AZURE_AUTHORITY_HOST, AKV_INJECTOR_VAULT_URL, AKV_INJECTOR_OBJECTS,
                    AKV_INJECTOR_OUTPUT_DIR
  webhook    Serve the mutating admission webhook (POST /mutate, HTTPS).
             Flags: --image IMAGE          image of the injected init container (required)
                    --tls-cert-file FILE   serving certificate, PEM (reloaded when it changes)
                    --tls-key-file FILE    its private key, PEM
                    --dev                  no files: generate a certificate for localhost and print its CA
                    --port N               HTTPS port (default 8443)
                    --health-port N        plain HTTP /healthz, /readyz, /metrics (default 8080)
                    --tenant-id ID         default tenant ID
                    --cloud NAME           AzurePublicCloud (default), AzureUSGovernmentCloud, AzureChinaCloud
                    --namespace NS         its own namespace, never injected (default POD_NAMESPACE,
                                           then the in-cluster service account's namespace)
                    --windows-image IMAGE  init container image for Windows pods
             Kubernetes access: in-cluster configuration, else KUBECONFIG.
  render     Print manifests as the webhook would mutate them (Pod, Deployment, StatefulSet,
             DaemonSet, ReplicaSet, Job, CronJob; other documents pass through), for review and GitOps.
             Flags: -f FILE (- for stdin, required), --namespace NS (for documents without one;
                    default "default"), --image, --windows-image, --tenant-id, --cloud,
                    --client-id ID (as the ServiceAccounts' azure.workload.identity/client-id),
                    --namespace-annotation KEY=VALUE, --namespace-label KEY=VALUE (repeatable)
  certs      Write a CA and a serving certificate for the webhook's Service.
             Flags: --service NAME --namespace NS --out-dir DIR (all required),
                    --secret-name NAME (default NAME-tls), --validity-days N (default 365)
             Writes ca.crt, tls.crt, tls.key and tls-secret.yaml (a kubernetes.io/tls Secret).
  help       Show this help.
  version    Print the version.
`;

/** Run the CLI and return the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'fetch':
      // The image's compile cache (a fetch is a new process each time; the webhook compiles once).
      useCompileCache(compileCacheDir(import.meta.url));
      return (await import('../src/fetch/command.js')).fetchCommand(rest);
    case 'webhook':
      return webhookCommand(rest);
    case 'render':
      return renderCommand(rest);
    case 'certs':
      return certsCommand(rest);
    case 'version':
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`akv-injector: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function webhookCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { runWebhook } = await import('../webhook/main.js');
  const code = await runWebhook(args);
  // Everything is closed; should a stray handle keep the event loop alive, do not hang the pod's termination.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}

async function renderCommand(args: string[]): Promise<number> {
  const { renderCommand: render } = await import('../webhook/render-command.js');
  return render(args, {
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
  });
}

async function certsCommand(args: string[]): Promise<number> {
  const { parseCertsFlags, writeCerts } = await import('../src/certs-command.js');
  const { flags, problems } = parseCertsFlags(args);
  if (flags === undefined) {
    process.stderr.write(`akv-injector certs: invalid flags:\n${problems.map((p) => `- ${p}`).join('\n')}\n`);
    return 2;
  }
  const written = await writeCerts(flags);
  process.stdout.write(`${written.join('\n')}\n`);
  return 0;
}

const command = process.argv[2];
main(process.argv.slice(2))
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
    if (command === 'fetch') process.exit(code);
    process.exitCode = code;
  });
