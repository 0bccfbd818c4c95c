// The fetch against hostile networks, in-process: every raw fault of the emulators, on Key Vault (over HTTP/2 and
// HTTP/1.1) and on Entra ID, ends in success within the deadline or in exit 1 with a summary naming the cause. The
// output folder is never left half-written, and a planted marker (in every secret value, so also in every cut or
// malformed body) appears in no output. Faults that must be seen from outside (hangs, a FIFO token file, publishing,
// the timeout flag) are in fetch-faults-process.ts.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runFetch, type FetchOutcome } from '../src/fetch/run.js';
import type { Fault, ServedRequest } from './fixtures/emulator-server.js';
import { captureLogger, mkfifo, snapshotDir, startFetchWorld, type FetchWorld } from './fixtures/fetch-world.js';

const MARKER = `PLANTED-${randomBytes(6).toString('hex')}`;
const NAMES = ['alpha', 'beta', 'gamma'];
const value = (generation: string, name: string): string => `${MARKER}:${generation}:${name}`;

/** The authenticated read of `name` (the first request of a client only collects the vault's challenge). */
const readOf =
  (name: string) =>
  (r: ServedRequest): boolean =>
    r.path.startsWith(`/secrets/${name}`) && r.headers.authorization !== undefined;
const TOKEN = '/oauth2/v2.0/token';

/** `by`: who retries, the fetch (and logs it) or the identity pipeline below MSAL (see src/fetch/credential.ts). */
type Expect =
  { recovers: true; by: 'fetch' | 'identity pipeline' | 'fetch, or reads asking after the early request failed' } | { recovers: false; summary: RegExp[] };

interface Case {
  name: string;
  vault?: Fault;
  entra?: Fault;
  /** Default 10 s; cases that wait for the deadline use a short one. */
  timeoutMs?: number;
  expect: Expect;
}

const retried = { recovers: true, by: 'fetch' } as const;
// A broken token answer reaches the request the fetch makes early, beside the vault's challenge. Reads that asked for a
// token while it was in flight fail with it and the fetch retries them (logged); reads that ask after it failed make
// the next request themselves, with nothing to retry. Which comes first is the network's timing: either way, exactly
// one more token request, and it succeeds.
const tokenRetried = { recovers: true, by: 'fetch, or reads asking after the early request failed' } as const;
const retriedBelowMsal = { recovers: true, by: 'identity pipeline' } as const;
const fails = (...summary: RegExp[]): Expect => ({ recovers: false, summary });

const VAULT_CASES: Case[] = [
  { name: 'reset before the body', vault: { match: readOf('beta'), raw: 'reset-before-body' }, expect: retried },
  { name: 'reset mid body', vault: { match: readOf('beta'), raw: 'reset-mid-body' }, expect: retried },
  { name: 'RST_STREAM mid body (HTTP/2), reset mid body (HTTP/1.1)', vault: { match: readOf('beta'), raw: 'rst-stream' }, expect: retried },
  { name: 'a malformed JSON answer once', vault: { match: readOf('beta'), raw: 'malformed-json' }, expect: retried },
  {
    name: 'malformed JSON answers until the deadline',
    vault: { match: readOf('beta'), raw: 'malformed-json', times: 1000 },
    timeoutMs: 2000,
    expect: fails(/^- secret "beta": deadline of 2s exceeded; last error: Key Vault's answer was not valid JSON \(PARSE_ERROR\)\. Fix: .*proxy/m),
  },
  {
    name: 'a huge answer',
    vault: { match: readOf('beta'), raw: 'huge' },
    expect: fails(/^- secret "beta": Key Vault's answer was larger than 256 KiB \(ERR_RESPONSE_TOO_LARGE\)\. Fix: .*proxy/m),
  },
  {
    name: 'a gzip bomb',
    vault: { match: readOf('beta'), raw: 'gzip-bomb' },
    expect: fails(/^- secret "beta": Key Vault's answer was larger than 256 KiB \(ERR_RESPONSE_TOO_LARGE\)/m),
  },
  {
    name: 'an error answer that quotes the value',
    vault: { match: readOf('beta'), status: 400, body: { error: { code: 'BadParameter', message: `The value ${value('new', 'beta')} is not allowed here.` } } },
    expect: fails(/^- secret "beta": rejected \(400 BadParameter\)\. Fix: /m),
  },
  {
    name: 'an error answer with a code that is no Key Vault code',
    vault: { match: readOf('beta'), status: 409, body: { error: { code: `${MARKER} and more`, message: MARKER } } },
    expect: fails(/^- secret "beta": rejected \(409\)\. Fix: /m),
  },
  {
    name: 'Retry-After beyond the deadline',
    vault: { match: readOf('beta'), status: 429, retryAfter: '600' },
    timeoutMs: 30_000,
    expect: fails(/^- secret "beta": Key Vault asked to wait 10m0s before trying again \(429 Retry-After\), beyond the deadline of 30s\. Fix: .*--timeout/m),
  },
];

const ENTRA_CASES: Case[] = [
  // HTTP/1.1: ECONNRESET, which the identity pipeline retries; HTTP/2: the session error, which the fetch retries.
  { name: 'token request: reset', entra: { match: TOKEN, raw: 'reset' }, expect: retriedBelowMsal },
  { name: 'token request: reset mid body', entra: { match: TOKEN, raw: 'reset-mid-body' }, expect: tokenRetried },
  { name: 'token request: a malformed JSON answer once', entra: { match: TOKEN, raw: 'malformed-json' }, expect: tokenRetried },
  {
    name: 'token request: a malformed JSON answer quoting the value, until the deadline',
    entra: { match: TOKEN, status: 200, body: `{"token_type":"Bearer","access_token":"${MARKER}`, raw: 'malformed-json', times: 1000 },
    timeoutMs: 2000,
    expect: fails(/^Authentication as client .* failed: deadline of 2s exceeded; last error: Entra ID's answer was not valid JSON \(PARSE_ERROR\)\./m),
  },
  { name: 'token request: 503 once', entra: { match: TOKEN, status: 503 }, expect: retriedBelowMsal },
  {
    name: 'token request: a huge answer',
    entra: { match: TOKEN, raw: 'huge' },
    expect: fails(/^Authentication as client .* failed: Entra ID's answer was larger than 256 KiB \(ERR_RESPONSE_TOO_LARGE\)\./m),
  },
  {
    name: 'token request: a gzip bomb',
    entra: { match: TOKEN, raw: 'gzip-bomb' },
    expect: fails(/^Authentication as client .* failed: Entra ID's answer was larger than 256 KiB \(ERR_RESPONSE_TOO_LARGE\)\./m),
  },
];

async function scene(t: Test, world: FetchWorld, c: Case): Promise<void> {
  // A previous set is published; the vault then holds new values, so success and "unchanged" look different.
  for (const name of NAMES) world.vault.setSecret(name, value('old', name));
  const job = await world.job(
    NAMES.map((objectName) => ({ objectName, objectType: 'secret' })),
    { timeoutMs: c.timeoutMs ?? 10_000 },
  );
  t.equal((await runFetch(job, { logger: captureLogger().logger, agent: world.agent })).exitCode, 0, 'the previous set');
  for (const name of NAMES) world.vault.setSecret(name, value('new', name));
  const before = await snapshotDir(job.outputDir);

  world.vault.clearFaults();
  world.entra.clearFaults();
  world.vault.requests.length = 0;
  world.entra.requests.length = 0;
  if (c.vault) world.vault.addFault(c.vault);
  if (c.entra) world.entra.addFault(c.entra);
  const terminationLog = join(world.dir, `termination-${randomBytes(4).toString('hex')}`);
  await writeFile(terminationLog, '');
  const logs = captureLogger();
  let stderr = '';
  const started = Date.now();
  const outcome: FetchOutcome = await runFetch(job, {
    logger: logs.logger,
    agent: world.agent,
    terminationLogPath: terminationLog,
    writeStderr: (s) => (stderr += s),
  });
  const elapsed = Date.now() - started;
  world.vault.clearFaults();
  world.entra.clearFaults();

  const output = `${logs.text()}${stderr}${await readFile(terminationLog, 'utf8')}`;
  t.notOk(output.includes(MARKER), 'the planted marker is in no log, no summary, no termination log');
  t.notOk(/eyJ[\w-]{8}/.test(output), 'no token, not even a piece of one');
  t.ok(elapsed < job.timeoutMs + 1000, `settled within the deadline (${elapsed} ms of ${job.timeoutMs})`);
  if (c.expect.recovers) {
    t.equal(outcome.exitCode, 0, `recovered: ${outcome.summary}`);
    for (const name of NAMES) t.equal(await readFile(join(job.outputDir, name), 'utf8'), value('new', name), `${name}: the new value`);
    const requests: Array<{ injected: boolean; status: number }> = c.vault ? world.vault.requests : world.entra.requests;
    const faulted = requests.findIndex((r) => r.injected);
    t.ok(faulted >= 0 && requests.slice(faulted + 1).some((r) => r.status === 200), 'the fault struck, and a later request succeeded');
    if (c.expect.by === 'fetch')
      t.ok(
        logs.lines().some((l) => l.msg === 'retrying'),
        'the fetch retried, and logged it',
      );
    if (c.expect.by === tokenRetried.by)
      t.same(
        world.entra.requests.filter((r) => r.path.endsWith(TOKEN)).map((r) => ({ injected: r.injected, status: r.status })),
        [
          { injected: true, status: requests[faulted]?.status },
          { injected: false, status: 200 },
        ],
        'one broken token answer, then one good one',
      );
    return;
  }
  t.equal(outcome.exitCode, 1, 'exit 1');
  for (const pattern of c.expect.summary) t.match(stderr, pattern, `summary: ${pattern}`);
  t.equal(await readFile(terminationLog, 'utf8'), stderr, 'the termination log holds the summary');
  t.same(await snapshotDir(job.outputDir), before, 'the output folder is unchanged: the previous set, whole');
}

// The four worlds are independent (each has its own emulators) and mostly wait on deadlines: they run at once.
// Within a world the scenes run one after another, since a fault is the world's.
t.test('four worlds at once', { jobs: 4 }, async (t) => {
  for (const vaultHttp2 of [true, false]) {
    t.test(`Key Vault faults, the vault speaking HTTP/${vaultHttp2 ? '2' : '1.1'}`, async (t) => {
      const world = await startFetchWorld({ vaultHttp2 });
      t.teardown(() => world.close());
      for (const c of VAULT_CASES) await t.test(c.name, (t) => scene(t, world, c));
    });
  }
  for (const entraHttp2 of [false, true]) {
    t.test(`Entra ID faults, Entra ID speaking HTTP/${entraHttp2 ? '2' : '1.1'}`, async (t) => {
      const world = await startFetchWorld({ entraHttp2 });
      t.teardown(() => world.close());
      for (const c of ENTRA_CASES) await t.test(c.name, (t) => scene(t, world, c));
    });
  }
});

// After the worlds, alone: its bound is the wall clock's.

t.test('the token file: missing, empty, too large, not a regular file', async (t) => {
  const world = await startFetchWorld();
  t.teardown(() => world.close());
  world.vault.setSecret('alpha', value('new', 'alpha'));
  const cases: Array<{ name: string; make: (path: string) => Promise<void>; reason: RegExp }> = [
    { name: 'missing', make: async () => {}, reason: /AZURE_FEDERATED_TOKEN_FILE .* does not exist/ },
    { name: 'empty', make: (path) => writeFile(path, ''), reason: /AZURE_FEDERATED_TOKEN_FILE .* is empty/ },
    { name: 'too large', make: (path) => writeFile(path, 'x'.repeat(65 * 1024)), reason: /AZURE_FEDERATED_TOKEN_FILE .* is larger than 64 KiB/ },
    { name: 'a FIFO', make: (path) => mkfifo(path), reason: /AZURE_FEDERATED_TOKEN_FILE .* is a FIFO, not a regular file/ },
  ];
  for (const c of cases) {
    const tokenFile = join(world.dir, `token-${c.name.replace(/\W+/g, '-')}`);
    await c.make(tokenFile);
    const job = await world.job([{ objectName: 'alpha', objectType: 'secret' }], { tokenFile, timeoutMs: 5000 });
    let stderr = '';
    const started = Date.now();
    const outcome = await runFetch(job, {
      logger: captureLogger().logger,
      agent: world.agent,
      terminationLogPath: join(world.dir, 'no-such-dir', 'log'),
      writeStderr: (s) => (stderr += s),
    });
    t.equal(outcome.exitCode, 1, `${c.name}: exit 1`);
    t.match(stderr, c.reason, `${c.name}: the summary names the file and what is wrong`);
    t.match(stderr, /Fix: /, `${c.name}: and how to fix it`);
    t.ok(Date.now() - started < 2000, `${c.name}: at once, not at the deadline`);
  }
});
