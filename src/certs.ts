// A certificate authority and the webhook's serving certificate: RSA keys from node:crypto, X.509 from node-forge.
import { generateKeyPair as generateKeyPairCallback, randomBytes, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { isHostName } from './dns-names.js';

const generateKeyPair = promisify(generateKeyPairCallback);

export const ONE_DAY_MS = 24 * 60 * 60 * 1000;
// Back-date notBefore a little: a node whose clock runs behind must not see a certificate from the future.
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const RSA_BITS = 2048;
const ORGANIZATION = 'akv-injector';

/** A certificate and its private key, as PEM (the key is PKCS#8, `BEGIN PRIVATE KEY`). */
export interface CertificateAndKey {
  certPem: string;
  keyPem: string;
}

export interface CaOptions {
  commonName: string;
  validityDays: number;
}

export interface ServingCertOptions {
  /** DNS names for the subjectAltName; the first is also the subject's common name. Wildcards allowed. */
  dnsNames: readonly string[];
  ipAddresses?: readonly string[];
  validityDays: number;
  /** Never valid past this moment (e.g. the CA's own notAfter), however many days were asked for. */
  notAfter?: Date;
}

/** A self-signed CA that may sign certificates (keyCertSign, cRLSign, basicConstraints CA:true), with a new RSA key. */
export async function generateCa(options: CaOptions): Promise<CertificateAndKey> {
  return issueCa(options, await generateRsaKey());
}

/** The CA of generateCa for the RSA key given, e.g. one generated synchronously. */
export function issueCa(options: CaOptions, privateKey: KeyObject): CertificateAndKey {
  const problems = [...validityProblems(options.validityDays)];
  if (options.commonName.trim() === '') problems.push('commonName must not be empty');
  throwIfAny('cannot generate the CA', problems);

  const keys = forgeKeys(privateKey);
  const subject = [
    { name: 'commonName', value: options.commonName },
    { name: 'organizationName', value: ORGANIZATION },
  ];
  const cert = newCertificate(keys.forgePublic, subject, subject, options.validityDays);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.forgePrivate, forge.md.sha256.create());
  return { certPem: toPem(cert), keyPem: keys.pkcs8Pem };
}

/** A TLS server certificate signed by `ca`, for the given DNS names and IP addresses, with a new RSA key. */
export async function generateServingCert(ca: CertificateAndKey, options: ServingCertOptions): Promise<CertificateAndKey> {
  return issueServingCert(ca, options, await generateRsaKey());
}

/** The serving certificate of generateServingCert for the RSA key given, e.g. one generated synchronously. */
export function issueServingCert(ca: CertificateAndKey, options: ServingCertOptions, privateKey: KeyObject): CertificateAndKey {
  const ipAddresses = options.ipAddresses ?? [];
  const problems = [...validityProblems(options.validityDays)];
  if (options.dnsNames.length === 0 && ipAddresses.length === 0) problems.push('give at least one DNS name or IP address');
  for (const name of options.dnsNames) if (!isHostName(name)) problems.push(`${JSON.stringify(name)} is not a DNS name`);
  for (const ip of ipAddresses) if (isIP(ip) === 0) problems.push(`${JSON.stringify(ip)} is not an IP address`);
  const caCert = parseCa(ca, problems);
  throwIfAny('cannot generate the serving certificate', problems);
  if (caCert === undefined) throw new Error('unreachable: the CA parsed with no problem reported');

  const keys = forgeKeys(privateKey);
  const commonName = options.dnsNames[0] ?? ipAddresses[0] ?? '';
  const subject = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: ORGANIZATION },
  ];
  const cert = newCertificate(keys.forgePublic, subject, caCert.certificate.subject.attributes, options.validityDays);
  if (options.notAfter !== undefined && options.notAfter < cert.validity.notAfter) cert.validity.notAfter = options.notAfter;
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...options.dnsNames.map((value) => ({ type: 2, value })), ...ipAddresses.map((ip) => ({ type: 7, ip }))],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.certificate.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caCert.privateKey, forge.md.sha256.create());
  return { certPem: toPem(cert), keyPem: keys.pkcs8Pem };
}

// node-forge writes CRLF line ends; PEM files in Kubernetes (and node:crypto's) use LF.
function toPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

function newCertificate(
  publicKey: forge.pki.rsa.PublicKey,
  subject: forge.pki.CertificateField[],
  issuer: forge.pki.CertificateField[],
  validityDays: number,
): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now + validityDays * ONE_DAY_MS);
  cert.setSubject(subject);
  cert.setIssuer(issuer);
  return cert;
}

/**
 * 16 random bytes as a positive DER INTEGER: the first byte is forced into 0x40–0x7f, so the sign
 * bit is clear and there is no leading zero byte (which would not be minimal DER).
 */
function randomSerial(): string {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
  return serial.toString('hex');
}

interface ParsedCa {
  certificate: forge.pki.Certificate;
  privateKey: forge.pki.rsa.PrivateKey;
}

function parseCa(ca: CertificateAndKey, problems: string[]): ParsedCa | undefined {
  let certificate: forge.pki.Certificate;
  let privateKey: forge.pki.rsa.PrivateKey;
  try {
    certificate = forge.pki.certificateFromPem(ca.certPem);
    privateKey = forge.pki.privateKeyFromPem(ca.keyPem);
  } catch (error) {
    problems.push(`the CA is not an RSA certificate and key in PEM: ${(error as Error).message}`);
    return undefined;
  }
  const caPublic = certificate.publicKey as forge.pki.rsa.PublicKey;
  if (caPublic.n.compareTo(privateKey.n) !== 0) problems.push('the CA key does not belong to the CA certificate');
  const constraints = certificate.getExtension('basicConstraints') as { cA?: boolean } | undefined;
  if (constraints?.cA !== true) problems.push('the CA certificate is not a CA (basicConstraints CA:true missing)');
  return { certificate, privateKey };
}

interface KeyPair {
  forgePrivate: forge.pki.rsa.PrivateKey;
  forgePublic: forge.pki.rsa.PublicKey;
  pkcs8Pem: string;
}

// node:crypto generates RSA keys natively (off the main thread), far faster than node-forge's JavaScript.
async function generateRsaKey(): Promise<KeyObject> {
  const { privateKey } = (await generateKeyPair('rsa', { modulusLength: RSA_BITS })) as { privateKey: KeyObject };
  return privateKey;
}

function forgeKeys(privateKey: KeyObject): KeyPair {
  const forgePrivate = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
  return {
    forgePrivate,
    forgePublic: forge.pki.setRsaPublicKey(forgePrivate.n, forgePrivate.e),
    pkcs8Pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function validityProblems(days: number): string[] {
  return Number.isInteger(days) && days >= 1 && days <= 36500 ? [] : [`validityDays must be a whole number of days from 1 to 36500, got ${days}`];
}

function throwIfAny(what: string, problems: readonly string[]): void {
  if (problems.length > 0) throw new Error(`${what}: ${problems.join('; ')}`);
}
