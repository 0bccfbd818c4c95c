// Converts a Key Vault JSON Web Key to the PKIX public-key PEM written for `key` objects.
import { createPublicKey, type JsonWebKey } from 'node:crypto';

/** The public members of the Key Vault SDK's `JsonWebKey` (`@azure/keyvault-keys`). */
export interface KeyVaultJsonWebKey {
  kty?: string;
  crv?: string;
  n?: Uint8Array;
  e?: Uint8Array;
  x?: Uint8Array;
  y?: Uint8Array;
}

/** Key Vault curve names → the JWK names Node accepts. */
const CURVES: Readonly<Record<string, string>> = {
  'P-256': 'P-256',
  'P-384': 'P-384',
  'P-521': 'P-521',
  'P-256K': 'secp256k1',
};

/** `-----BEGIN PUBLIC KEY-----` PEM of an RSA or EC key (software or HSM). */
export function jwkToPublicKeyPem(jwk: KeyVaultJsonWebKey): string {
  const kty = jwk.kty ?? '';
  switch (kty) {
    case 'RSA':
    case 'RSA-HSM':
      return toPem({ kty: 'RSA', n: base64url(jwk.n, kty, 'n'), e: base64url(jwk.e, kty, 'e') }, kty);
    case 'EC':
    case 'EC-HSM':
      return toPem({ kty: 'EC', crv: curveOf(jwk.crv), x: base64url(jwk.x, kty, 'x'), y: base64url(jwk.y, kty, 'y') }, kty);
    case 'oct':
    case 'oct-HSM':
      throw new Error(`key type "${kty}" is a symmetric key: it has no public part and cannot be written as a file`);
    default:
      throw new Error(`key type "${kty}" is not supported: expected RSA, RSA-HSM, EC or EC-HSM`);
  }
}

function toPem(jwk: JsonWebKey, kty: string): string {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`${kty} key is not a valid public key: ${reason}`, { cause: err });
  }
}

function curveOf(crv: string | undefined): string {
  const curve = crv === undefined ? undefined : CURVES[crv];
  if (curve === undefined) {
    throw new Error(`EC curve "${crv ?? ''}" is not supported: expected ${Object.keys(CURVES).join(', ')}`);
  }
  return curve;
}

function base64url(bytes: Uint8Array | undefined, kty: string, member: string): string {
  if (bytes === undefined || bytes.length === 0) throw new Error(`${kty} key has no "${member}" member`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}
