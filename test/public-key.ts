// Key Vault JSON Web Keys to PKIX public-key PEM: RSA and EC, software and HSM, symmetric keys refused.
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import t from 'tap';
import { jwkToPublicKeyPem, type KeyVaultJsonWebKey } from '../src/public-key.js';

function bytes(base64url: string | undefined): Uint8Array {
  return new Uint8Array(Buffer.from(base64url ?? '', 'base64url'));
}

/** The key as the Key Vault SDK returns it: members as bytes, Key Vault's kty and curve names. */
function keyVaultJwk(publicKey: KeyObject, kty: string, crv?: string): KeyVaultJsonWebKey {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.kty === 'RSA') return { kty, n: bytes(jwk.n), e: bytes(jwk.e) };
  return { kty, crv, x: bytes(jwk.x), y: bytes(jwk.y) };
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
const keys: Array<{ name: string; publicKey: KeyObject; kty: string; crv?: string }> = [
  { name: 'RSA 2048', publicKey: rsa, kty: 'RSA' },
  { name: 'EC P-256', publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, kty: 'EC', crv: 'P-256' },
  { name: 'EC P-384', publicKey: generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey, kty: 'EC', crv: 'P-384' },
  { name: 'EC P-521', publicKey: generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey, kty: 'EC', crv: 'P-521' },
  { name: 'EC P-256K', publicKey: generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey, kty: 'EC', crv: 'P-256K' },
];

t.test('RSA and EC keys, software and HSM, round-trip', async (t) => {
  for (const key of keys) {
    for (const kty of [key.kty, `${key.kty}-HSM`]) {
      const name = `${key.name} (${kty})`;
      const pem = jwkToPublicKeyPem(keyVaultJwk(key.publicKey, kty, key.crv));
      t.match(pem, /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n$/, `${name}: one PUBLIC KEY block`);
      t.equal(pem, key.publicKey.export({ type: 'spki', format: 'pem' }), `${name}: same PEM as node:crypto writes`);
      t.same(createPublicKey(pem).export({ format: 'jwk' }), key.publicKey.export({ format: 'jwk' }), `${name}: same JWK back`);
    }
  }
});

t.test('byte arrays as Key Vault may hand them', async (t) => {
  const jwk = rsa.export({ format: 'jwk' });
  const expected = rsa.export({ type: 'spki', format: 'pem' });
  const withZero = new Uint8Array([0, ...bytes(jwk.n)]);
  t.equal(jwkToPublicKeyPem({ kty: 'RSA', n: withZero, e: bytes(jwk.e) }), expected, 'modulus with a leading zero byte');
  const backing = Buffer.concat([Buffer.from('padding'), Buffer.from(bytes(jwk.n))]);
  const view = new Uint8Array(backing.buffer, backing.byteOffset + 7, backing.length - 7);
  t.equal(jwkToPublicKeyPem({ kty: 'RSA', n: view, e: bytes(jwk.e) }), expected, 'a view into a larger buffer');
});

t.test('keys that cannot be written', async (t) => {
  const ec = keyVaultJwk(keys[1]!.publicKey, 'EC', 'P-256');
  const cases: Array<{ name: string; jwk: KeyVaultJsonWebKey; message: RegExp }> = [
    { name: 'oct', jwk: { kty: 'oct' }, message: /^key type "oct" is a symmetric key: it has no public part and cannot be written/ },
    { name: 'oct-HSM', jwk: { kty: 'oct-HSM' }, message: /^key type "oct-HSM" is a symmetric key: it has no public part/ },
    { name: 'unknown kty', jwk: { kty: 'OKP' }, message: /^key type "OKP" is not supported: expected RSA, RSA-HSM, EC or EC-HSM/ },
    { name: 'missing kty', jwk: {}, message: /^key type "" is not supported/ },
    { name: 'RSA without n', jwk: { kty: 'RSA', e: new Uint8Array([1, 0, 1]) }, message: /^RSA key has no "n" member/ },
    { name: 'RSA-HSM with empty e', jwk: { kty: 'RSA-HSM', n: new Uint8Array([1, 2, 3]), e: new Uint8Array() }, message: /^RSA-HSM key has no "e" member/ },
    { name: 'EC without y', jwk: { ...ec, y: undefined }, message: /^EC key has no "y" member/ },
    { name: 'EC unsupported curve', jwk: { ...ec, crv: 'P-192' }, message: /^EC curve "P-192" is not supported: expected P-256, P-384, P-521, P-256K/ },
    { name: 'EC without curve', jwk: { ...ec, crv: undefined }, message: /^EC curve "" is not supported/ },
    { name: 'EC point not on the curve', jwk: { ...ec, y: ec.x }, message: /^EC key is not a valid public key: / },
    { name: 'EC coordinates of another curve', jwk: { ...ec, crv: 'P-384' }, message: /^EC key is not a valid public key: / },
  ];
  for (const c of cases) {
    t.throws(() => jwkToPublicKeyPem(c.jwk), { message: c.message }, c.name);
  }
});
