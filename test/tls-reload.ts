// The HTTPS listener takes a new certificate without dropping anything: Secret-volume swaps, in-place rewrites, bad pairs.
import t, { type Test } from 'tap';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { publishFiles } from '../src/atomic-writer.js';
import { generateCa, generateServingCert } from '../src/certs.js';
import type { AdmissionRequest } from '../webhook/admission.js';
import type { MutationResult } from '../webhook/mutate.js';
import { buildApp } from '../webhook/server.js';
import { createTlsReloader, type TlsReloaderOptions } from '../webhook/tls-reloader.js';
import { captureLog, type LogCapture, type LogLine } from './fixtures/log-capture.js';
import { makeTestPki, type TestPki } from './fixtures/tls.js';

// Two unrelated CAs (makeTestPki memoizes per host list, so two orders give two PKIs).
const pkiA = makeTestPki(['127.0.0.1', 'localhost']);
const pkiB = makeTestPki(['localhost', '127.0.0.1']);
const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;
const FP_A = fingerprint(pkiA.certPem);
const FP_B = fingerprint(pkiB.certPem);

const allowAll = async (request: AdmissionRequest): Promise<MutationResult> => ({
  outcome: 'skipped',
  reason: 'test',
  response: { uid: request.uid, allowed: true },
});

interface Harness {
  port: number;
  dir: string;
  certFile: string;
  keyFile: string;
  logs: LogCapture['lines'];
  logged: LogCapture['logged'];
  reloader: ReturnType<typeof createTlsReloader>;
}

/** Publish the pair the way the kubelet updates a Secret volume: a new `..<timestamp>` directory and a `..data` symlink swap. */
async function secretVolume(dir: string, pki: Pick<TestPki, 'certPem' | 'keyPem'>): Promise<void> {
  await publishFiles(dir, [
    { path: 'tls.crt', data: Buffer.from(pki.certPem), mode: 0o644 },
    { path: 'tls.key', data: Buffer.from(pki.keyPem), mode: 0o600 },
  ]);
}

/** The webhook app over HTTPS on 127.0.0.1:0 with a reloader on dir/tls.crt and dir/tls.key, as main wires it. */
async function start(t: Test, dir: string, options: Partial<TlsReloaderOptions> = {}): Promise<Harness & { started: boolean }> {
  const { logger, lines, logged } = captureLog('webhook', 'debug');
  const certFile = path.join(dir, 'tls.crt');
  const keyFile = path.join(dir, 'tls.key');
  const reloader = createTlsReloader({ certFile, keyFile, logger, debounceMs: 50, pollMs: 60_000, retryMs: 100, ...options });
  const started = await reloader.start();
  const app = buildApp({ mutator: allowAll, logger, https: reloader.serverOptions() });
  if (!(app.server instanceof https.Server)) throw new Error('expected an HTTPS server');
  reloader.attach(app.server);
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    reloader.stop();
    await app.close();
  });
  const port = (app.server.address() as AddressInfo).port;
  return { port, dir, certFile, keyFile, reloader, started, logs: lines, logged };
}

/** The reloader has put the pair with this fingerprint in place: it logs that after giving it to the server. */
const reloadedTo =
  (fp: string) =>
  (line: LogLine): boolean =>
    /^TLS certificate (re)?loaded$/.test(String(line.msg)) && line.fingerprint256 === fp;

/** The fingerprint of the certificate a new connection is shown (verified against `cas`). */
function presented(port: number, cas: string[] = [pkiA.caCertPem, pkiB.caCertPem], extra: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: cas, ...extra }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fp);
    });
    socket.on('error', reject);
  });
}

function postMutate(port: number, agent: https.Agent, uid: string): Promise<{ status: number; reused: boolean; fp: string }> {
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid, operation: 'CREATE', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' } },
  });
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const fp = (res.socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, fp }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

t.test('Secret volume swap: new connections get cert B, a connection opened before keeps working', async (t) => {
  const dir = t.testdir();
  await secretVolume(dir, pkiA);
  const h = await start(t, dir);
  t.ok(h.started, 'cert A loaded at start');
  t.ok(h.reloader.loaded());
  t.equal(await presented(h.port, [pkiA.caCertPem]), FP_A, 'a client trusting only CA A connects');

  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: [pkiA.caCertPem] });
  t.teardown(() => agent.destroy());
  const before = await postMutate(h.port, agent, 'before');
  t.same({ status: before.status, fp: before.fp }, { status: 200, fp: FP_A });

  await secretVolume(dir, pkiB);
  // Only the watch can see it this soon: the poll is 60 s here.
  await h.logged('cert B reloaded after the swap', reloadedTo(FP_B));
  t.equal(await presented(h.port), FP_B, 'new connections are shown cert B');
  t.equal(await presented(h.port, [pkiB.caCertPem]), FP_B, 'a client trusting only CA B connects');
  await t.rejects(presented(h.port, [pkiA.caCertPem]), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'CA A no longer verifies new connections');

  const after = await postMutate(h.port, agent, 'after');
  t.same(after, { status: 200, reused: true, fp: FP_A }, 'the kept-alive connection from before the swap still works, on cert A');
  t.match(
    h.logs().filter((l) => l.msg === 'TLS certificate reloaded'),
    [{ fingerprint256: FP_B }],
  );
});

t.test('in-place rewrite (cert-manager style): picked up by the watch', async (t) => {
  const dir = t.testdir({ 'tls.crt': pkiA.certPem, 'tls.key': pkiA.keyPem });
  const h = await start(t, dir);
  t.equal(await presented(h.port), FP_A);
  await writeFile(h.keyFile, pkiB.keyPem);
  await writeFile(h.certFile, pkiB.certPem);
  await h.logged('cert B reloaded after an in-place rewrite', reloadedTo(FP_B));
  t.equal(await presented(h.port), FP_B, 'new connections are shown cert B');
});

t.test('a mismatched pair is ignored with a warning and read again until it matches', async (t) => {
  const dir = t.testdir({ 'tls.crt': pkiA.certPem, 'tls.key': pkiA.keyPem });
  // No watch and a long poll: only the retry after a bad pair can pick up the fix.
  const h = await start(t, dir, { watch: false, retryMs: 100 });
  await writeFile(h.certFile, pkiB.certPem);
  t.equal(await h.reloader.reload(), 'invalid', 'cert B with key A is refused');
  t.equal(await presented(h.port), FP_A, 'cert A is still served');
  t.match(
    h.logs().find((l) => l.msg === 'TLS certificate and key ignored'),
    {
      level: 'warn',
      problem: /the private key does not belong to the certificate/,
      serving: 'the previous certificate',
    },
  );
  t.ok(h.reloader.loaded(), 'still ready: the previous pair stays loaded');

  // The retries that follow say the same problem again, at debug.
  const retried = (line: LogLine): boolean => line.msg === 'TLS certificate and key ignored' && line.level === 'debug';
  await h.logged('two retries of the bad pair', retried, 2);
  t.equal(await presented(h.port), FP_A, 'retries with the same bad pair change nothing');
  await writeFile(h.keyFile, pkiB.keyPem);
  await h.logged('the retry picks up the matching key', reloadedTo(FP_B));
  t.equal(await presented(h.port), FP_B, 'cert B served once the key matches');
  t.equal(h.logs().filter((l) => l.msg === 'TLS certificate and key ignored' && l.level === 'warn').length, 1, 'one warning per distinct problem');

  await writeFile(h.keyFile, 'not a key');
  t.equal(await h.reloader.reload(), 'invalid');
  t.match(h.logs().at(-1), { msg: 'TLS certificate and key ignored', problem: /no unencrypted PEM private key/ });
  await writeFile(h.certFile, 'not a certificate');
  t.equal(await h.reloader.reload(), 'invalid');
  t.match(h.logs().at(-1), { msg: 'TLS certificate and key ignored', problem: /no PEM certificate/ });
  t.equal(await presented(h.port), FP_B, 'garbage never replaces a good pair');
});

t.test('the poll catches what no watch reports', async (t) => {
  const dir = t.testdir();
  await secretVolume(dir, pkiA);
  const h = await start(t, dir, { watch: false, pollMs: 200 });
  await secretVolume(dir, pkiB);
  await h.logged('cert B reloaded by polling', reloadedTo(FP_B));
  t.equal(await presented(h.port), FP_B, 'new connections are shown cert B');
});

t.test('no files at start: not loaded, handshakes fail, then served as soon as they appear', async (t) => {
  const dir = t.testdir();
  const h = await start(t, dir);
  t.notOk(h.started);
  t.notOk(h.reloader.loaded());
  t.match(h.reloader.problem(), /cannot read the certificate or key: ENOENT/);
  // OpenSSL 3.0 (Node 20) and 3.5 (Node 24) name the same alert differently.
  await t.rejects(presented(h.port), { code: /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/ }, 'no certificate to present');
  await secretVolume(dir, pkiA);
  await h.logged('cert A loaded once the Secret volume is filled', reloadedTo(FP_A));
  t.equal(await presented(h.port), FP_A, 'cert A is shown');
  t.ok(h.reloader.loaded());
  t.equal(h.reloader.problem(), undefined);
});

t.test('TLS 1.2 is the minimum, before and after a reload', async (t) => {
  const tls11: tls.ConnectionOptions = { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };
  // Control: this client can speak TLS 1.1 to a server that allows it, so a refusal below is the webhook's.
  const permissive = tls.createServer({ cert: pkiA.certPem, key: pkiA.keyPem, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, (s) => s.end());
  await new Promise<void>((resolve) => permissive.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => permissive.close(() => resolve())));
  t.equal(await presented((permissive.address() as AddressInfo).port, [pkiA.caCertPem], tls11), FP_A, 'control: the TLS 1.1 client works where 1.1 is allowed');

  const dir = t.testdir();
  await secretVolume(dir, pkiA);
  const h = await start(t, dir);
  await t.rejects(presented(h.port, undefined, tls11), { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, 'TLS 1.1 refused');
  t.equal(await presented(h.port, undefined, { maxVersion: 'TLSv1.2' }), FP_A, 'TLS 1.2 accepted');
  await secretVolume(dir, pkiB);
  await h.logged('cert B reloaded', reloadedTo(FP_B));
  t.equal(await presented(h.port, undefined, { maxVersion: 'TLSv1.2' }), FP_B, 'TLS 1.2 accepted with cert B');
  await t.rejects(presented(h.port, undefined, tls11), { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, 'TLS 1.1 still refused after the reload');
});

/** A CA and a serving certificate for 127.0.0.1 and localhost, both valid `validityDays` from now. */
async function servingPair(validityDays: number): Promise<TestPki> {
  const ca = await generateCa({ commonName: `akv-injector test CA, ${validityDays} days`, validityDays });
  const serving = await generateServingCert(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays });
  return { caCertPem: ca.certPem, certPem: serving.certPem, keyPem: serving.keyPem };
}

const expiresIn =
  (fp: string) =>
  (line: LogLine): boolean =>
    line.level === 'warn' && / expires in /.test(String(line.msg)) && line.fingerprint256 === fp;
const expiryChecked =
  (fp: string) =>
  (line: LogLine): boolean =>
    line.msg === 'TLS certificate expiry checked' && line.fingerprint256 === fp;

t.test('fewer than 30 days left: warned at load and again every check, until a fresh certificate is served', async (t) => {
  const [shortLived, longLived] = await Promise.all([servingPair(10), servingPair(400)]);
  const FP_SHORT = fingerprint(shortLived.certPem);
  const FP_LONG = fingerprint(longLived.certPem);
  const dir = t.testdir();
  await secretVolume(dir, shortLived);
  // A day between checks, shortened.
  const h = await start(t, dir, { expiryCheckMs: 100 });
  const loaded = h.logs().findIndex(reloadedTo(FP_SHORT));
  t.match(
    h.logs()[loaded + 1],
    { level: 'warn', daysLeft: 9, notAfter: new Date(new X509Certificate(shortLived.certPem).validTo).toISOString() },
    'warned as it loads',
  );
  t.same(h.reloader.certificate(), { notAfter: new Date(new X509Certificate(shortLived.certPem).validTo) });
  await h.logged('warned again at the next two checks', expiresIn(FP_SHORT), 3);

  await secretVolume(dir, longLived);
  const reloaded = await h.logged('the 400-day certificate reloaded', reloadedTo(FP_LONG));
  t.same(h.reloader.certificate(), { notAfter: new Date(new X509Certificate(longLived.certPem).validTo) });
  // Two checks of the fresh certificate: its checks have replaced the old one's.
  await h.logged('the fresh certificate checked twice', expiryChecked(FP_LONG), 2);
  const since = h.logs().slice(h.logs().indexOf(reloaded));
  t.match(since.filter(expiryChecked(FP_LONG)), [
    { level: 'debug', daysLeft: 399 },
    { level: 'debug', daysLeft: 399 },
  ]);
  t.same(
    since.filter((line) => line.level === 'warn'),
    [],
    'no warning since the fresh certificate was served',
  );
});

t.test('a certificate that reaches the warning while served is warned about then, after the renewal grace, without a reload', async (t) => {
  const pki = await servingPair(10);
  const fp = fingerprint(pki.certPem);
  const dir = t.testdir();
  await secretVolume(dir, pki);
  const now = Date.now();
  const leftMs = Date.parse(new X509Certificate(pki.certPem).validTo) - now;
  // Already inside a warning window that began 10 s ago, with a grace that ends 1 s from now: a renewal due
  // at the window's start would still have that second to reach the files.
  const dueAt = now + 1000;
  const h = await start(t, dir, { expiryWarningMs: leftMs + 10_000, renewalGraceMs: 11_000 });
  t.match(h.logs().find(expiryChecked(fp)), { level: 'debug', daysLeft: 9 }, 'not warned at load: inside the grace');
  const warning = await h.logged('warned once the grace is over', expiresIn(fp));
  const warnedAt = Date.parse(String(warning.time));
  t.ok(warnedAt >= dueAt, `warned after the grace (${warnedAt - dueAt} ms past it)`);
  t.match(warning, { daysLeft: 9, certFile: h.certFile, msg: /expires in 9 days, at .*; renew it: / });
  t.equal(h.logs().filter(reloadedTo(fp)).length, 1, 'no reload: the timer found it');
});
