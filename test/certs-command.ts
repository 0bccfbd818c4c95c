// `akv-injector certs`: the files, the Secret and the caBundle patch it writes, proven by real TLS handshakes
// with the written caBundle as the only trust root; and its life cycle: it never replaces a CA unasked,
// --renew keeps the CA and the bundle, --force makes a bundle that accepts the old and the new certificate.
import { readFile, stat, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { createServer, connect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { CERTS_FILES, CertsRefusal, parseCertsFlags, serviceDnsNames, WEBHOOK_NAMES, writeCerts, type CertsFlags } from '../src/certs-command.js';

const dir = await mkdtemp(join(tmpdir(), 'akv-certs-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const DAY_MS = 86_400_000;

t.test('flags', async (t) => {
  t.match(parseCertsFlags(['--service', 'akv-injector', '--namespace', 'akv-injector', '--out-dir', dir]), {
    problems: [],
    flags: { secretName: 'akv-injector-tls', validityDays: 365, caValidityDays: 3650, mode: 'new' },
  });
  const bad = parseCertsFlags(['--service', 'Bad_Name', '--namespace', '', '--validity-days', '0', '--ca-validity-days', '1.5']);
  t.match(
    bad.problems.join('\n'),
    /--service "Bad_Name" must be the webhook's Service name[\s\S]*--namespace ""[\s\S]*--out-dir is required[\s\S]*--validity-days "0"[\s\S]*--ca-validity-days "1.5"/,
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
  const required = ['--service', 'web', '--namespace', 'ns', '--out-dir', dir];
  t.match(parseCertsFlags([...required, '--renew']).flags, { mode: 'renew' });
  t.match(parseCertsFlags([...required, '--force']).flags, { mode: 'force' });
  t.match(parseCertsFlags([...required, '--renew', '--force']).problems, [/--renew and --force exclude each other/]);
  t.match(parseCertsFlags([...required, '--renew', '--ca-validity-days', '30']).problems, [/--ca-validity-days applies to a new CA/]);
});

/** The flags of a run in `out` (the Service akv-injector.akv-injector), with `extra` flags. */
function flagsFor(out: string, ...extra: string[]): CertsFlags {
  const { flags, problems } = parseCertsFlags(['--service', 'akv-injector', '--namespace', 'akv-injector', '--out-dir', out, ...extra]);
  if (flags === undefined) throw new Error(problems.join('; '));
  return flags;
}

/** Every file `certs` writes, by name, as bytes (absent files missing). */
async function snapshot(out: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of CERTS_FILES) files[name] = await readFile(join(out, name), 'utf8').catch(() => '(absent)');
  return files;
}

/** The CAs both webhooks' caBundle in ca-bundle.yaml trusts, as PEM certificates (the two must agree). */
async function caBundle(t: Test, out: string): Promise<string[]> {
  const patch = parse(await readFile(join(out, 'ca-bundle.yaml'), 'utf8')) as {
    kind: string;
    metadata: { name: string };
    webhooks: Array<{ name: string; clientConfig: { caBundle: string } }>;
  };
  t.match(patch, { kind: 'MutatingWebhookConfiguration', metadata: { name: 'akv-injector' } });
  t.same(
    patch.webhooks.map((w) => w.name),
    WEBHOOK_NAMES,
    'both webhooks',
  );
  const [first, second] = patch.webhooks.map((w) => Buffer.from(w.clientConfig.caBundle, 'base64').toString());
  t.equal(first, second, 'the same bundle for both');
  t.equal(first, await readFile(join(out, 'ca-bundle.crt'), 'utf8'), 'ca-bundle.yaml carries ca-bundle.crt');
  return (first ?? '').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g) ?? [];
}

/** A TLS server presenting `cert`, and a handshake to it as `servername` trusting only `ca`: the peer's first bytes. */
async function servedBy(t: Test, cert: string, key: string): Promise<(servername: string, ca: string[]) => Promise<string>> {
  const server = createServer({ cert, key, minVersion: 'TLSv1.2' }, (socket) => socket.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  return (servername, ca) =>
    new Promise((resolve, reject) => {
      const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername, ca }, () => {
        socket.once('data', (d: Buffer) => resolve(d.toString()));
      });
      socket.on('error', reject);
    });
}

t.test('files, Secret, caBundle and a handshake for every Service name', async (t) => {
  const out = join(dir, 'first');
  const { written, report } = await writeCerts(flagsFor(out, '--validity-days', '30'));
  t.same(
    written.map((p) => p.slice(out.length + 1)),
    ['ca.crt', 'ca.key', 'tls.crt', 'tls.key', 'tls-secret.yaml', 'ca-bundle.crt', 'ca-bundle.yaml'],
  );
  for (const [name, mode] of [
    ['ca.key', 0o600],
    ['tls.key', 0o600],
    ['tls-secret.yaml', 0o600],
    ['ca.crt', 0o644],
    ['ca-bundle.yaml', 0o644],
  ] as const)
    t.equal((await stat(join(out, name))).mode & 0o777, mode, `${name}: mode ${mode.toString(8)}`);
  const files = await snapshot(out);
  const ca = files['ca.crt'] as string;
  const cert = files['tls.crt'] as string;

  const secret = parse(files['tls-secret.yaml'] as string) as {
    kind: string;
    type: string;
    metadata: { name: string; namespace: string };
    data: Record<string, string>;
  };
  t.match(secret, { kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'akv-injector-tls', namespace: 'akv-injector' } });
  t.same(Object.keys(secret.data).sort(), ['ca.crt', 'tls.crt', 'tls.key'], "cert-manager's layout");
  t.equal(Buffer.from(secret.data['tls.crt'] ?? '', 'base64').toString(), cert);
  t.equal(Buffer.from(secret.data['tls.key'] ?? '', 'base64').toString(), files['tls.key']);
  t.same(await caBundle(t, out), [ca], 'the caBundle is the CA');

  const x509 = new X509Certificate(cert);
  const caX509 = new X509Certificate(ca);
  t.ok(x509.checkIssued(caX509) && x509.verify(caX509.publicKey), 'signed by the CA');
  t.ok(caX509.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(files['ca.key'] as string))), 'ca.key is the CA key');
  t.ok(caX509.ca, 'the CA is a CA');
  t.notOk(x509.ca, 'the serving certificate is not');
  t.match(x509.subject, /CN=akv-injector/);
  const days = (Date.parse(x509.validTo) - Date.now()) / DAY_MS;
  t.ok(days > 29 && days <= 30, `valid for the days asked (${days.toFixed(1)})`);
  const caDays = (Date.parse(caX509.validTo) - Date.now()) / DAY_MS;
  t.ok(caDays > 3649 && caDays <= 3650, `the CA for ten years (${caDays.toFixed(1)})`);
  t.not(x509.serialNumber, caX509.serialNumber, 'random serials');
  t.match(
    report.join('\n'),
    new RegExp(`CA made: "akv-injector.akv-injector webhook CA", expires on ${new Date(caX509.validTo).toISOString().slice(0, 10)} \\(in 3650 days\\)`),
  );
  t.match(
    report.join('\n'),
    new RegExp(`serving certificate for akv-injector.akv-injector.svc: expires on ${new Date(x509.validTo).toISOString().slice(0, 10)} \\(in 30 days\\)`),
  );

  const handshake = await servedBy(t, cert, files['tls.key'] as string);
  for (const name of serviceDnsNames('akv-injector', 'akv-injector')) t.equal(await handshake(name, [ca]), 'ok', `TLS handshake as ${name}`);
  await t.rejects(handshake('akv-injector.other.svc', [ca]), /does not match|altnames/i, 'another name is refused');
});

t.test('life cycle: refuse, renew, replace with no window, drop the old CA', async (t) => {
  const out = join(dir, 'cycle');
  const name = 'akv-injector.akv-injector.svc';
  await writeCerts(flagsFor(out));
  const first = await snapshot(out);
  // A webhook replica serving the first certificate, as one does until the kubelet updates its Secret.
  const firstServer = await servedBy(t, first['tls.crt'] as string, first['tls.key'] as string);

  await t.rejects(
    writeCerts(flagsFor(out)),
    {
      name: 'CertsRefusal',
      message: /ca\.crt already holds the CA "akv-injector\.akv-injector webhook CA", expires on \d{4}-\d\d-\d\d[\s\S]*add --renew[\s\S]*add --force/,
    },
    'a second run without a flag is refused, saying what to add',
  );
  t.same(await snapshot(out), first, 'refused: every file as it was');

  const renewed = await writeCerts(flagsFor(out, '--renew'));
  const afterRenew = await snapshot(out);
  t.same(
    CERTS_FILES.filter((f) => afterRenew[f] !== first[f]),
    ['tls.crt', 'tls.key', 'tls-secret.yaml'],
    '--renew: a new serving certificate, the CA and caBundle untouched',
  );
  t.match(renewed.report.join('\n'), /^CA kept: /m);
  const renewedServer = await servedBy(t, afterRenew['tls.crt'] as string, afterRenew['tls.key'] as string);
  const bundleAfterRenew = await caBundle(t, out);
  t.equal(await firstServer(name, bundleAfterRenew), 'ok', '--renew: the caBundle accepts the old certificate');
  t.equal(await renewedServer(name, bundleAfterRenew), 'ok', '--renew: and the new one');

  const forced = await writeCerts(flagsFor(out, '--force'));
  const afterForce = await snapshot(out);
  t.same(
    CERTS_FILES.filter((f) => afterForce[f] === afterRenew[f]),
    [],
    '--force: every file new',
  );
  t.match(forced.report.join('\n'), /^CA replaced: [\s\S]*trusting both CAs/m);
  const bundle = await caBundle(t, out);
  t.same(bundle, [afterForce['ca.crt'], first['ca.crt']], '--force: the caBundle trusts the new CA, then the one it replaced');
  const forcedServer = await servedBy(t, afterForce['tls.crt'] as string, afterForce['tls.key'] as string);
  // The rotation has no window: with the one caBundle applied, the API server reaches a replica on either certificate.
  t.equal(await renewedServer(name, bundle), 'ok', 'the replica still on the old certificate is trusted');
  t.equal(await forcedServer(name, bundle), 'ok', 'the replica on the new certificate is trusted');
  await t.rejects(
    renewedServer(name, [afterForce['ca.crt'] as string]),
    /self.signed|unable to verify|unable to get local issuer/i,
    'a bundle of the new CA alone would refuse the old replica',
  );

  await writeCerts(flagsFor(out, '--renew'));
  t.same(await caBundle(t, out), bundle, 'a later --renew keeps both CAs');

  await rm(join(out, 'ca-bundle.crt'));
  await writeCerts(flagsFor(out, '--renew'));
  const dropped = await caBundle(t, out);
  t.same(dropped, [afterForce['ca.crt']], 'without ca-bundle.crt, --renew writes a bundle of the current CA only');
  await t.rejects(renewedServer(name, dropped), /self.signed|unable to verify|unable to get local issuer/i, 'the old CA is no longer trusted');
});

t.test('refusals: nothing written, and the message says what to do', async (t) => {
  const cases: Array<{ what: string; prepare: (out: string) => Promise<unknown>; extra: string[]; message: RegExp; now?: number }> = [
    {
      what: '--renew with no CA',
      prepare: async () => undefined,
      extra: ['--renew'],
      message: /--renew keeps the CA in .*ca\.crt, and there is none: run without --renew/,
    },
    {
      what: "--renew without the CA's key",
      prepare: async (out) => writeCerts(flagsFor(out)).then(() => rm(join(out, 'ca.key'))),
      extra: ['--renew'],
      message: /--renew needs the CA's key .*ca\.key, and it is missing[\s\S]*--force/,
    },
    {
      what: '--renew with a key of another CA',
      prepare: async (out) => {
        await writeCerts(flagsFor(join(out, 'other')));
        await writeCerts(flagsFor(out));
        await writeFile(join(out, 'ca.key'), await readFile(join(out, 'other', 'ca.key')));
      },
      extra: ['--renew'],
      message: /ca\.key is not the key of the CA in .*ca\.crt/,
    },
    {
      what: '--renew of an expired CA',
      prepare: async (out) => writeCerts(flagsFor(out, '--ca-validity-days', '1')),
      extra: ['--renew'],
      now: Date.now() + 2 * DAY_MS,
      message: /the CA in .*ca\.crt expired on \d{4}-\d\d-\d\d: replace it with --force/,
    },
    {
      what: 'a ca-bundle.crt that is not PEM',
      prepare: async (out) => writeCerts(flagsFor(out)).then(() => writeFile(join(out, 'ca-bundle.crt'), 'not a certificate\n')),
      extra: ['--renew'],
      message: /ca-bundle\.crt is not a list of PEM certificates\. Delete it and run again/,
    },
    {
      what: 'a ca.crt that is not a certificate',
      prepare: async (out) => writeFile(join(out, 'ca.crt'), 'garbage'),
      extra: [],
      message: /ca\.crt already holds a file that is not a certificate/,
    },
  ];
  for (const [index, { what, prepare, extra, message, now }] of cases.entries()) {
    const out = join(dir, `refusal-${index}`);
    await import('node:fs/promises').then((fs) => fs.mkdir(out, { recursive: true }));
    await prepare(out);
    const before = await snapshot(out);
    const error = await writeCerts(flagsFor(out, ...extra), now === undefined ? undefined : new Date(now)).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(error instanceof CertsRefusal, `${what}: refused`);
    t.match((error as Error | undefined)?.message, message, `${what}: the message`);
    t.same(await snapshot(out), before, `${what}: nothing written`);
  }
});

t.test('the serving certificate never outlives its CA; an expired CA leaves the bundle', async (t) => {
  const out = join(dir, 'short');
  await writeCerts(flagsFor(out, '--ca-validity-days', '10'));
  const { report } = await writeCerts(flagsFor(out, '--renew', '--validity-days', '365'));
  const files = await snapshot(out);
  t.equal(new X509Certificate(files['tls.crt'] as string).validTo, new X509Certificate(files['ca.crt'] as string).validTo, 'capped at the CA');
  t.match(report.join('\n'), /shorter than the 365 days asked for: a certificate never outlives its CA/);

  // Two days after a one-day CA expired, --force trusts the new CA only.
  const expiring = join(dir, 'expiring');
  await writeCerts(flagsFor(expiring, '--ca-validity-days', '1'));
  await writeCerts(flagsFor(expiring, '--force'), new Date(Date.now() + 2 * DAY_MS));
  t.same(await caBundle(t, expiring), [(await snapshot(expiring))['ca.crt']], 'the expired CA is not carried');
});
