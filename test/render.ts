// Content that cannot be written as asked: a ContentError with the cause and the fix, never a wrong file.
import t from 'tap';
import { ContentError, renderCertificate, renderKey, renderSecret } from '../src/fetch/render.js';
import { selectVersions } from '../src/fetch/read-object.js';
import type { ObjectSpec } from '../src/object-spec.js';

const secret = (fields: Partial<ObjectSpec> = {}): ObjectSpec => ({
  objectName: 'x', objectType: 'secret', objectVersion: '', objectAlias: 'x', objectFormat: 'pem', objectEncoding: 'utf-8',
  filePermission: 0o644, objectVersionHistory: 1, optional: false, ...fields,
});

t.test('content errors', async (t) => {
  const cases: Array<{ name: string; run: () => unknown; message: RegExp; hint: RegExp }> = [
    { name: 'corrupt PKCS#12', run: () => renderSecret(secret(), { version: 'v', value: Buffer.from('not a pfx').toString('base64'), contentType: 'application/x-pkcs12' }), message: /cannot convert the PKCS#12 certificate to PEM: not a PKCS#12 file/, hint: /re-import the certificate/ },
    { name: 'PKCS#12 value not base64', run: () => renderSecret(secret(), { version: 'v', value: '%%%', contentType: 'application/x-pkcs12' }), message: /the value is not valid base64/, hint: /corrupt; re-import it/ },
    { name: 'pfx of a PEM certificate', run: () => renderSecret(secret({ objectFormat: 'pfx' }), { version: 'v', value: '-----BEGIN', contentType: 'application/x-pem-file' }), message: /content type is "application\/x-pem-file"/, hint: /stored as PEM: remove objectFormat/ },
    { name: 'pfx of a plain secret', run: () => renderSecret(secret({ objectFormat: 'pfx' }), { version: 'v', value: 'x', contentType: undefined }), message: /content type is not set/, hint: /remove objectFormat pfx/ },
    { name: 'hex that is not hex', run: () => renderSecret(secret({ objectEncoding: 'hex' }), { version: 'v', value: 'abc', contentType: undefined }), message: /not hexadecimal/, hint: /store the value as hex digits/ },
    { name: 'symmetric key', run: () => renderKey({ kty: 'oct' }), message: /symmetric key/, hint: /only RSA and EC keys/ },
    { name: 'pending certificate', run: () => renderCertificate(new Uint8Array()), message: /has no content/, hint: /wait for the certificate to be issued/ },
    { name: 'start version not enabled', run: () => selectVersions([{ version: 'a', enabled: false, createdOn: new Date() }], 'a', 2), message: /objectVersion a is not an enabled version/, hint: /pick an enabled version/ },
  ];
  for (const c of cases) {
    const error = await Promise.resolve().then(c.run).then(() => undefined, (e: unknown) => e);
    t.type(error, ContentError, c.name);
    t.match((error as ContentError).message, c.message, `${c.name}: message`);
    t.match((error as ContentError).hint, c.hint, `${c.name}: hint`);
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
