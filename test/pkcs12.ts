// PKCS#12 to PEM: the key first as PKCS#8, then the chain leaf → root, whatever the file's order and producer.
import { execFileSync } from 'node:child_process';
import forge from 'node-forge';
import t from 'tap';
import { pkcs12ToPem, readPkcs12 } from '../src/pkcs12.js';
import {
  defaultChain,
  makeCertificate,
  makeChain,
  makeForgePfx,
  makeOpensslPfx,
  makePfx,
  type Chain,
  type ChainRole,
  type KeyType,
  type PfxOptions,
} from './fixtures/certs.js';

const PERMUTATIONS: ChainRole[][] = [
  ['leaf', 'intermediate', 'root'],
  ['leaf', 'root', 'intermediate'],
  ['intermediate', 'leaf', 'root'],
  ['intermediate', 'root', 'leaf'],
  ['root', 'leaf', 'intermediate'],
  ['root', 'intermediate', 'leaf'],
];

function keyPem(chain: Chain): string {
  return chain.leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** What pkcs12ToPem must write for the chain: the leaf key, then leaf, intermediate, root. */
function expectedPem(chain: Chain): string {
  return keyPem(chain) + chain.leaf.pem + chain.intermediate.pem + chain.root.pem;
}

/** The same PFX in BER: authSafe content as constructed OCTET STRING chunks, outer SEQUENCE of indefinite length. */
function toBer(pfx: Buffer): Buffer {
  const root = forge.asn1.fromDer(pfx.toString('binary'));
  const authSafe = (root.value as forge.asn1.Asn1[])[1]!;
  const explicit = (authSafe.value as forge.asn1.Asn1[])[1]!;
  const content = (explicit.value as forge.asn1.Asn1[])[0]!.value as string;
  const chunk = (bytes: string) => forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, bytes);
  explicit.value = [
    forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, true, [chunk(content.slice(0, 100)), chunk(content.slice(100))]),
  ];
  const der = Buffer.from(forge.asn1.toDer(root).getBytes(), 'binary');
  const headerLength = 2 + (der[1]! & 0x80 ? der[1]! & 0x7f : 0);
  return Buffer.concat([Buffer.from([0x30, 0x80]), der.subarray(headerLength), Buffer.from([0, 0])]);
}

function blockTypes(pem: string): string[] {
  return [...pem.matchAll(/-----BEGIN ([A-Z ]+)-----/g)].map((match) => match[1] ?? '');
}

t.test('every certificate order, key first or last, RSA and EC: key (PKCS#8) then leaf → root', async (t) => {
  for (const keyType of ['rsa', 'ec'] as KeyType[]) {
    const chain = defaultChain(keyType);
    for (const certOrder of PERMUTATIONS) {
      for (const keyFirst of [false, true]) {
        const name = `${keyType}, ${certOrder.join(', ')}, key ${keyFirst ? 'first' : 'last'}`;
        const pem = pkcs12ToPem(makePfx({ keyType, certOrder, keyFirst }));
        t.equal(pem, expectedPem(chain), name);
      }
    }
  }
});

t.test('output shape', async (t) => {
  const pem = pkcs12ToPem(makePfx({ certOrder: ['root', 'intermediate', 'leaf'] }));
  t.same(blockTypes(pem), ['PRIVATE KEY', 'CERTIFICATE', 'CERTIFICATE', 'CERTIFICATE']);
  t.ok(pem.endsWith('-----END CERTIFICATE-----\n'), 'ends with a newline');
  t.notMatch(pem, /RSA PRIVATE KEY|EC PRIVATE KEY|\r/, 'no PKCS#1/SEC1 key, no CR');
});

t.test('bag and encryption variants', async (t) => {
  const cases: Array<{ name: string; options: PfxOptions; password?: string }> = [
    { name: 'plain keyBag (unencrypted key)', options: { encryptedKey: false } },
    { name: 'plain keyBag, EC', options: { keyType: 'ec', encryptedKey: false } },
    { name: 'shrouded key, 3DES (PKCS#12 PBE)', options: { encryption: '3des' } },
    { name: 'shrouded key, AES-256 (PBES2)', options: { encryption: 'aes256' } },
    { name: 'encrypted certificates, AES-256', options: { encryptedCerts: true, certOrder: ['root', 'leaf', 'intermediate'] } },
    { name: 'encrypted certificates, 3DES, EC', options: { keyType: 'ec', encryptedCerts: true, encryption: '3des', keyFirst: true } },
    { name: 'SHA-1 MAC', options: { macDigest: 'sha1' } },
    { name: 'no MAC', options: { noMac: true } },
    { name: 'empty password as no bytes (Windows style), AES', options: { nullPassword: true, encryptedCerts: true } },
    { name: 'empty password as no bytes (Windows style), 3DES', options: { nullPassword: true, encryptedCerts: true, encryption: '3des' } },
    { name: 'password', options: { password: 'correct horse', encryptedCerts: true }, password: 'correct horse' },
    { name: 'non-ASCII password, AES', options: { password: 'pässwörd', encryptedCerts: true }, password: 'pässwörd' },
    { name: 'non-ASCII password, 3DES', options: { password: 'pässwörd', encryption: '3des', encryptedCerts: true }, password: 'pässwörd' },
  ];
  for (const c of cases) {
    const chain = defaultChain(c.options.keyType ?? 'rsa');
    t.equal(pkcs12ToPem(makePfx(c.options), c.password), expectedPem(chain), c.name);
  }
});

t.test('BER encoding: constructed OCTET STRINGs and indefinite lengths', async (t) => {
  for (const keyType of ['rsa', 'ec'] as KeyType[]) {
    const ber = toBer(makePfx({ keyType, certOrder: ['root', 'leaf', 'intermediate'], encryptedCerts: true }));
    t.equal(ber[1], 0x80, `${keyType}: indefinite length`);
    t.equal(pkcs12ToPem(ber), expectedPem(defaultChain(keyType)), keyType);
  }
});

t.test('files written by forge and by OpenSSL', async (t) => {
  const chain = defaultChain('rsa');
  t.equal(pkcs12ToPem(makeForgePfx(chain, '', '3des')), expectedPem(chain), 'forge, 3DES, empty password');
  t.equal(pkcs12ToPem(makeForgePfx(chain, 'secret', 'aes256'), 'secret'), expectedPem(chain), 'forge, AES-256, password');

  const cases: Array<{ name: string; keyType: KeyType; password: string; certOrder: ChainRole[]; args?: string[] }> = [
    { name: 'OpenSSL 3 defaults', keyType: 'rsa', password: '', certOrder: ['root', 'intermediate', 'leaf'] },
    { name: 'OpenSSL, EC, non-ASCII password', keyType: 'ec', password: 'sécret', certOrder: ['intermediate', 'root', 'leaf'] },
    {
      name: 'OpenSSL, 3DES and SHA-1 MAC',
      keyType: 'ec',
      password: '',
      certOrder: ['root', 'leaf', 'intermediate'],
      args: ['-certpbe', 'PBE-SHA1-3DES', '-keypbe', 'PBE-SHA1-3DES', '-macalg', 'sha1'],
    },
    { name: 'OpenSSL, unencrypted', keyType: 'rsa', password: '', certOrder: ['leaf', 'root', 'intermediate'], args: ['-keypbe', 'NONE', '-certpbe', 'NONE'] },
    // RC2-40 certificates and 3DES key, as older Windows and Key Vault exports
    { name: 'OpenSSL -legacy (RC2-40)', keyType: 'rsa', password: '', certOrder: ['intermediate', 'leaf', 'root'], args: ['-legacy'] },
  ];
  // Skipped, saying why, where this machine's openssl cannot write a case; any other failure of openssl fails the case.
  const noOpenssl = opensslCannot(['version'], 'openssl is not installed');
  const noLegacy = noOpenssl || opensslCannot(['list', '-providers', '-provider', 'legacy'], "openssl's legacy provider is not available");
  for (const c of cases) {
    t.test(c.name, { skip: c.args?.includes('-legacy') ? noLegacy : noOpenssl }, async (t) => {
      const pfx = makeOpensslPfx(defaultChain(c.keyType), c.password, c.certOrder, c.args);
      if (pfx === undefined) throw new Error('openssl went missing');
      t.equal(pkcs12ToPem(pfx, c.password), expectedPem(defaultChain(c.keyType)));
    });
  }
});

/** `reason` when `openssl ...args` fails (or openssl is missing), false when it runs. */
function opensslCannot(args: string[], reason: string): string | false {
  try {
    execFileSync('openssl', args, { stdio: 'ignore' });
    return false;
  } catch {
    return reason;
  }
}

t.test('certificates are written byte for byte, even where forge would re-encode them', async (t) => {
  // An RSA leaf signed by an EC CA: forge's X.509 round trip adds a NULL to the ECDSA algorithm.
  const chain = makeChain({ caKeyType: 'ec' });
  const reencoded = forge.asn1.toDer(forge.pki.certificateToAsn1(forge.pki.certificateFromPem(chain.leaf.pem))).getBytes();
  t.not(reencoded, chain.leaf.der.toString('binary'), 'forge changes the certificate');
  const { certificates, keys } = readPkcs12(makePfx({ chain, certOrder: ['intermediate', 'leaf', 'root'] }));
  t.same(certificates, [chain.intermediate.der, chain.leaf.der, chain.root.der], 'readPkcs12 keeps file order and bytes');
  t.equal(keys.length, 1);
  t.equal(pkcs12ToPem(makePfx({ chain, certOrder: ['root', 'intermediate', 'leaf'] })), expectedPem(chain));
});

t.test('an unrelated extra certificate is kept at the end', async (t) => {
  const chain = defaultChain('ec');
  const other = makeCertificate({ subject: 'Unrelated Root', keyType: 'ec', ca: true });
  const pem = pkcs12ToPem(makePfx({ keyType: 'ec', certOrder: ['intermediate', 'root', 'leaf'], extraCerts: [other] }));
  t.equal(pem, expectedPem(chain) + other.pem);
});

t.test('a key matching no certificate is still written, certificates ordered among themselves', async (t) => {
  const chain = defaultChain('ec');
  const pem = pkcs12ToPem(makePfx({ keyType: 'ec', certOrder: ['root', 'intermediate'] }));
  t.equal(pem, keyPem(chain) + chain.intermediate.pem + chain.root.pem);
});

t.test('the certificate matching the key leads, even when another one looks like a leaf', async (t) => {
  const chain = defaultChain('ec');
  const stranger = makeCertificate({ subject: 'a stranger leaf', keyType: 'ec', issuer: chain.intermediate });
  const pem = pkcs12ToPem(makePfx({ keyType: 'ec', certOrder: [], extraCerts: [stranger, chain.root, chain.intermediate, chain.leaf] }));
  t.equal(pem, expectedPem(chain) + stranger.pem);
});

t.test('a file with certificates only is ordered without a key', async (t) => {
  const chain = defaultChain('rsa');
  const pem = pkcs12ToPem(makePfx({ noKey: true, certOrder: ['intermediate', 'root', 'leaf'] }));
  t.equal(pem, chain.leaf.pem + chain.intermediate.pem + chain.root.pem);
});

t.test('errors', async (t) => {
  const chain = defaultChain('rsa');
  const good = makePfx();
  const cases: Array<{ name: string; pfx: Uint8Array; password?: string; message: RegExp }> = [
    { name: 'empty', pfx: new Uint8Array(), message: /^not a PKCS#12 file: / },
    { name: 'text', pfx: Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n'), message: /^not a PKCS#12 file: / },
    { name: 'a certificate', pfx: chain.leaf.der, message: /^not a PKCS#12 file: / },
    { name: 'truncated', pfx: good.subarray(0, good.length - 40), message: /^not a PKCS#12 file: / },
    { name: 'trailing garbage', pfx: Buffer.concat([good, Buffer.from([0, 1, 2])]), message: /^not a PKCS#12 file: / },
    { name: 'wrong password', pfx: good, password: 'nope', message: /^cannot open PKCS#12 file: MAC verification failed \(wrong password\?\)/ },
    { name: 'password needed', pfx: makePfx({ password: 'secret' }), message: /MAC verification failed/ },
    {
      name: 'no MAC, wrong password for the key',
      pfx: makePfx({ noMac: true, password: 'secret', encryption: '3des' }),
      message: /^cannot decrypt the private key of the PKCS#12 file/,
    },
    { name: 'no certificate', pfx: makePfx({ certOrder: [] }), message: /^PKCS#12 file contains no certificate$/ },
  ];
  for (const c of cases) {
    t.throws(() => pkcs12ToPem(c.pfx, c.password), { message: c.message }, c.name);
  }
});
