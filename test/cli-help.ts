// Every command's --help and -h, and what an unknown option gets, as a user runs the bundled CLI.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildDist, runCli } from './fixtures/dist.js';

const dir = await mkdtemp(join(tmpdir(), 'akv-cli-help-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const cli = await buildDist(dir);
const env = { PATH: process.env.PATH ?? '' };

const COMMAND_FLAGS: Record<string, string[]> = {
  fetch: [
    '--timeout',
    '--concurrency',
    'AKV_INJECTOR_TIMEOUT',
    'AKV_INJECTOR_CONCURRENCY',
    'AZURE_CLIENT_ID',
    'AZURE_TENANT_ID',
    'AZURE_FEDERATED_TOKEN_FILE',
    'AZURE_AUTHORITY_HOST',
    'AKV_INJECTOR_VAULT_URL',
    'AKV_INJECTOR_OBJECTS',
    'AKV_INJECTOR_OUTPUT_DIR',
  ],
  webhook: [
    '--image',
    '--tls-cert-file',
    '--tls-key-file',
    '--dev',
    '--port',
    '--health-port',
    '--tenant-id',
    '--cloud',
    '--namespace',
    '--windows-image',
    'POD_NAMESPACE',
    'AKV_INJECTOR_IMAGE',
    'KUBECONFIG',
  ],
  render: ['-f ', '--namespace', '--image', '--windows-image', '--tenant-id', '--cloud', '--client-id', '--namespace-annotation', '--namespace-label'],
  certs: ['--service', '--namespace', '--out-dir', '--secret-name', '--validity-days', '--ca-validity-days', '--renew', '--force'],
  refresh: ['AKV_INJECTOR_REFRESH_INTERVAL', '--timeout', 'SIGHUP'],
};

t.test('--help and -h on every command: its usage, every flag, exit 0', async (t) => {
  // All at once: each is a process of its own, and the machine may be busy.
  const runs = Object.entries(COMMAND_FLAGS).flatMap(([command, flags]) =>
    ['--help', '-h'].map(async (help) => ({ command, flags, help, result: await runCli(cli, [command, help], env) })),
  );
  for (const { command, flags, help, result } of await Promise.all(runs)) {
    t.equal(result.code, 0, `${command} ${help}: exit 0`);
    t.equal(result.stderr, '', `${command} ${help}: nothing on stderr`);
    t.ok(result.stdout.startsWith(`Usage: akv-injector ${command} [flags]\n`), `${command} ${help}: its usage`);
    for (const flag of flags) t.match(result.stdout, flag, `${command} ${help}: ${flag}`);
  }
  // Asked with other flags too, help wins and nothing runs (the webhook would listen, the fetch would read its environment).
  t.match(await runCli(cli, ['webhook', '--dev', '--help'], env), { code: 0, stdout: /^Usage: akv-injector webhook/ });
  t.match(await runCli(cli, ['certs', '--out-dir', join(dir, 'never'), '-h'], env), { code: 0, stdout: /^Usage: akv-injector certs/ });
  t.same(await readdir(dir).then((names) => names.includes('never')), false, 'certs --help wrote nothing');
  for (const help of ['--help', '-h', 'help']) {
    const top = await runCli(cli, [help], env);
    t.equal(top.code, 0, `akv-injector ${help}`);
    for (const command of Object.keys(COMMAND_FLAGS)) t.match(top.stdout, new RegExp(`^  ${command} `, 'm'), `${help}: ${command}`);
    t.match(top.stdout, 'Every command takes --help');
  }
});

t.test('an unknown option: exit 2, naming it and pointing at --help', async (t) => {
  const commands = ['fetch', 'refresh', 'webhook', 'render', 'certs'];
  const results = await Promise.all(commands.map((command) => runCli(cli, [command, '--no-such-flag'], env)));
  for (const [i, command] of commands.entries()) {
    const result = results[i] as Awaited<ReturnType<typeof runCli>>;
    t.equal(result.code, 2, `${command}: exit 2`);
    t.match(result.stderr, '--no-such-flag', `${command}: names the option`);
    t.match(result.stderr, `akv-injector ${command} --help`, `${command}: points at its help`);
    t.equal(result.stdout, '', `${command}: nothing on stdout`);
  }
  t.match(await runCli(cli, ['frobnicate'], env), { code: 2, stderr: /unknown command "frobnicate"; run "akv-injector --help"/ });
});
