// `akv-injector certs`: a CA and a serving certificate for the webhook's Service, as files and as a
// kubernetes.io/tls Secret in cert-manager's layout (tls.crt, tls.key, ca.crt).
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { generateCa, generateServingCert } from './certs.js';
import { isDnsLabel, isDnsSubdomain } from './dns-names.js';

export interface CertsFlags {
  service: string;
  namespace: string;
  outDir: string;
  secretName: string;
  validityDays: number;
}

/** The Service's in-cluster names, as the API server dials it: svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

export function parseCertsFlags(args: string[]): { flags?: CertsFlags; problems: string[] } {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        service: { type: 'string' },
        namespace: { type: 'string' },
        'out-dir': { type: 'string' },
        'secret-name': { type: 'string' },
        'validity-days': { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    return { problems: [(error as Error).message] };
  }
  const problems: string[] = [];
  const service = values.service ?? '';
  const namespace = values.namespace ?? '';
  const outDir = values['out-dir'] ?? '';
  if (!isDnsLabel(service)) problems.push(`--service ${JSON.stringify(service)} must be the webhook's Service name (a DNS-1123 label)`);
  if (!isDnsLabel(namespace)) problems.push(`--namespace ${JSON.stringify(namespace)} must be the Service's namespace (a DNS-1123 label)`);
  if (outDir === '') problems.push('--out-dir is required: the folder to write ca.crt, tls.crt, tls.key and tls-secret.yaml into');
  const secretName = values['secret-name'] ?? `${service}-tls`;
  if (!isDnsSubdomain(secretName)) problems.push(`--secret-name ${JSON.stringify(secretName)} is not a valid Secret name`);
  const validityText = values['validity-days'] ?? '365';
  const validityDays = Number(validityText);
  if (!/^\d+$/.test(validityText) || validityDays < 1 || validityDays > 3650)
    problems.push(`--validity-days ${JSON.stringify(validityText)} must be a whole number of days from 1 to 3650`);
  if (problems.length > 0) return { problems };
  return { problems, flags: { service, namespace, outDir, secretName, validityDays } };
}

/** Generate and write the files; returns the paths written. */
export async function writeCerts(flags: CertsFlags): Promise<string[]> {
  const ca = await generateCa({ commonName: `${flags.service}.${flags.namespace} webhook CA`, validityDays: flags.validityDays });
  const serving = await generateServingCert(ca, { dnsNames: serviceDnsNames(flags.service, flags.namespace), validityDays: flags.validityDays });
  await mkdir(flags.outDir, { recursive: true });
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: flags.secretName, namespace: flags.namespace, labels: { 'app.kubernetes.io/name': 'akv-injector' } },
    data: {
      'ca.crt': Buffer.from(ca.certPem).toString('base64'),
      'tls.crt': Buffer.from(serving.certPem).toString('base64'),
      'tls.key': Buffer.from(serving.keyPem).toString('base64'),
    },
  };
  const files: Array<[string, string, number]> = [
    ['ca.crt', ca.certPem, 0o644],
    ['tls.crt', serving.certPem, 0o644],
    ['tls.key', serving.keyPem, 0o600],
    ['tls-secret.yaml', stringify(secret), 0o600],
  ];
  const written: string[] = [];
  for (const [name, content, mode] of files) {
    const path = join(flags.outDir, name);
    await writeFile(path, content, { mode });
    await chmod(path, mode);
    written.push(path);
  }
  return written;
}
