// Kubernetes object names and host names (RFC 1123): one label pattern, the lengths Kubernetes gives it.

const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS_LABEL = new RegExp(`^${LABEL}$`);
const DNS_SUBDOMAIN = new RegExp(`^${LABEL}(\\.${LABEL})*$`);

/** A DNS-1123 label, at most 63 characters: a namespace's or a Service's name. */
export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && DNS_LABEL.test(name);
}

/** A DNS-1123 subdomain, at most 253 characters: the name of most objects (ServiceAccount, Secret, SecretProviderClass). */
export function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && DNS_SUBDOMAIN.test(name);
}

/** A host name for a certificate: DNS labels in any case, optionally after one wildcard label (`*.`). */
export function isHostName(name: string): boolean {
  const host = name.startsWith('*.') ? name.slice(2) : name;
  return name.length <= 253 && host.toLowerCase().split('.').every(isDnsLabel);
}
