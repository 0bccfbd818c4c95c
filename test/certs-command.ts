// `akv-injector certs`: the files and the Secret it writes, proven by real TLS handshakes for every
// Service name, with the generated CA as the only trust root.
import { readFile, stat, mkdtemp, rm } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { createServer, connect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { parseCertsFlags, serviceDnsNames, writeCerts } from '../src/certs-command.js';

const dir = await mkdtemp(join(tmpdir(), 'akv-certs-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('flags', async (t) => {
  t.match(parseCertsFlags(['--service', 'akv-injector', '--namespace', 'akv-injector', '--out-dir', dir]), {
    problems: [],
    flags: { secretName: 'akv-injector-tls', validityDays: 365 },
  });
  const bad = parseCertsFlags(['--service', 'Bad_Name', '--namespace', '', '--validity-days', '0']);
  t.match(
    bad.problems.join('\n'),
    /--service "Bad_Name" must be the webhook's Service name[\s\S]*--namespace ""[\s\S]*--out-dir is required[\s\S]*--validity-days "0"/,
  );
  t.match(parseCertsFlags(['--nope']).problems, [/Unknown option '--nope'/]);
  const long = 'a'.repeat(64);
  t.match(
    parseCertsFlags(['--service', long, '--namespace', 'ns', '--out-dir', dir]).problems,
    [/--service "a{64}" must be the webhook's Service name/],
    'a label is at most 63 characters',
  );
  t.match(parseCertsFlags(['--service', 'web', '--namespace', 'ns', '--out-dir', dir, '--secret-name', 'web..tls']).problems, [
    /--secret-name "web\.\.tls" is not a valid Secret name/,
  ]);
  t.same(parseCertsFlags(['--service', 'web', '--namespace', 'ns', '--out-dir', dir, '--secret-name', 'web.tls']).problems, [], 'a Secret name may have dots');
});

t.test('files, Secret and a handshake for every Service name', async (t) => {
  const { flags } = parseCertsFlags(['--service', 'akv-injector', '--namespace', 'akv-injector', '--out-dir', dir, '--validity-days', '30']);
  const written = await writeCerts(flags!);
  t.same(
    written.map((p) => p.slice(dir.length + 1)),
    ['ca.crt', 'tls.crt', 'tls.key', 'tls-secret.yaml'],
  );
  t.equal((await stat(join(dir, 'tls.key'))).mode & 0o777, 0o600, 'the key is private');
  const [ca, cert, key] = (await Promise.all(['ca.crt', 'tls.crt', 'tls.key'].map((f) => readFile(join(dir, f), 'utf8')))) as [string, string, string];

  const secret = parse(await readFile(join(dir, 'tls-secret.yaml'), 'utf8')) as {
    kind: string;
    type: string;
    metadata: { name: string; namespace: string };
    data: Record<string, string>;
  };
  t.match(secret, { kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'akv-injector-tls', namespace: 'akv-injector' } });
  t.same(Object.keys(secret.data).sort(), ['ca.crt', 'tls.crt', 'tls.key'], "cert-manager's layout");
  t.equal(Buffer.from(secret.data['tls.crt'] ?? '', 'base64').toString(), cert);

  const x509 = new X509Certificate(cert);
  const caX509 = new X509Certificate(ca);
  t.ok(x509.checkIssued(caX509) && x509.verify(caX509.publicKey), 'signed by the CA');
  t.ok(caX509.ca, 'the CA is a CA');
  t.notOk(x509.ca, 'the serving certificate is not');
  t.match(x509.subject, /CN=akv-injector/);
  const days = (Date.parse(x509.validTo) - Date.now()) / 86_400_000;
  t.ok(days > 29 && days <= 30, `valid for the days asked (${days.toFixed(1)})`);
  t.not(x509.serialNumber, caX509.serialNumber, 'random serials');

  const server = createServer({ cert, key, minVersion: 'TLSv1.2' }, (socket) => socket.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const handshake = (servername: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername, ca: [ca] }, () => {
        socket.once('data', (d: Buffer) => resolve(d.toString()));
      });
      socket.on('error', reject);
    });
  for (const name of serviceDnsNames('akv-injector', 'akv-injector')) t.equal(await handshake(name), 'ok', `TLS handshake as ${name}`);
  await t.rejects(handshake('akv-injector.other.svc'), /does not match|altnames/i, 'another name is refused');
});
