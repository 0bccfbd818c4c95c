// What each object writes: Key Vault content → the bytes of its file (DESIGN.md "What each object writes").
import type { ObjectSpec } from '../object-spec.js';
import { derToPem } from '../pem.js';
import { jwkToPublicKeyPem } from '../public-key.js';
import type { PublicJwk, SecretContent } from './vault-reader.js';

const PKCS12 = 'application/x-pkcs12';
const PEM_FILE = 'application/x-pem-file';
// The values of a key's kty and crv that Key Vault issues: only these are quoted in a message (they come from the answer).
const KEY_TYPES = new Set(['RSA', 'RSA-HSM', 'EC', 'EC-HSM', 'oct', 'oct-HSM']);
const CURVES = new Set(['P-256', 'P-384', 'P-521', 'P-256K']);
const MIME_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$/;

/** A problem with the content itself, not the request: no retry will help. */
export class ContentError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'ContentError';
  }
}

/** The bytes of a secret's file, and why a requested format did not apply (for the log; never a secret). */
export interface SecretBytes {
  data: Buffer;
  formatIgnored?: string;
}

/**
 * The bytes to write for a secret, as the provider writes them: only a secret that backs a
 * certificate (its bundle has a `kid`) is a certificate — PKCS#12 converted to PEM (or the PFX itself
 * with objectFormat pfx), PEM as stored. Any other secret is its value decoded per objectEncoding,
 * whatever its content type says; objectFormat pfx does not apply to it and is ignored.
 */
export async function secretBytes(object: ObjectSpec, content: SecretContent): Promise<SecretBytes> {
  const contentType = content.certificateBacked ? content.contentType?.trim().toLowerCase() : undefined;
  if (contentType === PKCS12) {
    if (object.objectFormat === 'pfx') {
      // The secret value of a PKCS#12 certificate is the PFX in base64.
      return { data: object.objectEncoding === 'base64' ? decodeBase64(content.value, object) : Buffer.from(content.value, 'utf8') };
    }
    return { data: await pkcs12ToPemBytes(decodeBase64(content.value, object)) };
  }
  if (contentType === PEM_FILE) {
    const ignored = object.objectFormat === 'pfx' ? 'the certificate is stored as PEM: it is written as stored' : undefined;
    return { data: Buffer.from(content.value, 'utf8'), ...(ignored ? { formatIgnored: ignored } : {}) };
  }
  const ignored =
    object.objectFormat === 'pfx'
      ? `the secret does not back a PKCS#12 certificate${content.certificateBacked ? ` (content type ${describeContentType(contentType)})` : ''}: its value is written as stored, decoded per objectEncoding`
      : undefined;
  return { data: decodeValue(content.value, object), ...(ignored ? { formatIgnored: ignored } : {}) };
}

async function pkcs12ToPemBytes(pfx: Buffer): Promise<Buffer> {
  const { pkcs12ToPem } = await import('../pkcs12.js');
  try {
    return Buffer.from(pkcs12ToPem(pfx), 'utf8');
  } catch (error) {
    throw new ContentError(
      `cannot convert the PKCS#12 certificate to PEM: ${(error as Error).message}`,
      'the secret is marked application/x-pkcs12 but does not hold a valid password-less PFX; re-import the certificate in Key Vault',
    );
  }
}

/** The public key of a Key Vault key, as PKIX PEM. */
export function publicKeyBytes(jwk: PublicJwk): Buffer {
  try {
    return Buffer.from(jwkToPublicKeyPem(jwk), 'utf8');
  } catch (error) {
    // The message quotes the key's type and curve: shown only when they are values Key Vault issues.
    const known = KEY_TYPES.has(String(jwk.kty)) && (jwk.crv === undefined || CURVES.has(String(jwk.crv)));
    const message = known
      ? (error as Error).message
      : "the key's type or curve is not one Key Vault issues (RSA, RSA-HSM, EC or EC-HSM; P-256, P-384, P-521 or P-256K)";
    throw new ContentError(message, 'only RSA and EC keys have a public key to write');
  }
}

/** A certificate (leaf) as one PEM CERTIFICATE block. */
export function certificateBytes(cer: Uint8Array): Buffer {
  if (cer.length === 0) {
    throw new ContentError(
      'the certificate has no content (it may still be pending issuance)',
      'wait for the certificate to be issued in Key Vault, or fetch its secret instead',
    );
  }
  return Buffer.from(derToPem(cer, 'CERTIFICATE'), 'utf8');
}

function describeContentType(contentType: string | undefined): string {
  if (contentType === undefined || contentType === '') return 'not set';
  return MIME_TYPE.test(contentType) ? `"${contentType}"` : 'not a media type';
}

function decodeValue(value: string, object: ObjectSpec): Buffer {
  switch (object.objectEncoding) {
    case 'utf-8':
      return Buffer.from(value, 'utf8');
    case 'base64':
      return decodeBase64(value, object);
    case 'hex': {
      const text = value.trim();
      if (!/^([0-9a-fA-F]{2})*$/.test(text)) {
        throw new ContentError('objectEncoding is hex but the value is not hexadecimal', 'store the value as hex digits, or change objectEncoding');
      }
      return Buffer.from(text, 'hex');
    }
  }
}

function decodeBase64(value: string, object: ObjectSpec): Buffer {
  const text = value.replace(/\s+/g, '');
  // Node's decoder skips invalid characters silently; a wrong file is worse than a clear error.
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw new ContentError(
      `${object.objectFormat === 'pfx' ? 'the PFX' : 'the value'} is not valid base64`,
      object.objectEncoding === 'base64' ? 'store the value base64-encoded, or change objectEncoding' : 'the stored value is corrupt; re-import it',
    );
  }
  return Buffer.from(text, 'base64');
}
