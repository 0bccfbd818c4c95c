// Orders a set of X.509 certificates leaf → intermediates → root, whatever order they come in.
//
// OpenSSL decides who issued whom (X509Certificate.checkIssued): the issuer name against the subject name,
// compared as RFC 5280 says (case, spacing and string type aside), and the key identifiers where both are present.
import { X509Certificate } from 'node:crypto';

export interface OrderChainOptions {
  /** Index in `certs` of the certificate known to be the leaf (e.g. the one matching the private key). */
  leaf?: number;
}

/**
 * Returns the certificates (the same objects) ordered leaf → intermediates → root. Certificates
 * not on the leaf's issuer path are kept, after it, in their original order.
 */
export function orderChain(certs: readonly Uint8Array[], options: OrderChainOptions = {}): Uint8Array[] {
  if (certs.length === 0) return [];
  const parsed = certs.map(readCertificate);
  const leaf = options.leaf ?? findLeaf(parsed);
  if (!Number.isInteger(leaf) || leaf < 0 || leaf >= certs.length) {
    throw new RangeError(`leaf index ${leaf} is out of range for ${certs.length} certificates`);
  }
  const path = [leaf];
  for (let current = at(parsed, leaf); !current.checkIssued(current);) {
    // The first unused issuer in input order; a used one would make a loop of cross-signed CAs.
    const next = parsed.findIndex((candidate, index) => !path.includes(index) && current.checkIssued(candidate));
    if (next < 0) break;
    path.push(next);
    current = at(parsed, next);
  }
  const extras = certs.map((_, index) => index).filter((index) => !path.includes(index));
  return [...path, ...extras].map((index) => at(certs, index));
}

/** The leaf issues no other certificate of the set; among several, a non-CA one, then the first. */
function findLeaf(parsed: readonly X509Certificate[]): number {
  const indexes = parsed.map((_, index) => index);
  const issuesNothing = indexes.filter((index) => parsed.every((child, other) => other === index || !child.checkIssued(at(parsed, index))));
  const candidates = issuesNothing.length > 0 ? issuesNothing : indexes;
  return candidates.find((index) => !at(parsed, index).ca) ?? candidates[0] ?? 0;
}

function readCertificate(der: Uint8Array, index: number): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`certificate ${index + 1} is not a valid X.509 certificate: ${reason}`, { cause: err });
  }
}

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new RangeError(`no certificate at index ${index}`);
  return item;
}
