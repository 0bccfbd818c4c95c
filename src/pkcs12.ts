// Converts a PKCS#12 (PFX) certificate secret to PEM: the private key (PKCS#8) first, then the
// certificates ordered leaf → intermediates → root.
//
// forge.pkcs12.pkcs12FromAsn1 is not used: it cannot parse EC keys or certificates, and it
// re-encodes the certificates it does parse (an ECDSA-signed certificate gets a NULL signature
// parameter, changing its bytes). The bags are walked here with forge's ASN.1, PBE and HMAC
// primitives, certificates kept byte for byte and keys handed to node:crypto.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { orderChain } from './cert-chain.js';
import { derToPem } from './pem.js';

type Asn1 = forge.asn1.Asn1;
/** null: the empty password encoded as no bytes at all, as some producers do (see `verifyMac`). */
type Password = string | null;

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  pbes2: '1.2.840.113549.1.5.13',
} as const;

const MAC_DIGESTS: Record<string, () => forge.md.MessageDigest> = {
  '1.3.14.3.2.26': () => forge.md.sha1.create(),
  '2.16.840.1.101.3.4.2.1': () => forge.md.sha256.create(),
  '2.16.840.1.101.3.4.2.2': () => forge.md.sha384.create(),
  '2.16.840.1.101.3.4.2.3': () => forge.md.sha512.create(),
};

// forge's PBE derives the key from a null password as the empty byte string; its typings say string.
const decryptPrivateKeyInfo = forge.pki.decryptPrivateKeyInfo as (obj: Asn1, password: Password) => Asn1 | null;

/** The keys and certificates of a PKCS#12 file, in file order. */
export interface Pkcs12Contents {
  /** PKCS#8 PrivateKeyInfo DER of each key bag, decrypted. */
  keys: Buffer[];
  /** DER of each X.509 certificate bag, byte for byte as stored. */
  certificates: Buffer[];
}

/**
 * The PEM the provider writes for a PKCS#12-backed certificate secret: every private key as
 * PKCS#8 `PRIVATE KEY`, then every certificate, ordered from the one matching the key up to the root.
 */
export function pkcs12ToPem(pfx: Uint8Array, password = ''): string {
  const { keys, certificates } = readPkcs12(pfx, password);
  if (certificates.length === 0) throw new Error('PKCS#12 file contains no certificate');
  const privateKeys = keys.map(toPrivateKey);
  const leaf = privateKeys[0] === undefined ? undefined : certificateMatching(certificates, privateKeys[0]);
  const chain = orderChain(certificates, leaf === undefined ? {} : { leaf });
  const keyPems = privateKeys.map((key) => key.export({ type: 'pkcs8', format: 'pem' }).toString());
  return keyPems.join('') + chain.map((der) => derToPem(der, 'CERTIFICATE')).join('');
}

/** Verifies the MAC, decrypts, and returns the key and certificate bags of a PKCS#12 file. */
export function readPkcs12(pfx: Uint8Array, password = ''): Pkcs12Contents {
  const root = parseDer(Buffer.from(pfx.buffer, pfx.byteOffset, pfx.byteLength).toString('binary'), 'PFX');
  const [versionNode, authSafe, macData] = childrenOf(root, 'PFX');
  const version = forge.asn1.derToInteger(primitive(versionNode, forge.asn1.Type.INTEGER, 'PFX version'));
  if (version !== 3) throw malformed(`PFX version ${version}, expected 3`);
  const [contentType, content] = childrenOf(authSafe, 'PFX authSafe');
  if (oidOf(contentType, 'authSafe content type') !== OID.data) {
    throw malformed('authSafe is not Data (public-key integrity mode is not supported)');
  }
  const authSafeBytes = octets(explicitContent(content, 'authSafe content'), 'authSafe content');
  const usedPassword = verifyMac(macData, authSafeBytes, password);

  const contents: Pkcs12Contents = { keys: [], certificates: [] };
  for (const info of childrenOf(parseDer(authSafeBytes, 'AuthenticatedSafe'), 'AuthenticatedSafe')) {
    collectBags(safeContentsOf(info, usedPassword), usedPassword, contents);
  }
  return contents;
}

/**
 * Returns the password the MAC verifies with. An empty password is tried as "" (two zero bytes,
 * per RFC 7292) and then as no bytes, as OpenSSL and Go's pkcs12 (used by the Azure provider) do.
 */
function verifyMac(macData: Asn1 | undefined, authSafe: string, password: string): Password {
  if (macData === undefined) return password;
  const [digestInfo, saltNode, iterationsNode] = childrenOf(macData, 'MacData');
  const [algorithm, digestNode] = childrenOf(digestInfo, 'MAC DigestInfo');
  const algorithmOid = oidOf(childrenOf(algorithm, 'MAC algorithm')[0], 'MAC algorithm');
  const createDigest = MAC_DIGESTS[algorithmOid];
  if (createDigest === undefined) throw new Error(`cannot open PKCS#12 file: unsupported MAC algorithm ${algorithmOid}`);
  const expected = octets(digestNode, 'MAC digest');
  const salt = octets(saltNode, 'MAC salt');
  const iterations = iterationsNode === undefined ? 1 : forge.asn1.derToInteger(primitive(iterationsNode, forge.asn1.Type.INTEGER, 'MAC iterations'));

  const candidates: Password[] = password === '' ? ['', null] : [password];
  for (const candidate of candidates) {
    const md = createDigest();
    const key = forge.pkcs12.generateKey(candidate, forge.util.createBuffer(salt), 3, iterations, md.digestLength, md);
    const hmac = forge.hmac.create();
    hmac.start(createDigest(), key);
    hmac.update(authSafe);
    if (hmac.digest().getBytes() === expected) return candidate;
  }
  throw new Error('cannot open PKCS#12 file: MAC verification failed (wrong password?)');
}

/** The SafeContents of one ContentInfo of the AuthenticatedSafe, decrypted when encrypted. */
function safeContentsOf(info: Asn1, password: Password): Asn1 {
  const [contentType, content] = childrenOf(info, 'ContentInfo');
  const type = oidOf(contentType, 'ContentInfo type');
  if (type === OID.data) {
    return parseDer(octets(explicitContent(content, 'ContentInfo content'), 'SafeContents'), 'SafeContents');
  }
  if (type !== OID.encryptedData) {
    throw new Error(`cannot open PKCS#12 file: content type ${type} is not supported (only Data and EncryptedData)`);
  }
  // EncryptedData ::= SEQUENCE { version, EncryptedContentInfo ::= SEQUENCE { contentType, algorithm, [0] IMPLICIT encryptedContent } }
  const [, encryptedContentInfo] = childrenOf(explicitContent(content, 'EncryptedData'), 'EncryptedData');
  const [, algorithm, encrypted] = childrenOf(encryptedContentInfo, 'EncryptedContentInfo');
  if (algorithm === undefined || encrypted === undefined) throw malformed('EncryptedContentInfo has no encrypted content');
  // Same shape as an EncryptedPrivateKeyInfo, so forge's PBE decryption applies as is.
  const asEncryptedKeyInfo = forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.SEQUENCE, true, [
    algorithm,
    forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, octets(encrypted, 'encrypted content')),
  ]);
  return decrypt(asEncryptedKeyInfo, password, 'encrypted SafeContents');
}

function collectBags(safeContents: Asn1, password: Password, contents: Pkcs12Contents): void {
  for (const bag of childrenOf(safeContents, 'SafeContents')) {
    const [bagId, bagValue] = childrenOf(bag, 'SafeBag');
    const value = explicitContent(bagValue, 'SafeBag value');
    switch (oidOf(bagId, 'SafeBag type')) {
      case OID.keyBag:
        contents.keys.push(toDerBuffer(value));
        break;
      case OID.shroudedKeyBag:
        contents.keys.push(toDerBuffer(decrypt(value, password, 'private key')));
        break;
      case OID.certBag: {
        const [certId, certValue] = childrenOf(value, 'CertBag');
        if (oidOf(certId, 'CertBag type') !== OID.x509Certificate) break; // SDSI certificates: not ours
        contents.certificates.push(Buffer.from(octets(explicitContent(certValue, 'CertBag value'), 'certificate'), 'binary'));
        break;
      }
      case OID.safeContentsBag:
        collectBags(value, password, contents);
        break;
      default:
        break; // CRL and secret bags carry nothing we write
    }
  }
}

function decrypt(encryptedInfo: Asn1, password: Password, what: string): Asn1 {
  const algorithm = childrenOf(childrenOf(encryptedInfo, what)[0], `${what} algorithm`)[0];
  // PBES2 (PKCS#5) takes the password as UTF-8 bytes; PKCS#12 PBE as BMPString, which forge derives itself.
  const pbePassword = oidOf(algorithm, `${what} algorithm`) === OID.pbes2 ? forge.util.encodeUtf8(password ?? '') : password;
  let decrypted: Asn1 | null;
  try {
    decrypted = decryptPrivateKeyInfo(encryptedInfo, pbePassword);
  } catch (err) {
    throw new Error(`cannot decrypt the ${what} of the PKCS#12 file: ${messageOf(err)}`, { cause: err });
  }
  if (decrypted === null) throw new Error(`cannot decrypt the ${what} of the PKCS#12 file (wrong password?)`);
  return decrypted;
}

function toPrivateKey(der: Buffer, index: number): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new Error(`PKCS#12 private key ${index + 1} is not a readable PKCS#8 key: ${messageOf(err)}`, { cause: err });
  }
}

/** Index of the first certificate whose public key belongs to `key`. */
function certificateMatching(certificates: readonly Buffer[], key: KeyObject): number | undefined {
  const index = certificates.findIndex((der) => {
    try {
      return new X509Certificate(der).checkPrivateKey(key);
    } catch {
      return false; // unreadable here; orderChain reports malformed certificates
    }
  });
  return index < 0 ? undefined : index;
}

function malformed(detail: string): Error {
  return new Error(`not a PKCS#12 file: ${detail}`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function parseDer(bytes: string, what: string): Asn1 {
  try {
    return forge.asn1.fromDer(bytes);
  } catch (err) {
    throw malformed(`${what} is not valid DER: ${messageOf(err)}`);
  }
}

function toDerBuffer(node: Asn1): Buffer {
  return Buffer.from(forge.asn1.toDer(node).getBytes(), 'binary');
}

function childrenOf(node: Asn1 | undefined, what: string): Asn1[] {
  if (node === undefined || !Array.isArray(node.value)) throw malformed(`${what} is missing or not a SEQUENCE`);
  return node.value;
}

function primitive(node: Asn1 | undefined, type: forge.asn1.Type, what: string): string {
  if (node === undefined || node.tagClass !== forge.asn1.Class.UNIVERSAL || node.type !== type || typeof node.value !== 'string') {
    throw malformed(`${what} is missing or of the wrong type`);
  }
  return node.value;
}

function oidOf(node: Asn1 | undefined, what: string): string {
  return forge.asn1.derToOid(primitive(node, forge.asn1.Type.OID, what));
}

/** The content of a `[0] EXPLICIT` tag. */
function explicitContent(node: Asn1 | undefined, what: string): Asn1 {
  const inner = node?.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && Array.isArray(node.value) ? node.value[0] : undefined;
  if (inner === undefined) throw malformed(`${what} is missing`);
  return inner;
}

/** The bytes of an OCTET STRING (or an implicitly tagged one), joining BER constructed chunks. */
function octets(node: Asn1 | undefined, what: string): string {
  if (node === undefined) throw malformed(`${what} is missing`);
  if (typeof node.value === 'string') return node.value;
  return node.value.map((chunk) => octets(chunk, what)).join('');
}
