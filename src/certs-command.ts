// `akv-injector certs`: a CA and a serving certificate for the webhook's Service, as files, as a kubernetes.io/tls
// Secret in cert-manager's layout (tls.crt, tls.key, ca.crt), and as the kustomize patch that puts the CA bundle
// into both webhooks.
//
// The CA is made once and kept (ca.key): `--renew` issues a new serving certificate from it, so the caBundle the
// API server holds never changes. `--force` makes a new CA; the bundle then trusts the new and the replaced CA
// together, so that the API server accepts whichever certificate a webhook replica serves while the kubelet
// moves it to the new Secret. Nothing is overwritten unless asked.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { generateCa, generateServingCert, ONE_DAY_MS, type CertificateAndKey } from './certs.js';
import { isDnsLabel, isDnsSubdomain } from './dns-names.js';

export type CertsMode = 'new' | 'renew' | 'force';

export interface CertsFlags {
  service: string;
  namespace: string;
  outDir: string;
  secretName: string;
  /** Days the serving certificate is valid (never past the CA). */
  validityDays: number;
  /** Days a new CA is valid. */
  caValidityDays: number;
  /** `new`: refuse when the folder already holds a CA; `renew`: keep it; `force`: replace it. */
  mode: CertsMode;
}

/** What the base's MutatingWebhookConfiguration is named, and its two webhooks (manifests/base/mutating-webhook.yaml). */
export const WEBHOOK_CONFIGURATION = 'akv-injector';
export const WEBHOOK_NAMES = ['pods.akv-injector.io', 'namespaces.akv-injector.io'] as const;

/** The files `certs` writes into --out-dir, in this order. */
export const CERTS_FILES = ['ca.crt', 'ca.key', 'tls.crt', 'tls.key', 'tls-secret.yaml', 'ca-bundle.crt', 'ca-bundle.yaml'] as const;

/** A refusal to go on, for the user: the CLI prints the message and exits 1. Nothing has been written. */
export class CertsRefusal extends Error {
  override name = 'CertsRefusal';
}

/** The Service's in-cluster names, as the API server dials it: svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

export function parseCertsFlags(args: string[]): { flags?: CertsFlags; problems: string[] } {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        service: { type: 'string' },
        namespace: { type: 'string' },
        'out-dir': { type: 'string' },
        'secret-name': { type: 'string' },
        'validity-days': { type: 'string' },
        'ca-validity-days': { type: 'string' },
        renew: { type: 'boolean' },
        force: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (error) {
    return { problems: [(error as Error).message] };
  }
  const text = (name: string): string | undefined => values[name] as string | undefined;
  const problems: string[] = [];
  const service = text('service') ?? '';
  const namespace = text('namespace') ?? '';
  const outDir = text('out-dir') ?? '';
  if (!isDnsLabel(service)) problems.push(`--service ${JSON.stringify(service)} must be the webhook's Service name (a DNS-1123 label)`);
  if (!isDnsLabel(namespace)) problems.push(`--namespace ${JSON.stringify(namespace)} must be the Service's namespace (a DNS-1123 label)`);
  if (outDir === '') problems.push(`--out-dir is required: the folder to write ${CERTS_FILES.join(', ')} into`);
  const secretName = text('secret-name') ?? `${service}-tls`;
  if (!isDnsSubdomain(secretName)) problems.push(`--secret-name ${JSON.stringify(secretName)} is not a valid Secret name`);
  const validityDays = days('--validity-days', text('validity-days') ?? '365', problems);
  const caValidityDays = days('--ca-validity-days', text('ca-validity-days') ?? '3650', problems);
  if (values.renew === true && values.force === true)
    problems.push('--renew and --force exclude each other: --renew keeps the CA and issues a new serving certificate, --force replaces the CA');
  if (values.renew === true && text('ca-validity-days') !== undefined) problems.push('--ca-validity-days applies to a new CA: --renew keeps the CA it finds');
  if (problems.length > 0) return { problems };
  const mode: CertsMode = values.renew === true ? 'renew' : values.force === true ? 'force' : 'new';
  return { problems, flags: { service, namespace, outDir, secretName, validityDays, caValidityDays, mode } };
}

function days(flag: string, value: string, problems: string[]): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < 1 || parsed > 3650) problems.push(`${flag} ${JSON.stringify(value)} must be a whole number of days from 1 to 3650`);
  return parsed;
}

export interface CertsResult {
  /** The paths written, in the order of CERTS_FILES. */
  written: string[];
  /** For the user: each certificate with its expiry, and what the caBundle trusts. */
  report: string[];
}

/** Make or renew the certificates and write the files; throws CertsRefusal, having written nothing, when it must not go on. */
export async function writeCerts(flags: CertsFlags, now: Date = new Date()): Promise<CertsResult> {
  const at = (name: string): string => join(flags.outDir, name);
  const existingCa = await readIfExists(at('ca.crt'));
  const report: string[] = [];

  let ca: CertificateAndKey;
  let caX509: X509Certificate;
  let trusted: X509Certificate[];
  if (flags.mode === 'renew') {
    ca = await keptCa(flags.outDir, existingCa, now);
    caX509 = new X509Certificate(ca.certPem);
    // The bundle the cluster holds stays as it is (less what has expired): a renewal changes nothing it trusts.
    trusted = bundleWith(caX509, await readBundle(at('ca-bundle.crt')), now);
    report.push(`CA kept: ${describe(caX509, now)}`);
  } else {
    const replaced = existingCa === undefined ? undefined : parseOrUndefined(existingCa);
    if (existingCa !== undefined && flags.mode === 'new') {
      const what = replaced === undefined ? 'a file that is not a certificate' : `the CA ${describe(replaced, now)}`;
      throw new CertsRefusal(
        `${at('ca.crt')} already holds ${what}, and an installed webhook configuration may trust it.\n` +
          `- To issue a new serving certificate from it, keeping the caBundle: add --renew.\n` +
          `- To replace the CA: add --force. The new caBundle trusts the new and the old CA together, so no pod is refused while the webhook moves to its new certificate.`,
      );
    }
    ca = await generateCa({ commonName: `${flags.service}.${flags.namespace} webhook CA`, validityDays: flags.caValidityDays });
    caX509 = new X509Certificate(ca.certPem);
    trusted = bundleWith(caX509, replaced === undefined ? [] : [replaced], now);
    report.push(`CA ${replaced === undefined ? 'made' : 'replaced'}: ${describe(caX509, now)}`);
  }

  const serving = await generateServingCert(ca, {
    dnsNames: serviceDnsNames(flags.service, flags.namespace),
    validityDays: flags.validityDays,
    notAfter: new Date(caX509.validTo),
  });
  const servingX509 = new X509Certificate(serving.certPem);
  report.push(`serving certificate for ${flags.service}.${flags.namespace}.svc: ${expiry(servingX509, now)}`);
  if (Date.parse(servingX509.validTo) < now.getTime() + flags.validityDays * ONE_DAY_MS - ONE_DAY_MS)
    report.push(
      `  (shorter than the ${flags.validityDays} days asked for: a certificate never outlives its CA; replace the CA with --force before it expires)`,
    );
  report.push(`caBundle (${WEBHOOK_NAMES.join(', ')}): ${trusted.map((c) => `"${commonName(c)}" until ${isoDate(c.validTo)}`).join(', and ')}`);
  if (trusted.length > 1)
    report.push('  trusting both CAs lets the API server call every webhook replica, on the old certificate or the new, while the kubelet updates the Secret');

  const bundlePem = trusted.map((c) => c.toString()).join('');
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: flags.secretName, namespace: flags.namespace, labels: { 'app.kubernetes.io/name': 'akv-injector' } },
    data: { 'ca.crt': base64(ca.certPem), 'tls.crt': base64(serving.certPem), 'tls.key': base64(serving.keyPem) },
  };
  const contents: Record<(typeof CERTS_FILES)[number], [string, number]> = {
    'ca.crt': [ca.certPem, 0o644],
    'ca.key': [ca.keyPem, 0o600],
    'tls.crt': [serving.certPem, 0o644],
    'tls.key': [serving.keyPem, 0o600],
    'tls-secret.yaml': [stringify(secret), 0o600],
    'ca-bundle.crt': [bundlePem, 0o644],
    'ca-bundle.yaml': [caBundlePatch(bundlePem), 0o644],
  };
  await mkdir(flags.outDir, { recursive: true });
  const written: string[] = [];
  for (const name of CERTS_FILES) {
    const [content, mode] = contents[name];
    // Each file whole or not at all: a run interrupted between two files leaves each a valid old or new one.
    const path = at(name);
    const partial = `${path}.partial`;
    await writeFile(partial, content, { mode });
    await chmod(partial, mode);
    await rename(partial, path);
    written.push(path);
  }
  return { written, report };
}

/** The kustomize patch (strategic merge) giving both webhooks the CA bundle. */
function caBundlePatch(bundlePem: string): string {
  const patch = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: WEBHOOK_CONFIGURATION },
    webhooks: WEBHOOK_NAMES.map((name) => ({ name, clientConfig: { caBundle: base64(bundlePem) } })),
  };
  return `# Written by \`akv-injector certs\`: the CAs the API server trusts when it calls the webhook (base64 of PEM).\n${stringify(patch)}`;
}

/** The CA `--renew` keeps: ca.crt and ca.key of the folder, still valid. */
async function keptCa(outDir: string, certPem: string | undefined, now: Date): Promise<CertificateAndKey> {
  const certFile = join(outDir, 'ca.crt');
  const keyFile = join(outDir, 'ca.key');
  if (certPem === undefined) throw new CertsRefusal(`--renew keeps the CA in ${certFile}, and there is none: run without --renew to make one.`);
  const keyPem = await readIfExists(keyFile);
  if (keyPem === undefined)
    throw new CertsRefusal(
      `--renew needs the CA's key ${keyFile}, and it is missing (certs of akv-injector 0.1.0 did not keep it). Replace the CA with --force: the new caBundle trusts the old CA too, so no pod is refused while the webhook changes certificates.`,
    );
  const cert = parseOrUndefined(certPem);
  if (cert === undefined || !cert.ca) throw new CertsRefusal(`${certFile} is not a CA certificate in PEM: replace the CA with --force.`);
  if (!keyMatches(cert, keyPem))
    throw new CertsRefusal(`${keyFile} is not the key of the CA in ${certFile}: put the matching pair back, or replace the CA with --force.`);
  if (Date.parse(cert.validTo) <= now.getTime())
    throw new CertsRefusal(
      `the CA in ${certFile} expired on ${isoDate(cert.validTo)}: replace it with --force (the webhook cannot be called until the new caBundle is applied).`,
    );
  return { certPem, keyPem };
}

/** The CA certificates of an earlier ca-bundle.crt; none when there is no such file. */
async function readBundle(file: string): Promise<X509Certificate[]> {
  const text = await readIfExists(file);
  if (text === undefined) return [];
  const certificates = (text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(parseOrUndefined);
  if (certificates.length === 0 || certificates.some((c) => c === undefined))
    throw new CertsRefusal(`${file} is not a list of PEM certificates. Delete it and run again: the new bundle trusts the current CA only.`);
  return certificates as X509Certificate[];
}

/** `first`, then the others not yet expired and not the same certificate. */
function bundleWith(first: X509Certificate, others: readonly X509Certificate[], now: Date): X509Certificate[] {
  const bundle = [first];
  for (const other of others) {
    if (Date.parse(other.validTo) <= now.getTime() || bundle.some((c) => c.fingerprint256 === other.fingerprint256)) continue;
    bundle.push(other);
  }
  return bundle;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CertsRefusal(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

function parseOrUndefined(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function describe(cert: X509Certificate, now: Date): string {
  return `"${commonName(cert)}", ${expiry(cert, now)}`;
}

function expiry(cert: X509Certificate, now: Date): string {
  const left = Math.round((Date.parse(cert.validTo) - now.getTime()) / ONE_DAY_MS);
  return left < 0 ? `expired on ${isoDate(cert.validTo)}` : `expires on ${isoDate(cert.validTo)} (in ${left} days)`;
}

function commonName(cert: X509Certificate): string {
  return /^CN=(.*)$/m.exec(cert.subject)?.[1] ?? cert.subject;
}

function isoDate(validTo: string): string {
  return new Date(validTo).toISOString().slice(0, 10);
}

function base64(text: string): string {
  return Buffer.from(text).toString('base64');
}
