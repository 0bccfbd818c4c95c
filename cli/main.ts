#!/usr/bin/env node
// akv-injector's command line, above both roles: read the command, then load only that command's code. Bundled as
// dist/cli.mjs, loaded by dist/cli.js (cli/launch.ts), which runs a fetch itself.
import { mark } from '../src/fetch/phases.js';
import { VERSION } from '../src/version.js';
import { asksForHelp, finish } from './finish.js';

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
  refresh    Keep the files of fetch fresh (the refresh sidecar): every AKV_INJECTOR_REFRESH_INTERVAL
             (30s to 24h, ±10 %) read the objects not pinned by objectVersion again, and publish a new
             generation when a file changed; on failure keep the files and retry. Writes
             ..akv-injector-status.json beside them. Flags and environment: those of fetch (--timeout is
             the deadline of one refresh). SIGHUP: refresh now. SIGTERM: stop (within a second).
  webhook    Serve the mutating admission webhook (POST /mutate, HTTPS).
             Flags: --image IMAGE          image of the injected init container (default AKV_INJECTOR_IMAGE;
                                           required, except with --dev: the image of this version)
                    --tls-cert-file FILE   serving certificate, PEM (reloaded when it changes)
                    --tls-key-file FILE    its private key, PEM
                    --dev                  for trying it out: no files, a generated certificate for localhost
                                           (its CA printed); no cluster needed
                    --port N               HTTPS port (default 8443)
                    --health-port N        plain HTTP /healthz, /readyz, /metrics (default 8080)
                    --tenant-id ID         default tenant ID
                    --cloud NAME           AzurePublicCloud (default), AzureUSGovernmentCloud, AzureChinaCloud
                    --namespace NS         its own namespace, never injected (default POD_NAMESPACE,
                                           then the in-cluster service account's namespace; with --dev,
                                           then the kubeconfig context's, then "default")
                    --windows-image IMAGE  init container image for Windows pods
             Environment: AKV_INJECTOR_IMAGE, POD_NAMESPACE (defaults of --image, --namespace);
                    KUBERNETES_SERVICE_HOST (in a pod), else KUBECONFIG, else
                    ~/.kube/config: the Kubernetes access. With --dev and no reachable cluster,
                    namespaces and ServiceAccounts are answered in memory (no annotations, no
                    SecretProviderClasses).
  render     Print manifests as the webhook would mutate them (Pod, Deployment, StatefulSet,
             DaemonSet, ReplicaSet, Job, CronJob; other documents pass through), for review and GitOps.
             Keeps comments, block scalars and key order; one line per workload on stderr says what
             was injected, or why not.
             Flags: -f FILE|DIR|-       a file, a folder (its *.yaml, *.yml in name order) or - for stdin;
                                        repeatable, read in order (required)
                    -n, --namespace NS  for documents without one (default "default")
                    --image IMAGE       the init container's image (default the image of this version)
                    --windows-image IMAGE, --tenant-id ID, --cloud NAME (as the webhook's)
                    --client-id ID      as the ServiceAccounts' azure.workload.identity/client-id
                    --namespace-annotation KEY=VALUE, --namespace-label KEY=VALUE (repeatable)
             Exit 0: rendered; 1: a workload would be denied; 2: invalid flags or input.
  certs      Write a CA and a serving certificate for the webhook's Service, and the caBundle patch.
             Flags: --service NAME --namespace NS --out-dir DIR (all required),
                    --secret-name NAME (default NAME-tls),
                    --validity-days N     the serving certificate's (default 365; never past the CA's)
                    --ca-validity-days N  a new CA's (default 3650)
                    --renew               keep the CA in DIR, issue a new serving certificate
                    --force               replace the CA in DIR; the caBundle trusts old and new
             Writes ca.crt, ca.key, tls.crt, tls.key, tls-secret.yaml (a kubernetes.io/tls Secret) and
             ca-bundle.yaml (a kustomize patch: both webhooks' caBundle), then prints the expiry dates.
             Without --renew or --force it never replaces a CA already in DIR.
             Exit 0: written; 1: refused, nothing written (the message says why); 2: invalid flags.
  help       Show this help.
  version    Print the version.

Every command takes --help (-h).
`;

/** `akv-injector <command> --help`: that command's part of the usage text. */
function commandUsage(command: string): string {
  const lines = USAGE.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`  ${command} `));
  const end = lines.findIndex((line, index) => index > start && !line.startsWith('     '));
  return `Usage: akv-injector ${command} [flags]\n\n${lines.slice(start, end).join('\n')}\n`;
}

/** Run the CLI and return the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && ['fetch', 'refresh', 'webhook', 'render', 'certs'].includes(command) && asksForHelp(rest)) {
    process.stdout.write(commandUsage(command));
    return 0;
  }
  switch (command) {
    case 'fetch':
      // As dist/cli.js runs it: a script of its own, compiled with the code cache the image carries.
      return (await import('../src/fetch/code-cache.js')).loadFetchScript(import.meta.dirname).fetchCommand(rest);
    case 'refresh':
      return (await import('../src/refresh/command.js')).refreshCommand(rest);
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
      process.stderr.write(`akv-injector: unknown command "${command}"; run "akv-injector --help" for the commands.\n`);
      return 2;
  }
}

async function webhookCommand(args: string[]): Promise<number> {
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
  const { parseCertsFlags, writeCerts, CertsRefusal } = await import('../src/certs-command.js');
  const { flags, problems } = parseCertsFlags(args);
  if (flags === undefined) {
    process.stderr.write(`akv-injector certs: invalid flags:\n${problems.map((p) => `- ${p}`).join('\n')}\nRun "akv-injector certs --help" for the flags.\n`);
    return 2;
  }
  try {
    const { written, report } = await writeCerts(flags);
    process.stdout.write(`${written.join('\n')}\n${report.join('\n')}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof CertsRefusal)) throw error;
    process.stderr.write(`akv-injector certs: ${error.message}\n`);
    return 1;
  }
}

finish(process.argv[2], main(process.argv.slice(2)));
