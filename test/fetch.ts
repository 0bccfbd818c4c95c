// The fetch role end to end in-process: the real SDK clients against the emulators, files read back byte for byte.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { lstat, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runFetch } from '../src/fetch/run.js';
import { defaultChain, makePfx } from './fixtures/certs.js';
import { captureLogger, CLIENT_ID, startFetchWorld, SUBJECT, ISSUER } from './fixtures/fetch-world.js';

const world = await startFetchWorld();
const { vault, entra } = world;
t.teardown(() => world.close());

const day = 86_400;
const now = Math.floor(Date.now() / 1000);
const chain = defaultChain('rsa');
const keyPem = chain.leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const pfx = makePfx({ chain, certOrder: ['root', 'leaf', 'intermediate'] });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
const ec = Object.fromEntries(['prime256v1', 'secp384r1', 'secp521r1'].map((curve) => [curve, generateKeyPairSync('ec', { namedCurve: curve }).publicKey]));
const binary = Buffer.from([0, 1, 2, 127, 128, 254, 255]);

// Planted values: none of them may ever appear in a log line.
const PLANTED = ['p@ssw0rd-ü-PLANTED', 'rotating-v1-PLANTED', 'rotating-v3-PLANTED', 'rotating-v4-PLANTED'];

vault.setSecret('db-password', PLANTED[0] as string);
vault.setSecret('blob', binary.toString('base64'));
vault.setSecret('hexed', binary.toString('hex'));
vault.setSecret('not-base64', 'this is %% not base64');
vault.setSecret('denied', 'denied-value');
const v1 = vault.setSecret('rotating', PLANTED[1] as string, { created: now - 4 * day });
vault.setSecret('rotating', 'rotating-v2-disabled', { created: now - 3 * day, enabled: false });
const v3 = vault.setSecret('rotating', PLANTED[2] as string, { created: now - 2 * day });
vault.setSecret('rotating', PLANTED[3] as string, { created: now - day });
vault.setCertificate('tls', { certDer: chain.leaf.der, secretValue: pfx.toString('base64'), contentType: 'application/x-pkcs12' });
const pemBundle = `${keyPem}${chain.leaf.pem}${chain.intermediate.pem}`;
vault.setCertificate('tls-pem', { certDer: chain.leaf.der, secretValue: pemBundle, contentType: 'application/x-pem-file' });
vault.setKey('signing-rsa', rsa);
vault.setKey('signing-ec', ec.prime256v1 as never, { kty: 'EC-HSM' });
vault.setKey('signing-p384', ec.secp384r1 as never);
vault.setKey('signing-p521', ec.secp521r1 as never);

const spki = (key: unknown): string => (key as KeyObject).export({ type: 'spki', format: 'pem' }).toString();

interface Case {
  name: string;
  object: Record<string, unknown>;
  files: Record<string, Buffer | string>;
  mode?: number;
}

const CASES: Case[] = [
  { name: 'secret, utf-8', object: { objectName: 'db-password', objectType: 'secret' }, files: { 'db-password': PLANTED[0] as string } },
  {
    name: 'secret, base64 decoded to bytes',
    object: { objectName: 'blob', objectType: 'secret', objectEncoding: 'base64', objectAlias: 'bin/blob.bin' },
    files: { 'bin/blob.bin': binary },
  },
  { name: 'secret, hex decoded to bytes', object: { objectName: 'hexed', objectType: 'secret', objectEncoding: 'hex' }, files: { hexed: binary } },
  {
    name: 'secret, pinned older version',
    object: { objectName: 'rotating', objectType: 'secret', objectVersion: v1, objectAlias: 'pinned' },
    files: { pinned: PLANTED[1] as string },
  },
  {
    name: 'secret, version history skips disabled, newest first',
    object: { objectName: 'rotating', objectType: 'secret', objectVersionHistory: 3, objectAlias: 'history' },
    files: { 'history/0': PLANTED[3] as string, 'history/1': PLANTED[2] as string, 'history/2': PLANTED[1] as string },
  },
  {
    name: 'secret, version history starting at objectVersion, fewer than asked',
    object: { objectName: 'rotating', objectType: 'secret', objectVersion: v3, objectVersionHistory: 5, objectAlias: 'from-v3' },
    files: { 'from-v3/0': PLANTED[2] as string, 'from-v3/1': PLANTED[1] as string },
  },
  {
    name: 'certificate secret (PKCS#12) → key first, chain leaf → root',
    object: { objectName: 'tls', objectType: 'secret', objectAlias: 'tls/bundle.pem' },
    files: { 'tls/bundle.pem': `${keyPem}${chain.leaf.pem}${chain.intermediate.pem}${chain.root.pem}` },
  },
  {
    name: 'certificate secret as PFX, base64 text',
    object: { objectName: 'tls', objectType: 'secret', objectFormat: 'pfx', objectAlias: 'tls/pfx.b64' },
    files: { 'tls/pfx.b64': pfx.toString('base64') },
  },
  {
    name: 'certificate secret as PFX, binary',
    object: { objectName: 'tls', objectType: 'secret', objectFormat: 'pfx', objectEncoding: 'base64', objectAlias: 'tls/tls.pfx' },
    files: { 'tls/tls.pfx': pfx },
  },
  { name: 'certificate secret stored as PEM, as stored', object: { objectName: 'tls-pem', objectType: 'secret' }, files: { 'tls-pem': pemBundle } },
  {
    name: 'pfx of a PEM certificate: ignored, the PEM as stored',
    object: { objectName: 'tls-pem', objectType: 'secret', objectFormat: 'pfx', objectAlias: 'ignored/pem' },
    files: { 'ignored/pem': pemBundle },
  },
  {
    name: 'pfx of a plain secret: ignored, the value as stored',
    object: { objectName: 'db-password', objectType: 'secret', objectFormat: 'pfx', objectAlias: 'ignored/plain' },
    files: { 'ignored/plain': PLANTED[0] as string },
  },
  {
    name: 'objectVersion latest is the newest',
    object: { objectName: 'rotating', objectType: 'secret', objectVersion: 'latest', objectAlias: 'latest/one' },
    files: { 'latest/one': PLANTED[3] as string },
  },
  {
    name: 'objectVersion LATEST with history starts at the newest',
    object: { objectName: 'rotating', objectType: 'secret', objectVersion: 'LATEST', objectVersionHistory: 2, objectAlias: 'latest/two' },
    files: { 'latest/two/0': PLANTED[3] as string, 'latest/two/1': PLANTED[2] as string },
  },
  { name: 'certificate → leaf PEM', object: { objectName: 'tls', objectType: 'cert', objectAlias: 'tls/cert.pem' }, files: { 'tls/cert.pem': chain.leaf.pem } },
  { name: 'RSA key → PKIX PEM', object: { objectName: 'signing-rsa', objectType: 'key' }, files: { 'signing-rsa': spki(rsa) } },
  { name: 'EC-HSM P-256 key → PKIX PEM', object: { objectName: 'signing-ec', objectType: 'key' }, files: { 'signing-ec': spki(ec.prime256v1) } },
  { name: 'EC P-384 key', object: { objectName: 'signing-p384', objectType: 'key' }, files: { 'signing-p384': spki(ec.secp384r1) } },
  { name: 'EC P-521 key', object: { objectName: 'signing-p521', objectType: 'key' }, files: { 'signing-p521': spki(ec.secp521r1) } },
  {
    name: 'file mode 0400',
    object: { objectName: 'db-password', objectType: 'secret', objectAlias: 'ro/0400', filePermission: '0400' },
    files: { 'ro/0400': PLANTED[0] as string },
    mode: 0o400,
  },
  {
    name: 'file mode 0440 (YAML number)',
    object: { objectName: 'db-password', objectType: 'secret', objectAlias: 'ro/0440', filePermission: 440 },
    files: { 'ro/0440': PLANTED[0] as string },
    mode: 0o440,
  },
  {
    name: 'file mode 0600',
    object: { objectName: 'db-password', objectType: 'secret', objectAlias: 'ro/0600', filePermission: '600' },
    files: { 'ro/0600': PLANTED[0] as string },
    mode: 0o600,
  },
];

t.test('every type, format, encoding, version and permission in one fetch', async (t) => {
  const optional = { objectName: 'feature-flag', objectType: 'secret', optional: true };
  const job = await world.job([...CASES.map((c) => c.object), optional]);
  const logs = captureLogger();
  const outcome = await runFetch(job, { logger: logs.logger, agent: world.agent });
  t.equal(outcome.exitCode, 0, outcome.summary);
  t.same(outcome.skipped, ['feature-flag'], 'the missing optional object is skipped');

  for (const c of CASES) {
    for (const [path, expected] of Object.entries(c.files)) {
      const bytes = await readFile(join(job.outputDir, path));
      t.same(bytes, Buffer.isBuffer(expected) ? expected : Buffer.from(expected, 'utf8'), `${c.name}: ${path} byte for byte`);
      t.equal((await stat(join(job.outputDir, path))).mode & 0o777, c.mode ?? 0o644, `${c.name}: ${path} mode`);
    }
  }
  await t.rejects(stat(join(job.outputDir, 'feature-flag')), { code: 'ENOENT' }, 'no file for the skipped object');
  await t.rejects(stat(join(job.outputDir, 'history/3')), { code: 'ENOENT' }, 'the disabled version is not written');

  const entries = (await readdir(job.outputDir)).sort();
  const visible = entries.filter((e) => !e.startsWith('..'));
  t.same(visible, [
    'bin',
    'db-password',
    'from-v3',
    'hexed',
    'history',
    'ignored',
    'latest',
    'pinned',
    'ro',
    'signing-ec',
    'signing-p384',
    'signing-p521',
    'signing-rsa',
    'tls',
    'tls-pem',
  ]);
  t.same(
    logs
      .lines()
      .filter((l) => l.msg === 'objectFormat pfx ignored')
      .map((l) => l.object)
      .sort(),
    ['db-password', 'tls-pem'],
    'the log says where objectFormat pfx was ignored',
  );
  t.equal(
    await readlink(join(job.outputDir, '..data')),
    entries.find((e) => /^\.\.\d{4}_\d\d_\d\d_/.test(e)),
    '..data points at the timestamped directory',
  );
  for (const entry of visible) {
    t.ok((await lstat(join(job.outputDir, entry))).isSymbolicLink(), `${entry} is a symlink`);
    t.equal(await readlink(join(job.outputDir, entry)), `..data/${entry}`);
  }

  const fetched = logs.lines().filter((l) => l.msg === 'fetched');
  t.equal(fetched.length, CASES.length, 'one log line per object');
  t.match(
    fetched.find((l) => l.object === 'rotating' && (l.files as string[])[0] === 'history/0'),
    { type: 'secret', bytes: Number, ms: Number, versions: Array },
  );
  t.match(logs.lines().at(-1), { msg: 'fetch complete', objects: CASES.length, skipped: 1 });
  t.match(
    logs.lines().find((l) => l.msg === 'optional object not found, skipped'),
    { object: 'feature-flag', level: 'warn' },
  );
  assertNoSecrets(t, logs.text());
});

t.test('one token request, one challenge and one connection to the vault, however many objects', async (t) => {
  const names = Array.from({ length: 40 }, (_, i) => `bulk-${i}`);
  for (const name of names) vault.setSecret(name, `value-of-${name}`);
  const job = await world.job(names.map((objectName) => ({ objectName, objectType: 'secret' })));
  entra.requests.length = 0;
  vault.requests.length = 0;
  const connectionsBefore = vault.connectionCount;
  const outcome = await runFetch(job, { logger: captureLogger().logger, agent: world.agent });
  t.equal(outcome.exitCode, 0, outcome.summary);
  t.equal(vault.connectionCount - connectionsBefore, 1, 'one TLS connection to the vault');
  t.same(new Set(vault.requests.map((r) => r.httpVersion)), new Set(['2.0']), 'every request over HTTP/2');
  t.equal(entra.requests.filter((r) => r.path.endsWith('/token')).length, 1, 'one token request');
  t.equal(vault.requests.filter((r) => r.status === 401).length, 1, 'one 401 challenge');
  t.equal(vault.requests.filter((r) => r.status === 200).length, 40, 'one read per object');
  t.equal(await readFile(join(job.outputDir, 'bulk-39'), 'utf8'), 'value-of-bulk-39');
});

t.test('transient faults are retried and recovered', async (t) => {
  const cases = [
    { name: '503 twice', fault: { match: '/secrets/db-password', status: 503, times: 2 } },
    { name: '429 without Retry-After', fault: { match: '/secrets/db-password', status: 429, times: 1 } },
    { name: '429 with Retry-After: 0', fault: { match: '/secrets/db-password', status: 429, retryAfter: '0', times: 1 } },
    { name: 'connection reset', fault: { match: '/secrets/db-password', raw: 'reset' as const, times: 1 } },
    { name: '500 on a version listing', fault: { match: '/secrets/rotating/versions', status: 500, times: 1 } },
  ];
  for (const c of cases) {
    vault.clearFaults();
    const job = await world.job([
      { objectName: 'db-password', objectType: 'secret' },
      { objectName: 'rotating', objectType: 'secret', objectVersionHistory: 2 },
    ]);
    // Nothing authenticates first: the fault takes the first matching request, the unauthenticated challenge or a read.
    vault.addFault(c.fault);
    const logs = captureLogger();
    const outcome = await runFetch(job, { logger: logs.logger, agent: world.agent });
    t.equal(outcome.exitCode, 0, `${c.name}: recovered (${outcome.summary})`);
    t.equal(await readFile(join(job.outputDir, 'db-password'), 'utf8'), PLANTED[0], `${c.name}: file written`);
    t.ok(
      logs.lines().some((l) => l.msg === 'retrying'),
      `${c.name}: the retry is logged`,
    );
  }
  vault.clearFaults();
});

interface FailureCase {
  name: string;
  objects: Array<Record<string, unknown>>;
  setup?: () => void;
  overrides?: Record<string, unknown>;
  summary: RegExp[];
}

const FAILURES: FailureCase[] = [
  {
    name: '403: no role on the vault',
    objects: [
      { objectName: 'denied', objectType: 'secret' },
      { objectName: 'tls', objectType: 'cert' },
    ],
    setup: () => vault.deny({ clientId: CLIENT_ID, collection: 'secrets', name: 'denied' }),
    summary: [
      /^akv-injector: 1 of 2 objects could not be fetched from https:\/\/kv-shop\.vault\.azure\.net:\d+\/; no files were written\.$/m,
      /^- secret "denied": forbidden \(403 ForbiddenByRbac\)\. Fix: .*"Key Vault Secrets User"/m,
    ],
  },
  {
    name: '404: required object missing',
    objects: [
      { objectName: 'no-such-secret', objectType: 'secret' },
      { objectName: 'db-password', objectType: 'secret' },
    ],
    summary: [/^- secret "no-such-secret": not found \(404 SecretNotFound\)\. Fix: vault https:\/\/kv-shop.* has no secret "no-such-secret".*optional: true/m],
  },
  {
    name: '404: unknown version',
    objects: [{ objectName: 'db-password', objectType: 'secret', objectVersion: '0123456789abcdef0123456789abcdef' }],
    summary: [/^- secret "db-password" version 0123456789abcdef0123456789abcdef: not found/m],
  },
  {
    name: 'rejected assertion: no federated credential for the subject',
    objects: [
      { objectName: 'db-password', objectType: 'secret' },
      { objectName: 'signing-rsa', objectType: 'key' },
    ],
    overrides: { subject: 'system:serviceaccount:shop:default' },
    summary: [
      /^Authentication as client 0b4b0a4c-1f3e-4c55-9c8e-6f1f0e6d2a01 in tenant 72f988bf-86f1-41af-91ab-2d7cd011db47 failed: Entra ID token exchange failed \(AADSTS70021\)\./m,
      new RegExp(`The token presented: iss=${ISSUER.replace(/[./]/g, '\\$&')} sub=system:serviceaccount:shop:default aud=api://AzureADTokenExchange\\.`),
      /Fix: add a federated identity credential with issuer https:\/\/oidc\.prod-aks\.azure\.com\/cluster-1\/, subject system:serviceaccount:shop:default, .*az identity federated-credential create/,
      /^- secret "db-password": Entra ID token exchange failed \(AADSTS70021\)$/m,
      /^- key "signing-rsa": Entra ID token exchange failed \(AADSTS70021\)$/m,
    ],
  },
  {
    name: 'unknown application',
    objects: [{ objectName: 'db-password', objectType: 'secret' }],
    overrides: { clientId: '99999999-9999-4999-8999-999999999999' },
    summary: [/AADSTS700016\)\. application 99999999-.* was not found in the tenant/],
  },
  {
    name: 'content: value is not base64',
    objects: [{ objectName: 'not-base64', objectType: 'secret', objectEncoding: 'base64' }],
    summary: [/^- secret "not-base64": the value is not valid base64\. Fix: store the value base64-encoded, or change objectEncoding$/m],
  },
  {
    name: 'deadline exceeded while Key Vault keeps failing',
    objects: [{ objectName: 'db-password', objectType: 'secret' }],
    setup: () => vault.addFault({ match: '/secrets/db-password', status: 503, times: 1000 }),
    overrides: { timeoutMs: 1500 },
    summary: [/^- secret "db-password": deadline of 2s exceeded; last error: Key Vault error \(503\)\./m],
  },
];

t.test('failures: exit 1, a summary naming each object with a fix, nothing written', async (t) => {
  for (const c of FAILURES) {
    vault.clearFaults();
    c.setup?.();
    const job = await world.job(c.objects, c.overrides as never);
    const terminationLog = join(world.dir, `termination-${c.name.replace(/\W+/g, '-')}`);
    await writeFile(terminationLog, '');
    const logs = captureLogger();
    let stderr = '';
    const outcome = await runFetch(job, { logger: logs.logger, agent: world.agent, terminationLogPath: terminationLog, writeStderr: (s) => (stderr += s) });
    t.equal(outcome.exitCode, 1, `${c.name}: exit 1`);
    for (const pattern of c.summary) t.match(stderr, pattern, `${c.name}: ${pattern}`);
    t.equal(await readFile(terminationLog, 'utf8'), stderr, `${c.name}: the termination log holds the summary`);
    t.same(await readdir(job.outputDir), [], `${c.name}: nothing written`);
    assertNoSecrets(t, logs.text() + stderr);
  }
  vault.clearFaults();
});

t.test('an existing set is replaced atomically by a later fetch', async (t) => {
  const job = await world.job([
    { objectName: 'db-password', objectType: 'secret' },
    { objectName: 'tls', objectType: 'cert' },
  ]);
  t.equal((await runFetch(job, { logger: captureLogger().logger, agent: world.agent })).exitCode, 0);
  const before = await readlink(join(job.outputDir, '..data'));
  const second = { ...job, objects: job.objects.slice(0, 1) };
  t.equal((await runFetch(second, { logger: captureLogger().logger, agent: world.agent })).exitCode, 0);
  const entries = await readdir(job.outputDir);
  t.not(await readlink(join(job.outputDir, '..data')), before, '..data moved to a new directory');
  t.notOk(entries.includes(before), 'the old directory is gone');
  t.notOk(entries.includes('tls'), 'the entry no longer fetched is gone');
});

function assertNoSecrets(t: Test, text: string): void {
  for (const value of PLANTED) t.notOk(text.includes(value), 'no planted secret value in the logs');
  t.notOk(/eyJ[\w-]{10,}\.[\w-]{10,}\./.test(text), 'no JWT in the logs');
  t.notOk(text.includes(SUBJECT) && text.includes('Bearer'), 'no bearer token');
}

t.test('a list of no object: exit 0, an empty set published, as the provider mounts nothing', async (t) => {
  const job = await world.job([]);
  const logs = captureLogger();
  const outcome = await runFetch(job, { logger: logs.logger, agent: world.agent });
  t.equal(outcome.exitCode, 0, outcome.summary);
  t.equal(outcome.written, 0);
  t.same(
    (await readdir(job.outputDir)).filter((e) => !e.startsWith('..')),
    [],
    'no visible entry',
  );
  t.ok((await lstat(join(job.outputDir, '..data'))).isSymbolicLink(), 'the set is published (empty)');
});
