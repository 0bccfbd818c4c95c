// Orders a set of X.509 certificates leaf → intermediates → root, whatever order they come in.
//
// Certificates are read with forge's ASN.1 parser only: forge's X.509 parser rejects EC keys
// ("OID is not RSA"), and Node's X509Certificate exposes names only as display strings and no
// key identifiers.
import forge from 'node-forge';
import { derToPem } from './pem.js';

type Asn1 = forge.asn1.Asn1;

const OID_SUBJECT_KEY_ID = '2.5.29.14';
const OID_AUTHORITY_KEY_ID = '2.5.29.35';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';

/** What linking a certificate to its issuer needs. */
interface CertLinks {
  /** Subject and issuer names, normalized for comparison (see `normalizeName`). */
  subject: string;
  issuer: string;
  /** Key identifiers in hex, when the extensions are present. */
  subjectKeyId: string | undefined;
  authorityKeyId: string | undefined;
  ca: boolean;
}

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
  const links = certs.map((der, index) => readCertLinks(der, index));
  const leaf = options.leaf ?? findLeaf(links);
  if (!Number.isInteger(leaf) || leaf < 0 || leaf >= certs.length) {
    throw new RangeError(`leaf index ${leaf} is out of range for ${certs.length} certificates`);
  }

  const path = [leaf];
  const used = new Set(path);
  let current = leaf;
  while (!isSelfIssued(linksAt(links, current))) {
    const next = findIssuer(links, current, used);
    if (next === undefined) break;
    path.push(next);
    used.add(next);
    current = next;
  }
  const extras = certs.map((_, index) => index).filter((index) => !used.has(index));
  return [...path, ...extras].map((index) => certs[index] as Uint8Array);
}

/** One PEM `CERTIFICATE` block: base64 in 64-character lines, with a trailing newline. */
export function certificateDerToPem(der: Uint8Array): string {
  return derToPem(der, 'CERTIFICATE');
}

function linksAt(links: readonly CertLinks[], index: number): CertLinks {
  const found = links[index];
  if (found === undefined) throw new RangeError(`no certificate at index ${index}`);
  return found;
}

/**
 * How strongly `issuer` is linked as the issuer of `child`: 2 by key identifier, 1 by name,
 * 0 not at all. Key identifiers decide when both are present, so two CAs with one name but
 * different keys are told apart.
 */
function issuerScore(issuer: CertLinks, child: CertLinks): number {
  if (child.authorityKeyId !== undefined && issuer.subjectKeyId !== undefined) {
    return child.authorityKeyId === issuer.subjectKeyId ? 2 : 0;
  }
  return child.issuer === issuer.subject ? 1 : 0;
}

function isSelfIssued(cert: CertLinks): boolean {
  return issuerScore(cert, cert) > 0;
}

/** The leaf issues no other certificate of the set; among several, a non-CA one, then the first. */
function findLeaf(links: readonly CertLinks[]): number {
  const issuesNothing = links
    .map((_, index) => index)
    .filter((index) => links.every((child, other) => other === index || issuerScore(linksAt(links, index), child) === 0));
  const candidates = issuesNothing.length > 0 ? issuesNothing : links.map((_, index) => index);
  return candidates.find((index) => !linksAt(links, index).ca) ?? candidates[0] ?? 0;
}

/** The best-linked unused issuer of `child`, the first in input order among equals. */
function findIssuer(links: readonly CertLinks[], child: number, used: ReadonlySet<number>): number | undefined {
  let best: number | undefined;
  let bestScore = 0;
  links.forEach((candidate, index) => {
    if (used.has(index)) return;
    const score = issuerScore(candidate, linksAt(links, child));
    if (score > bestScore) {
      best = index;
      bestScore = score;
    }
  });
  return best;
}

function readCertLinks(der: Uint8Array, index: number): CertLinks {
  try {
    return parseCertLinks(der);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`certificate ${index + 1} is not a valid X.509 certificate: ${reason}`, { cause: err });
  }
}

function parseCertLinks(der: Uint8Array): CertLinks {
  const cert = forge.asn1.fromDer(Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('binary'));
  const tbs = childrenOf(childrenOf(cert)[0]);
  // TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject, spki, … [3] extensions
  const first = tbs[0]?.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC ? 1 : 0;
  const issuer = tbs[first + 2];
  const subject = tbs[first + 4];
  if (issuer === undefined || subject === undefined || tbs[first + 5] === undefined) {
    throw new Error('TBSCertificate is incomplete');
  }
  const extensionsTag = tbs.slice(first + 6).find((node) => node.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && node.type === 3);
  const extensions = readExtensions(extensionsTag === undefined ? undefined : childrenOf(extensionsTag)[0]);

  const ski = extensions.get(OID_SUBJECT_KEY_ID);
  const aki = extensions.get(OID_AUTHORITY_KEY_ID);
  const basicConstraints = extensions.get(OID_BASIC_CONSTRAINTS);
  return {
    subject: normalizeName(subject),
    issuer: normalizeName(issuer),
    subjectKeyId: ski === undefined ? undefined : hex(bytesOf(ski)),
    authorityKeyId: aki === undefined ? undefined : authorityKeyIdOf(aki),
    ca: basicConstraints !== undefined && isCa(basicConstraints),
  };
}

/** Extension OID → the parsed content of its extnValue. */
function readExtensions(sequence: Asn1 | undefined): Map<string, Asn1> {
  const extensions = new Map<string, Asn1>();
  if (sequence === undefined) return extensions;
  for (const extension of childrenOf(sequence)) {
    const parts = childrenOf(extension);
    const oid = parts[0];
    const value = parts[parts.length - 1];
    if (oid === undefined || value === undefined || parts.length < 2) throw new Error('malformed extension');
    extensions.set(forge.asn1.derToOid(bytesOf(oid)), forge.asn1.fromDer(bytesOf(value)));
  }
  return extensions;
}

/** AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, … } */
function authorityKeyIdOf(aki: Asn1): string | undefined {
  const keyId = childrenOf(aki).find((node) => node.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && node.type === 0);
  return keyId === undefined ? undefined : hex(bytesOf(keyId));
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } */
function isCa(basicConstraints: Asn1): boolean {
  const first = childrenOf(basicConstraints)[0];
  return first?.type === forge.asn1.Type.BOOLEAN && bytesOf(first) !== '\x00';
}

/**
 * A Name as a comparable string: each attribute's OID and value, string values decoded,
 * case-folded and whitespace-collapsed (RFC 5280 §7.1, simplified), attributes of a
 * multi-valued RDN sorted. The same name in PrintableString or UTF8String compares equal.
 */
function normalizeName(name: Asn1): string {
  const rdns = childrenOf(name).map((rdn) =>
    childrenOf(rdn)
      .map((attribute) => {
        const [type, value] = childrenOf(attribute);
        if (type === undefined || value === undefined) throw new Error('malformed name attribute');
        return `${forge.asn1.derToOid(bytesOf(type))}=${normalizeValue(value)}`;
      })
      .sort(),
  );
  return JSON.stringify(rdns);
}

function normalizeValue(value: Asn1): string {
  const text = decodeString(value);
  if (text === undefined) return `#${forge.asn1.toDer(value).toHex()}`;
  return text.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}

function decodeString(value: Asn1): string | undefined {
  if (value.tagClass !== forge.asn1.Class.UNIVERSAL || typeof value.value !== 'string') return undefined;
  const bytes = Buffer.from(value.value, 'binary');
  switch (value.type as number) {
    case 12: // UTF8String
      return bytes.toString('utf8');
    case 18: // NumericString
    case 19: // PrintableString
    case 20: // TeletexString (treated as Latin-1)
    case 22: // IA5String
    case 26: // VisibleString
      return bytes.toString('latin1');
    case 30: // BMPString (UTF-16BE)
      return Buffer.from(bytes).swap16().toString('utf16le');
    case 28: // UniversalString (UTF-32BE)
      return String.fromCodePoint(...Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readUInt32BE(i * 4)));
    default:
      return undefined;
  }
}

function childrenOf(node: Asn1 | undefined): Asn1[] {
  if (node === undefined || !Array.isArray(node.value)) throw new Error('expected a constructed ASN.1 value');
  return node.value;
}

function bytesOf(node: Asn1): string {
  if (typeof node.value !== 'string') throw new Error('expected a primitive ASN.1 value');
  return node.value;
}

function hex(bytes: string): string {
  return forge.util.bytesToHex(bytes);
}
