// The refresh sidecar (issue 12) as the pod runs it: the bundled CLI, after the fetch, against the emulators. Each
// refresh is asked for with SIGHUP ("refresh now") and waited for by its log line: the 30 s minimum stays.
import { lstat, readFile, readdir, readlink, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import t, { type Test } from 'tap';
import { decodeJwt, fakeServiceAccountToken } from './fixtures/jwt.js';
import { buildDist, runCli } from './fixtures/dist.js';
import { ISSUER, snapshotDir, startFetchWorld, SUBJECT } from './fixtures/fetch-world.js';
import { startSidecar, type LogLine, type SidecarProcess } from './fixtures/refresh-process.js';
import { waitFor } from './fixtures/wait-for.js';

// Entra ID tokens that live a minute: within every cache's renewal window (the SDK's 2 minutes, MSAL's 5, ours 5), so
// each refresh asks for a new one.
const world = await startFetchWorld({ tokenLifetimeSeconds: 60 });
t.teardown(() => world.close());
const cliPath = await buildDist(world.dir);

interface Running {
  sidecar: SidecarProcess;
  outputDir: string;
  tokenFile: string;
}

/** Fetch `objects` as the init container does, then start the sidecar (`extra` in its environment) on the same volume, waiting for its first wait. */
async function fetchThenRefresh(t: Test, objects: unknown[], extra: Record<string, string> = {}): Promise<Running> {
  const job = await world.job(objects);
  const env = world.childEnv(job, objects, { AKV_INJECTOR_REFRESH_INTERVAL: '1h' });
  const fetched = await runCli(cliPath, ['fetch'], env, world.dir);
  t.equal(fetched.code, 0, `the fetch: ${fetched.stderr}`);
  const sidecar = startSidecar(cliPath, { ...env, ...extra });
  t.teardown(() => sidecar.kill());
  await sidecar.waitForLine('the first wait', (l) => l.msg === 'next refresh');
  return { sidecar, outputDir: job.outputDir, tokenFile: job.tokenFile };
}

/** SIGHUP, then the outcome of the refresh it starts, once the status file says it (written before the next wait). */
async function refreshNow(sidecar: SidecarProcess, boundMs = 30_000): Promise<LogLine> {
  const from = sidecar.lines.length;
  sidecar.signal('SIGHUP');
  const outcome = await sidecar.waitForLine('a refresh', (l) => typeof l.msg === 'string' && /^refresh (complete|failed)/.test(l.msg), { from, boundMs });
  await sidecar.waitForLine('the next wait', (l) => l.msg === 'next refresh', { from: sidecar.lines.indexOf(outcome) });
  return outcome;
}

async function status(outputDir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(outputDir, '..akv-injector-status.json'), 'utf8')) as Record<string, unknown>;
}

async function generations(outputDir: string): Promise<string[]> {
  return (await readdir(outputDir)).filter((n) => /^\.\.\d{4}_/.test(n));
}

async function stopped(t: Test, sidecar: SidecarProcess): Promise<void> {
  sidecar.signal('SIGTERM');
  t.match(await sidecar.exited, { code: 0 }, 'SIGTERM: exit 0');
}

t.test('a rotated secret: one new generation, and a reader polling throughout never sees a mix or a partial file', async (t) => {
  const size = 20_000;
  const rotate = (v: number): void => {
    world.vault.setSecret('big', String(v % 10).repeat(size));
    world.vault.setSecret('tag', `version ${v}`);
  };
  rotate(0);
  world.vault.setSecret('steady', 'steady-PLANTED');
  const { sidecar, outputDir } = await fetchThenRefresh(t, [
    { objectName: 'big', objectType: 'secret' },
    { objectName: 'tag', objectType: 'secret', objectAlias: 'conf/tag', filePermission: '0440' },
    { objectName: 'steady', objectType: 'secret' },
  ]);
  const first = await status(outputDir);
  t.match(first, { generation: await readlink(join(outputDir, '..data')), lastSuccess: String, lastError: null, consecutiveFailures: 0 });

  // Nothing changed: no new generation.
  const before = await snapshotDir(outputDir, '');
  t.match(await refreshNow(sidecar), { msg: 'refresh complete: nothing changed', changed: false, files: 3 });
  t.same(await generations(outputDir), [first.generation], 'the same generation');
  t.same((await snapshotDir(outputDir)).big, before.big);

  const shared = new Int32Array(new SharedArrayBuffer(4 * 3));
  const reader = new Worker(READER, { eval: true, workerData: { dir: outputDir, size, shared: shared.buffer } });
  const report = new Promise<{ reads: number; versions: number[]; bad: string[] }>((resolve, reject) => {
    reader.on('message', (m: unknown) => m !== 'ready' && resolve(m as { reads: number; versions: number[]; bad: string[] }));
    reader.on('error', reject);
  });
  await new Promise((resolve) => reader.once('message', resolve));
  t.teardown(() => reader.terminate());

  for (let v = 1; v <= 4; v++) {
    rotate(v);
    const outcome = await refreshNow(sidecar);
    t.match(outcome, { msg: 'refresh complete: a new generation published', changed: true, files: 3 }, `rotation ${v}`);
    t.same(await generations(outputDir), [outcome.generation], 'one generation: the new one');
    t.equal(await readFile(join(outputDir, 'conf/tag'), 'utf8'), `version ${v}`);
    t.equal((await lstat(join(outputDir, 'conf/tag'))).mode & 0o777, 0o440, 'the mode kept');
    t.match(await status(outputDir), { generation: outcome.generation, lastChange: String, lastError: null });
  }
  Atomics.store(shared, 0, 1);
  const seen = await report;
  t.same(seen.bad, [], `no mix, no partial file in ${seen.reads} reads`);
  t.ok(seen.versions.length >= 2, `the reader saw the files change (versions ${seen.versions.join(', ')})`);
  t.equal(await readFile(join(outputDir, 'steady'), 'utf8'), 'steady-PLANTED');
  const logs = JSON.stringify(sidecar.lines) + sidecar.stderr() + (await readFile(join(outputDir, '..akv-injector-status.json'), 'utf8'));
  t.notOk(logs.includes('PLANTED') || logs.includes('version 3'), 'no value in a log line or the status file');
  await stopped(t, sidecar);
});

t.test('Key Vault answering 503, then 429 past the deadline: the files stay, the status says why, Retry-After is honoured; then it recovers', async (t) => {
  world.vault.setSecret('flaky', 'old');
  const { sidecar, outputDir } = await fetchThenRefresh(t, [{ objectName: 'flaky', objectType: 'secret' }], { AKV_INJECTOR_TIMEOUT: '5s' });
  const before = await snapshotDir(outputDir);
  world.vault.setSecret('flaky', 'new');

  world.vault.addFault({ match: '/secrets/flaky', status: 503, times: 1_000 });
  const failed = await refreshNow(sidecar);
  t.match(failed, { msg: 'refresh failed: the files were kept as they were', failures: 1 });
  await waitFor('the summary on stderr', () => /secret "flaky": deadline of 5s exceeded; last error: Key Vault error \(503\)/.test(sidecar.stderr()));
  const after503 = await snapshotDir(outputDir);
  delete after503['..akv-injector-status.json'];
  delete before['..akv-injector-status.json'];
  t.same(after503, before, 'the published files untouched');
  t.match(await status(outputDir), { lastError: /secret "flaky": deadline of 5s exceeded/, consecutiveFailures: Number });
  const retry = await sidecar.waitForLine('the backoff', (l) => l.msg === 'next refresh', { from: sidecar.lines.indexOf(failed) });
  t.ok((retry.inMs as number) <= 5_000, `after a failure the next try comes soon (${String(retry.inMs)} ms), not an interval later`);

  // Key Vault recovers: the retry the backoff scheduled succeeds, with no signal.
  world.vault.clearFaults();
  const recovered = await sidecar.waitForLine('the retry', (l) => l.msg === 'refresh complete: a new generation published');
  t.match(recovered, { changed: true }, 'recovered by itself');
  await sidecar.waitForLine('the status written', (l) => l.msg === 'next refresh', { from: sidecar.lines.indexOf(recovered) });
  t.equal(await readFile(join(outputDir, 'flaky'), 'utf8'), 'new');
  t.match(await status(outputDir), { lastError: null, consecutiveFailures: 0 });

  // 429 with a Retry-After beyond the deadline: the refresh fails at once, and the next one waits that long.
  world.vault.setSecret('flaky', 'newer');
  world.vault.addFault({ match: '/secrets/flaky', status: 429, retryAfter: '7200', times: 1 });
  const throttled = await refreshNow(sidecar);
  t.match(throttled, { msg: 'refresh failed: the files were kept as they were', retryAfterMs: 7_200_000, failures: 1 });
  await waitFor('the summary on stderr', () => /Key Vault asked to wait 120m0s before trying again \(429 Retry-After\)/.test(sidecar.stderr()));
  const waited = await sidecar.waitForLine('the next wait', (l) => l.msg === 'next refresh', { from: sidecar.lines.indexOf(throttled) });
  t.ok((waited.inMs as number) >= 7_200_000, `the next refresh waits as long as Retry-After says (${String(waited.inMs)} ms)`);
  t.equal(await readFile(join(outputDir, 'flaky'), 'utf8'), 'new', 'the files kept');

  world.vault.addFault({ match: '/secrets/flaky', status: 429, retryAfter: '1', times: 1 });
  const from = sidecar.lines.length;
  t.match(await refreshNow(sidecar), { msg: 'refresh complete: a new generation published' }, 'recovered');
  t.ok(
    sidecar.lines.slice(from).some((l) => l.msg === 'retrying' && (l.delayMs as number) >= 1_000),
    'a Retry-After within the deadline is waited out inside the refresh',
  );
  t.equal(await readFile(join(outputDir, 'flaky'), 'utf8'), 'newer');
  t.match(await status(outputDir), { lastError: null, consecutiveFailures: 0 });
  await stopped(t, sidecar);
});

t.test('the token file replaced between refreshes: the new token is the assertion sent', async (t) => {
  world.vault.setSecret('rotating-token', 'v1');
  const { sidecar, tokenFile } = await fetchThenRefresh(t, [{ objectName: 'rotating-token', objectType: 'secret' }]);
  const expOf = (token: string): unknown => decodeJwt(token)?.payload.exp;
  const old = expOf(await readFile(tokenFile, 'utf8'));
  let sent = world.entra.requests.length;
  t.match(await refreshNow(sidecar), { msg: /^refresh complete/ });
  await waitFor('a token request with the first token', () => world.entra.requests.slice(sent).some((r) => r.assertion?.exp === old));

  const fresh = fakeServiceAccountToken({ issuer: ISSUER, subject: SUBJECT, lifetimeSeconds: 7_777 });
  // As the kubelet updates a projected volume: a new file put in place of the old in one step.
  await writeFile(`${tokenFile}.new`, fresh);
  await rename(`${tokenFile}.new`, tokenFile);
  sent = world.entra.requests.length;
  world.vault.setSecret('rotating-token', 'v2');
  t.match(await refreshNow(sidecar), { msg: 'refresh complete: a new generation published' });
  await waitFor('a token request with the new token', () => world.entra.requests.slice(sent).some((r) => r.assertion?.exp === expOf(fresh)));
  t.notOk(
    world.entra.requests.slice(sent).some((r) => r.assertion !== undefined && r.assertion.exp !== expOf(fresh)),
    'the old token is not sent again',
  );
  await stopped(t, sidecar);
});

t.test('a pinned version is never read again; an unpinned history re-reads its versions list', async (t) => {
  const v1 = world.vault.setSecret('pinned', 'pinned-one');
  world.vault.setSecret('hist', 'h1', { created: 1_700_000_000 });
  world.vault.setSecret('hist', 'h2', { created: 1_700_000_100 });
  const { sidecar, outputDir } = await fetchThenRefresh(t, [
    { objectName: 'pinned', objectType: 'secret', objectVersion: v1 },
    { objectName: 'hist', objectType: 'secret', objectVersionHistory: 2 },
  ]);
  world.vault.setSecret('pinned', 'pinned-two');
  world.vault.setSecret('hist', 'h3', { created: 1_700_000_200 });
  const from = world.vault.requests.length;
  t.match(await refreshNow(sidecar), { msg: 'refresh complete: a new generation published', files: 3 });
  const paths = world.vault.requests.slice(from).map((r) => r.path);
  t.notOk(
    paths.some((p) => p.includes('/secrets/pinned')),
    'no request for the pinned secret',
  );
  t.ok(
    paths.some((p) => p === '/secrets/hist/versions'),
    'the versions list read again',
  );
  t.equal(await readFile(join(outputDir, 'pinned'), 'utf8'), 'pinned-one');
  t.equal(await readFile(join(outputDir, 'hist/0'), 'utf8'), 'h3');
  t.equal(await readFile(join(outputDir, 'hist/1'), 'utf8'), 'h2');
  await stopped(t, sidecar);
});

t.test('SIGTERM during a refresh: exit within a second, nothing half-published', async (t) => {
  world.vault.setSecret('quick', 'q1');
  world.vault.setSecret('stuck', 's1');
  const { sidecar, outputDir } = await fetchThenRefresh(t, [
    { objectName: 'quick', objectType: 'secret' },
    { objectName: 'stuck', objectType: 'secret' },
  ]);
  world.vault.setSecret('quick', 'q2');
  world.vault.setSecret('stuck', 's2');
  world.vault.addFault({ match: '/secrets/stuck', raw: 'hang', times: 1_000 });
  const before = await snapshotDir(outputDir);
  const from = world.vault.requests.length;
  sidecar.signal('SIGHUP');
  await sidecar.waitForLine('the refresh started', (l) => l.msg === 'refresh now (SIGHUP)');
  // Both reads have reached the vault: the refresh is in the middle.
  await waitFor('both reads at the vault', () => {
    const paths = world.vault.requests.slice(from).map((r) => r.path);
    return paths.some((p) => p.startsWith('/secrets/quick')) && paths.some((p) => p.startsWith('/secrets/stuck'));
  });
  const sentAt = Number(process.hrtime.bigint()) / 1e6;
  sidecar.signal('SIGTERM');
  const { code, atMs } = await sidecar.exited;
  t.equal(code, 0);
  t.ok(atMs - sentAt < 1_000, `exited ${Math.round(atMs - sentAt)} ms after SIGTERM`);
  const after = await snapshotDir(outputDir);
  delete after['..akv-injector-status.json'];
  delete before['..akv-injector-status.json'];
  t.same(after, before, 'the published set exactly as before: no new generation, no ..data_tmp');
  world.vault.clearFaults();
});

t.test('invalid environment: exit 2 naming the interval', async (t) => {
  const job = await world.job([{ objectName: 'x', objectType: 'secret' }]);
  const env = world.childEnv(job, [{ objectName: 'x', objectType: 'secret' }], { AKV_INJECTOR_REFRESH_INTERVAL: '5s' });
  const result = await runCli(cliPath, ['refresh'], env, world.dir);
  t.equal(result.code, 2);
  t.match(result.stderr, /AKV_INJECTOR_REFRESH_INTERVAL "5s" must be a duration from 30s to 24h/);
  const unset = await runCli(cliPath, ['refresh'], { ...env, AKV_INJECTOR_REFRESH_INTERVAL: '' }, world.dir);
  t.match(unset, { code: 2, stderr: /AKV_INJECTOR_REFRESH_INTERVAL is not set/ });
});

// Plain CommonJS so the worker needs no loader. Through one readlink of ..data (a set-consistent reader) `big` and
// `conf/tag` must be of one version, `big` whole; through the visible link `big` must be whole. ENOENT is counted:
// a path resolved into the old generation just as it is removed.
const READER = `
const { readFileSync, readlinkSync } = require('node:fs');
const { join } = require('node:path');
const { workerData, parentPort } = require('node:worker_threads');
const { dir, size } = workerData;
const shared = new Int32Array(workerData.shared);
const report = { reads: 0, versions: [], bad: [] };
function versionOfBig(text, where) {
  if (text.length !== size || text !== text[0].repeat(size)) { report.bad.push(where + ': big is partial or mixed (' + text.length + ' bytes)'); return -1; }
  return Number(text[0]);
}
parentPort.postMessage('ready');
while (Atomics.load(shared, 0) === 0) {
  try {
    versionOfBig(readFileSync(join(dir, 'big'), 'utf8'), 'visible');
    const base = join(dir, readlinkSync(join(dir, '..data')));
    const big = versionOfBig(readFileSync(join(base, 'big'), 'utf8'), 'set');
    const tag = readFileSync(join(base, 'conf/tag'), 'utf8');
    if (tag !== 'version ' + big) report.bad.push('set: big is ' + big + ' but conf/tag says ' + JSON.stringify(tag));
    if (!report.versions.includes(big)) report.versions.push(big);
    report.reads++;
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
}
parentPort.postMessage(report);
`;
