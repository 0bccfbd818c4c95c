// Content that cannot be written as asked: a ContentError with the cause and the fix, never a wrong file.
import t from 'tap';
import { ContentError, certificateBytes, publicKeyBytes, secretBytes } from '../src/fetch/content.js';
import { selectVersions } from '../src/fetch/read-object.js';
import type { ObjectSpec } from '../src/object-spec.js';

const secret = (fields: Partial<ObjectSpec> = {}): ObjectSpec => ({
  objectName: 'x',
  objectType: 'secret',
  objectVersion: '',
  objectAlias: 'x',
  objectFormat: 'pem',
  objectEncoding: 'utf-8',
  filePermission: 0o644,
  objectVersionHistory: 1,
  optional: false,
  ...fields,
});

t.test('content errors', async (t) => {
  const cases: Array<{ name: string; run: () => unknown; message: RegExp; hint: RegExp }> = [
    {
      name: 'corrupt PKCS#12',
      run: () =>
        secretBytes(secret(), {
          version: 'v',
          value: Buffer.from('not a pfx').toString('base64'),
          contentType: 'application/x-pkcs12',
          certificateBacked: true,
        }),
      message: /cannot convert the PKCS#12 certificate to PEM: not a PKCS#12 file/,
      hint: /re-import the certificate/,
    },
    {
      name: 'PKCS#12 value not base64',
      run: () => secretBytes(secret(), { version: 'v', value: '%%%', contentType: 'application/x-pkcs12', certificateBacked: true }),
      message: /the value is not valid base64/,
      hint: /corrupt; re-import it/,
    },
    {
      name: 'hex that is not hex',
      run: () => secretBytes(secret({ objectEncoding: 'hex' }), { version: 'v', value: 'abc', contentType: undefined, certificateBacked: false }),
      message: /not hexadecimal/,
      hint: /store the value as hex digits/,
    },
    { name: 'symmetric key', run: () => publicKeyBytes({ kty: 'oct' }), message: /symmetric key/, hint: /only RSA and EC keys/ },
    { name: 'pending certificate', run: () => certificateBytes(new Uint8Array()), message: /has no content/, hint: /wait for the certificate to be issued/ },
    {
      name: 'start version not enabled',
      run: () => selectVersions([{ version: 'a', enabled: false, createdOn: new Date() }], 'a', 2),
      message: /objectVersion a is not an enabled version/,
      hint: /pick an enabled version/,
    },
  ];
  for (const c of cases) {
    const error = await Promise.resolve()
      .then(c.run)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    t.type(error, ContentError, c.name);
    t.match((error as ContentError).message, c.message, `${c.name}: message`);
    t.match((error as ContentError).hint, c.hint, `${c.name}: hint`);
  }
});

t.test('a secret is a certificate only when it backs one: otherwise its value, decoded, whatever its content type or format', async (t) => {
  const pfxText = Buffer.from('not a pfx, but never opened').toString('base64');
  const cases: Array<{
    name: string;
    object: Partial<ObjectSpec>;
    content: { value: string; contentType?: string; certificateBacked: boolean };
    data: Buffer;
    ignored?: RegExp;
  }> = [
    {
      name: 'a plain secret marked application/x-pkcs12 is written as stored',
      object: {},
      content: { value: pfxText, contentType: 'application/x-pkcs12', certificateBacked: false },
      data: Buffer.from(pfxText),
    },
    {
      name: 'and decoded per objectEncoding',
      object: { objectEncoding: 'base64' },
      content: { value: pfxText, contentType: 'application/x-pkcs12', certificateBacked: false },
      data: Buffer.from('not a pfx, but never opened'),
    },
    {
      name: 'pfx on a plain secret is ignored',
      object: { objectFormat: 'pfx' },
      content: { value: 'x', certificateBacked: false },
      data: Buffer.from('x'),
      ignored: /does not back a PKCS#12 certificate: its value is written as stored/,
    },
    {
      name: 'pfx on a PEM certificate is ignored: the PEM as stored',
      object: { objectFormat: 'pfx' },
      content: { value: '-----BEGIN CERTIFICATE-----\n', contentType: 'application/x-pem-file', certificateBacked: true },
      data: Buffer.from('-----BEGIN CERTIFICATE-----\n'),
      ignored: /stored as PEM: it is written as stored/,
    },
    {
      name: 'pfx on a PKCS#12 certificate: the PFX as base64 text',
      object: { objectFormat: 'pfx' },
      content: { value: pfxText, contentType: 'application/x-pkcs12', certificateBacked: true },
      data: Buffer.from(pfxText),
    },
    {
      name: 'pfx with base64 on a PKCS#12 certificate: the binary PFX',
      object: { objectFormat: 'pfx', objectEncoding: 'base64' },
      content: { value: pfxText, contentType: 'application/x-pkcs12', certificateBacked: true },
      data: Buffer.from('not a pfx, but never opened'),
    },
    {
      name: 'a certificate of an unknown content type is written as stored',
      object: {},
      content: { value: 'abc', contentType: 'text/plain', certificateBacked: true },
      data: Buffer.from('abc'),
    },
  ];
  for (const c of cases) {
    const written = await secretBytes(secret(c.object), { version: 'v', contentType: undefined, ...c.content });
    t.same(written.data, c.data, c.name);
    if (c.ignored === undefined) t.equal(written.formatIgnored, undefined, `${c.name}: nothing ignored`);
    else t.match(written.formatIgnored, c.ignored, `${c.name}: the log says why`);
  }
});

t.test('version selection: enabled only, newest first, from the start version', async (t) => {
  const at = (d: number): Date => new Date(Date.UTC(2026, 0, d));
  const all = [
    { version: 'v1', enabled: true, createdOn: at(1) },
    { version: 'v3', enabled: true, createdOn: at(3) },
    { version: 'v2', enabled: false, createdOn: at(2) },
    { version: 'v4', enabled: true, createdOn: at(4) },
  ];
  t.same(selectVersions(all, '', 2), ['v4', 'v3']);
  t.same(selectVersions(all, '', 9), ['v4', 'v3', 'v1']);
  t.same(selectVersions(all, 'V3', 9), ['v3', 'v1'], 'version ids compare case-insensitively');
  t.same(selectVersions([], '', 1), []);
});
