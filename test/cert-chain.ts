// Chain ordering: leaf → intermediates → root from any input order, linked by name and, where present, key identifier.
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { orderChain } from '../src/cert-chain.js';
import { derToPem } from '../src/pem.js';
import { makeCertificate, makeChain, type Chain, type ChainRole, type TestCert } from './fixtures/certs.js';

const ROLES: ChainRole[] = ['leaf', 'intermediate', 'root'];
// Certificates made for one test use EC keys: linking does not depend on the key type, and RSA key generation is slow.

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) => permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]));
}

/** Names of the certificates in `ordered`, looked up among `known`. */
function namesOf(ordered: Uint8Array[], known: Record<string, TestCert>): string[] {
  return ordered.map((der) => Object.keys(known).find((name) => known[name]?.der.equals(der)) ?? '?');
}

const chains: Array<{ name: string; chain: Chain }> = [
  { name: 'RSA, key identifiers', chain: makeChain() },
  { name: 'RSA, names only (no AKI/SKI)', chain: makeChain({ keyIdentifiers: false }) },
  { name: 'EC leaf under RSA CAs', chain: makeChain({ leafKeyType: 'ec' }) },
  { name: 'EC CAs and EC leaf', chain: makeChain({ leafKeyType: 'ec', caKeyType: 'ec' }) },
  { name: 'RSA leaf under EC CAs', chain: makeChain({ caKeyType: 'ec' }) },
];

t.test('fixture chains are valid', async (t) => {
  for (const { name, chain } of chains) {
    const [root, intermediate, leaf] = [chain.root, chain.intermediate, chain.leaf].map((c) => new X509Certificate(c.der));
    t.ok(root?.verify(root.publicKey), `${name}: root is self-signed`);
    t.ok(intermediate?.verify(root!.publicKey), `${name}: intermediate signed by root`);
    t.ok(leaf?.verify(intermediate!.publicKey), `${name}: leaf signed by intermediate`);
    t.equal(leaf?.ca, false, `${name}: leaf is not a CA`);
  }
});

t.test('every input order comes out leaf → intermediate → root', async (t) => {
  for (const { name, chain } of chains) {
    for (const order of permutations(ROLES)) {
      const ordered = orderChain(order.map((role) => chain[role].der));
      t.same(namesOf(ordered, { ...chain }), ROLES, `${name}: ${order.join(', ')}`);
    }
  }
});

t.test('returns the same objects it was given', async (t) => {
  const chain = chains[0]!.chain;
  const input = [chain.root.der, chain.leaf.der, chain.intermediate.der];
  const ordered = orderChain(input);
  t.equal(ordered[0], input[1]);
  t.equal(ordered[1], input[2]);
  t.equal(ordered[2], input[0]);
});

t.test('key identifiers pick the right issuer among CAs with the same name', async (t) => {
  const root = makeCertificate({ keyType: 'ec', subject: 'Same Root', ca: true });
  const wrong = makeCertificate({ keyType: 'ec', subject: 'Same Intermediate', issuer: root, ca: true });
  const right = makeCertificate({ keyType: 'ec', subject: 'Same Intermediate', issuer: root, ca: true });
  const leaf = makeCertificate({ keyType: 'ec', subject: 'leaf', issuer: right });
  const known = { root, wrong, right, leaf };
  const cases: Array<{ input: Array<keyof typeof known>; expect: string[] }> = [
    { input: ['wrong', 'right', 'leaf', 'root'], expect: ['leaf', 'right', 'root', 'wrong'] },
    { input: ['leaf', 'wrong', 'root', 'right'], expect: ['leaf', 'right', 'root', 'wrong'] },
    { input: ['root', 'right', 'wrong', 'leaf'], expect: ['leaf', 'right', 'root', 'wrong'] },
  ];
  for (const c of cases) {
    t.same(namesOf(orderChain(c.input.map((name) => known[name].der)), known), c.expect, c.input.join(', '));
  }
});

t.test('names are compared by attribute, not by encoding, case or spacing', async (t) => {
  const root = makeCertificate({
    keyType: 'ec',
    subject: [
      { type: 'C', value: 'US', encoding: 'printable' },
      { type: 'CN', value: 'Root CA', encoding: 'printable' },
    ],
    ca: true,
    keyIdentifiers: false,
  });
  const intermediate = makeCertificate({
    keyType: 'ec',
    subject: [
      { type: 'O', value: 'Example Org' },
      { type: 'CN', value: 'Issuing CA' },
    ],
    issuer: root,
    issuerName: [
      { type: 'C', value: 'us' },
      { type: 'CN', value: '  root   ca ' },
    ],
    ca: true,
    keyIdentifiers: false,
  });
  const leaf = makeCertificate({
    keyType: 'ec',
    subject: 'leaf',
    issuer: intermediate,
    issuerName: [
      { type: 'O', value: 'EXAMPLE ORG', encoding: 'printable' },
      { type: 'CN', value: 'Issuing CA', encoding: 'printable' },
    ],
    keyIdentifiers: false,
  });
  const known = { root, intermediate, leaf };
  t.same(namesOf(orderChain([root.der, leaf.der, intermediate.der]), known), ['leaf', 'intermediate', 'root']);
});

t.test('a different attribute type or order in the name does not link', async (t) => {
  const root = makeCertificate({ keyType: 'ec', subject: [{ type: 'O', value: 'Root' }], ca: true, keyIdentifiers: false });
  const leaf = makeCertificate({ keyType: 'ec', subject: 'leaf', issuer: root, issuerName: [{ type: 'OU', value: 'Root' }], keyIdentifiers: false });
  t.same(namesOf(orderChain([root.der, leaf.der]), { root, leaf }), ['leaf', 'root'], 'the leaf still comes first: it is the non-CA');
  t.same(namesOf(orderChain([leaf.der, root.der]), { root, leaf }), ['leaf', 'root']);
});

t.test('unrelated certificates are kept after the chain, in their original order', async (t) => {
  const chain = chains[0]!.chain;
  const otherRoot = makeCertificate({ keyType: 'ec', subject: 'Other Root', ca: true });
  const otherLeaf = makeCertificate({ keyType: 'ec', subject: 'other leaf', issuer: otherRoot });
  const known = { ...chain, otherRoot, otherLeaf };
  const cases: Array<{ input: Array<keyof typeof known>; expect: string[] }> = [
    { input: ['otherRoot', 'root', 'leaf', 'intermediate'], expect: ['leaf', 'intermediate', 'root', 'otherRoot'] },
    { input: ['root', 'otherRoot', 'intermediate', 'leaf'], expect: ['leaf', 'intermediate', 'root', 'otherRoot'] },
    { input: ['leaf', 'otherLeaf', 'intermediate', 'otherRoot', 'root'], expect: ['leaf', 'intermediate', 'root', 'otherLeaf', 'otherRoot'] },
    { input: ['otherLeaf', 'leaf', 'intermediate', 'root'], expect: ['otherLeaf', 'leaf', 'intermediate', 'root'] },
  ];
  for (const c of cases) {
    t.same(namesOf(orderChain(c.input.map((name) => known[name].der)), known), c.expect, c.input.join(', '));
  }
});

t.test('the leaf can be named, e.g. the certificate matching the private key', async (t) => {
  const chain = chains[0]!.chain;
  const otherRoot = makeCertificate({ keyType: 'ec', subject: 'Other Root', ca: true });
  const otherLeaf = makeCertificate({ keyType: 'ec', subject: 'other leaf', issuer: otherRoot });
  const known = { ...chain, otherLeaf };
  const input = [otherLeaf.der, chain.root.der, chain.intermediate.der, chain.leaf.der];
  t.same(namesOf(orderChain(input, { leaf: 3 }), known), ['leaf', 'intermediate', 'root', 'otherLeaf']);
  t.throws(() => orderChain(input, { leaf: 4 }), { message: /leaf index 4 is out of range/ });
});

t.test('partial chains, single certificates and no certificates', async (t) => {
  const chain = chains[0]!.chain;
  const known = { ...chain };
  t.same(namesOf(orderChain([chain.intermediate.der, chain.leaf.der]), known), ['leaf', 'intermediate'], 'no root');
  t.same(namesOf(orderChain([chain.root.der, chain.leaf.der]), known), ['leaf', 'root'], 'missing intermediate: root is unrelated');
  t.same(namesOf(orderChain([chain.root.der, chain.intermediate.der]), known), ['intermediate', 'root'], 'no leaf: the intermediate leads');
  t.same(namesOf(orderChain([chain.leaf.der]), known), ['leaf']);
  t.same(orderChain([]), []);
});

t.test('cross-signed CAs that issue each other do not loop', async (t) => {
  const aKeyHolder = makeCertificate({ keyType: 'ec', subject: 'CA A', ca: true });
  const b = makeCertificate({ keyType: 'ec', subject: 'CA B', issuer: aKeyHolder, ca: true });
  const a = makeCertificate({ keyType: 'ec', subject: 'CA A', issuer: b, privateKey: aKeyHolder.privateKey, ca: true });
  t.same(namesOf(orderChain([a.der, b.der]), { a, b }), ['a', 'b']);
  t.same(namesOf(orderChain([b.der, a.der]), { a, b }), ['b', 'a']);
});

t.test('malformed certificates are reported with their position', async (t) => {
  const chain = chains[0]!.chain;
  const cases: Array<{ name: string; der: Uint8Array }> = [
    { name: 'garbage', der: Buffer.from('not a certificate') },
    { name: 'empty', der: new Uint8Array() },
    { name: 'truncated', der: chain.leaf.der.subarray(0, 100) },
    { name: 'a SEQUENCE that is no certificate', der: Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]) },
  ];
  for (const c of cases) {
    t.throws(() => orderChain([chain.leaf.der, c.der]), { message: /^certificate 2 is not a valid X\.509 certificate: / }, c.name);
  }
});

t.test('derToPem writes one CERTIFICATE block', async (t) => {
  for (const { name, chain } of chains) {
    const der = chain.leaf.der;
    const pem = derToPem(der, 'CERTIFICATE');
    const lines = pem.split('\n');
    t.equal(lines[0], '-----BEGIN CERTIFICATE-----', `${name}: header`);
    t.equal(lines.at(-2), '-----END CERTIFICATE-----', `${name}: footer`);
    t.equal(lines.at(-1), '', `${name}: trailing newline`);
    t.ok(
      lines.slice(1, -3).every((line) => line.length === 64),
      `${name}: full lines are 64 characters`,
    );
    t.ok((lines.at(-3)?.length ?? 0) <= 64, `${name}: last line at most 64 characters`);
    t.equal(pem, new X509Certificate(der).toString(), `${name}: same as OpenSSL writes it`);
    t.ok(new X509Certificate(pem).raw.equals(der), `${name}: round-trips`);
  }
  const view = Buffer.concat([Buffer.from([1, 2, 3]), chains[0]!.chain.root.der]).subarray(3);
  t.equal(derToPem(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), 'CERTIFICATE'), chains[0]!.chain.root.pem, 'a view into a larger buffer');
});
