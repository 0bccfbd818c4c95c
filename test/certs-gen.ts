// src/certs.ts: a CA and a serving certificate that a real TLS client accepts for every SAN, with the CA as its only root.
import t from 'tap';
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import forge from 'node-forge';
import { generateCa, generateServingCert, issueCa, issueServingCert, type CertificateAndKey } from '../src/certs.js';

const DNS_NAMES = ['akv-injector.akv-injector.svc', 'akv-injector.akv-injector.svc.cluster.local', 'localhost', '*.webhooks.example.test'];
const IP_ADDRESSES = ['127.0.0.1', '::1'];

const ca = await generateCa({ commonName: 'akv-injector CA', validityDays: 3650 });
const serving = await generateServingCert(ca, { dnsNames: DNS_NAMES, ipAddresses: IP_ADDRESSES, validityDays: 365 });

/** A TLS server with `pair` on `host`; resolves its port. */
async function serve(t: { teardown(fn: () => unknown): void }, pair: CertificateAndKey, host: string): Promise<number> {
  const server = tls.createServer({ cert: pair.certPem, key: pair.keyPem, minVersion: 'TLSv1.2' }, (socket) => socket.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** Connect trusting only `caPem`; resolves what the server said, rejects with the TLS error. */
function handshake(host: string, port: number, servername: string | undefined, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, ca: [caPem], ...(servername === undefined ? {} : { servername }) }, () => {
      if (!socket.authorized) reject(new Error(`not authorized: ${String(socket.authorizationError)}`));
    });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

t.test('a real handshake succeeds for every SAN with the generated CA as the only trust root', async (t) => {
  const port4 = await serve(t, serving, '127.0.0.1');
  const port6 = await serve(t, serving, '::1');
  for (const name of DNS_NAMES) {
    const servername = name.replace('*', 'mutate');
    t.equal(await handshake('127.0.0.1', port4, servername, ca.certPem), 'hello', `DNS name ${servername}`);
  }
  t.equal(await handshake('127.0.0.1', port4, undefined, ca.certPem), 'hello', 'IP address 127.0.0.1');
  t.equal(await handshake('::1', port6, undefined, ca.certPem), 'hello', 'IP address ::1');

  await t.rejects(handshake('127.0.0.1', port4, 'other.akv-injector.svc', ca.certPem), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }, 'a name not in the SANs');
  await t.rejects(
    handshake('127.0.0.1', port4, 'a.b.webhooks.example.test', ca.certPem),
    { code: 'ERR_TLS_CERT_ALTNAME_INVALID' },
    'a wildcard covers one label only',
  );
  const otherCa = await generateCa({ commonName: 'akv-injector CA', validityDays: 30 });
  await t.rejects(
    handshake('127.0.0.1', port4, 'localhost', otherCa.certPem),
    { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
    'another CA with the same name is not trusted',
  );
});

t.test('the CA: a CA by its extensions, self-signed, with a real subject', async (t) => {
  const x509 = new X509Certificate(ca.certPem);
  t.ok(x509.ca, 'basicConstraints CA:true');
  t.ok(x509.verify(x509.publicKey), 'self-signed');
  t.equal(x509.subject, 'CN=akv-injector CA\nO=akv-injector');
  t.equal(x509.issuer, x509.subject);
  const cert = forge.pki.certificateFromPem(ca.certPem);
  t.match(cert.getExtension('basicConstraints'), { cA: true, critical: true });
  t.match(cert.getExtension('keyUsage'), { keyCertSign: true, cRLSign: true, critical: true });
  t.ok(cert.getExtension('subjectKeyIdentifier'));
  const days = (Date.parse(x509.validTo) - Date.now()) / 86_400_000;
  t.ok(days > 3649 && days <= 3650, `valid for 3650 days (${days.toFixed(2)})`);
  t.ok(Date.parse(x509.validFrom) < Date.now(), 'valid from before now (clock skew)');
  t.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8 key');
  t.match(ca.certPem, /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/, 'one PEM block with LF line ends');
  t.notOk(`${ca.certPem}${ca.keyPem}${serving.certPem}${serving.keyPem}`.includes('\r'), 'no CR anywhere');
  t.equal(createPrivateKey(ca.keyPem).asymmetricKeyDetails?.modulusLength, 2048);
});

t.test('the serving certificate: server usages and SANs, signed by the CA', async (t) => {
  const x509 = new X509Certificate(serving.certPem);
  const caX509 = new X509Certificate(ca.certPem);
  t.notOk(x509.ca, 'not a CA');
  t.ok(x509.checkIssued(caX509), 'issued by the CA');
  t.ok(x509.verify(caX509.publicKey), 'signed by the CA key');
  t.ok(x509.checkPrivateKey(createPrivateKey(serving.keyPem)), 'the key belongs to the certificate');
  t.equal(x509.subject, 'CN=akv-injector.akv-injector.svc\nO=akv-injector');
  t.equal(x509.issuer, caX509.subject);
  t.same(x509.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extended key usage: serverAuth only');
  t.equal(
    x509.subjectAltName,
    'DNS:akv-injector.akv-injector.svc, DNS:akv-injector.akv-injector.svc.cluster.local, DNS:localhost, DNS:*.webhooks.example.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
  );
  const cert = forge.pki.certificateFromPem(serving.certPem);
  t.match(cert.getExtension('keyUsage'), { digitalSignature: true, keyEncipherment: true, critical: true });
  t.notOk((cert.getExtension('keyUsage') as { keyCertSign?: boolean }).keyCertSign, 'cannot sign certificates');
  t.match(cert.getExtension('basicConstraints'), { cA: false, critical: true });
  // forge does not decode this extension when reading: AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier, ... }
  const aki = cert.getExtension('authorityKeyIdentifier') as { value: string };
  const keyIdentifier = (forge.asn1.fromDer(aki.value).value as forge.asn1.Asn1[])[0]?.value;
  const caSki = forge.pki.certificateFromPem(ca.certPem).generateSubjectKeyIdentifier().getBytes();
  t.equal(keyIdentifier, caSki, "authorityKeyIdentifier is the CA's key identifier");
  const days = (Date.parse(x509.validTo) - Date.now()) / 86_400_000;
  t.ok(days > 364 && days <= 365, `valid for 365 days (${days.toFixed(2)})`);
});

t.test('serial numbers: random, positive, 16 bytes, never repeated', async (t) => {
  const more = await Promise.all([
    generateServingCert(ca, { dnsNames: ['localhost'], validityDays: 1 }),
    generateServingCert(ca, { dnsNames: ['localhost'], validityDays: 1 }),
    generateCa({ commonName: 'another', validityDays: 1 }),
  ]);
  const serials = [ca, serving, ...more].map((pair) => new X509Certificate(pair.certPem).serialNumber);
  t.equal(new Set(serials).size, serials.length, `all different: ${serials.join(' ')}`);
  for (const serial of serials) {
    t.match(serial, /^[0-9A-F]{32}$/, '16 bytes');
    t.ok(Number.parseInt(serial.slice(0, 2), 16) >= 0x40 && Number.parseInt(serial.slice(0, 2), 16) < 0x80, 'positive, minimal DER');
  }
});

t.test('bad input is refused with every problem named', async (t) => {
  await t.rejects(generateCa({ commonName: ' ', validityDays: 0 }), {
    message: /cannot generate the CA: validityDays must be a whole number of days from 1 to 36500, got 0; commonName must not be empty/,
  });
  await t.rejects(generateServingCert(ca, { dnsNames: ['bad name', 'ok.example'], ipAddresses: ['300.1.1.1'], validityDays: 1.5 }), {
    message: /validityDays .* got 1\.5; "bad name" is not a DNS name; "300\.1\.1\.1" is not an IP address/,
  });
  await t.rejects(generateServingCert(ca, { dnsNames: [], validityDays: 1 }), { message: /at least one DNS name or IP address/ });
  await t.rejects(generateServingCert(serving, { dnsNames: ['x'], validityDays: 1 }), { message: /not a CA/ }, 'a leaf cannot act as the CA');
  await t.rejects(generateServingCert({ certPem: ca.certPem, keyPem: serving.keyPem }, { dnsNames: ['x'], validityDays: 1 }), {
    message: /the CA key does not belong to the CA certificate/,
  });
  await t.rejects(generateServingCert({ certPem: 'nope', keyPem: 'nope' }, { dnsNames: ['x'], validityDays: 1 }), {
    message: /not an RSA certificate and key in PEM/,
  });
});

t.test('issueCa and issueServingCert sign with the key they are given, at once', async (t) => {
  const rsaKey = (): KeyObject => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const [caKey, servingKey] = [rsaKey(), rsaKey()];
  const issuedCa = issueCa({ commonName: 'given key CA', validityDays: 1 }, caKey);
  const issued = issueServingCert(issuedCa, { dnsNames: ['localhost'], validityDays: 1 }, servingKey);
  t.ok(new X509Certificate(issuedCa.certPem).checkPrivateKey(caKey), 'the CA holds the given key');
  t.ok(new X509Certificate(issued.certPem).checkPrivateKey(servingKey), 'the serving certificate holds the given key');
  t.equal(
    createPrivateKey(issued.keyPem).export({ type: 'pkcs8', format: 'pem' }),
    servingKey.export({ type: 'pkcs8', format: 'pem' }),
    'and returns it as PKCS#8',
  );
  t.ok(new X509Certificate(issued.certPem).verify(createPublicKey(caKey)), 'signed by the CA');
  t.throws(() => issueServingCert(issuedCa, { dnsNames: ['bad name'], validityDays: 1 }, servingKey), { message: /"bad name" is not a DNS name/ });
});
