// The object list: normalization of every field, and every problem reported at once with its object and value.
import t from 'tap';
import { formatMode, outputPaths, parseGoBool, parseObjects } from '../src/objects.js';

t.test('valid objects are normalized', async (t) => {
  const cases: Array<{ name: string; input: Record<string, unknown>; expect: Record<string, unknown> }> = [
    {
      name: 'defaults',
      input: { objectName: 'db-password', objectType: 'secret' },
      expect: {
        objectAlias: 'db-password',
        objectVersion: '',
        objectFormat: 'pem',
        objectEncoding: 'utf-8',
        filePermission: 0o644,
        objectVersionHistory: 1,
        optional: false,
      },
    },
    {
      name: 'strings are trimmed, type and format case-insensitive',
      input: { objectName: ' tls ', objectType: ' SECRET ', objectFormat: 'PFX', objectEncoding: 'Base64', objectAlias: ' certs/tls.pfx ' },
      expect: { objectName: 'tls', objectType: 'secret', objectFormat: 'pfx', objectEncoding: 'base64', objectAlias: 'certs/tls.pfx' },
    },
    { name: 'unquoted YAML 0755 still means octal', input: { objectName: 'a', objectType: 'key', filePermission: 755 }, expect: { filePermission: 0o755 } },
    { name: 'quoted four-digit permission', input: { objectName: 'a', objectType: 'cert', filePermission: '0440' }, expect: { filePermission: 0o440 } },
    { name: 'version history as a number', input: { objectName: 'a', objectType: 'secret', objectVersionHistory: 3 }, expect: { objectVersionHistory: 3 } },
    { name: 'version history as a string', input: { objectName: 'a', objectType: 'secret', objectVersionHistory: '2' }, expect: { objectVersionHistory: 2 } },
    {
      name: 'version history 0 is one version, as the provider reads it',
      input: { objectName: 'a', objectType: 'secret', objectVersionHistory: 0 },
      expect: { objectVersionHistory: 1 },
    },
    {
      name: 'version history at its limit',
      input: { objectName: 'a', objectType: 'secret', objectVersionHistory: '1024' },
      expect: { objectVersionHistory: 1024 },
    },
    { name: 'optional as Go ParseBool "T"', input: { objectName: 'a', objectType: 'secret', optional: 'T' }, expect: { optional: true } },
    { name: 'optional boolean', input: { objectName: 'a', objectType: 'secret', optional: true }, expect: { optional: true } },
    { name: 'trailing slash of alias dropped', input: { objectName: 'a', objectType: 'secret', objectAlias: 'dir/a/' }, expect: { objectAlias: 'dir/a' } },
    {
      name: 'version kept',
      input: { objectName: 'a', objectType: 'secret', objectVersion: '0123456789abcdef0123456789abcdef' },
      expect: { objectVersion: '0123456789abcdef0123456789abcdef' },
    },
    { name: 'null fields are absent', input: { objectName: 'a', objectType: 'secret', objectAlias: null }, expect: { objectAlias: 'a' } },
  ];
  for (const c of cases) {
    const { objects, problems } = parseObjects([c.input]);
    t.same(problems, [], `${c.name}: no problems`);
    t.match(objects[0], c.expect, c.name);
  }
});

t.test('invalid objects: each problem names the object, the field, the value and what is allowed', async (t) => {
  const cases: Array<{ name: string; input: unknown; problem: RegExp }> = [
    { name: 'missing name', input: { objectType: 'secret' }, problem: /^object 0: objectName is required/ },
    {
      name: 'bad name',
      input: { objectName: 'a_b', objectType: 'secret' },
      problem: /object 0 "a_b": objectName "a_b" must be 1-127 letters, digits and hyphens/,
    },
    { name: 'missing type', input: { objectName: 'a' }, problem: /object 0 "a": objectType is required: one of secret, key, cert/ },
    { name: 'bad type', input: { objectName: 'a', objectType: 'secrets' }, problem: /objectType "secrets" is not one of secret, key, cert/ },
    {
      name: 'absolute alias',
      input: { objectName: 'a', objectType: 'secret', objectAlias: '/etc/passwd' },
      problem: /objectAlias "\/etc\/passwd" must be a path relative/,
    },
    {
      name: 'traversal alias',
      input: { objectName: 'a', objectType: 'secret', objectAlias: 'x/../../etc' },
      problem: /objectAlias "x\/..\/..\/etc" must not contain "\.\."/,
    },
    { name: 'reserved alias', input: { objectName: 'a', objectType: 'secret', objectAlias: '..data' }, problem: /must not start with "\.\."/ },
    { name: 'empty segment', input: { objectName: 'a', objectType: 'secret', objectAlias: 'a//b' }, problem: /empty or "\." path segments/ },
    { name: 'backslash', input: { objectName: 'a', objectType: 'secret', objectAlias: 'a\\b' }, problem: /must use "\/"/ },
    {
      name: 'pfx with key',
      input: { objectName: 'a', objectType: 'key', objectFormat: 'pfx' },
      problem: /objectFormat "pfx" is only allowed with objectType secret/,
    },
    { name: 'bad format', input: { objectName: 'a', objectType: 'secret', objectFormat: 'der' }, problem: /objectFormat "der" is not one of pem, pfx/ },
    {
      name: 'encoding with cert',
      input: { objectName: 'a', objectType: 'cert', objectEncoding: 'base64' },
      problem: /objectEncoding "base64" is only allowed with objectType secret/,
    },
    {
      name: 'bad encoding',
      input: { objectName: 'a', objectType: 'secret', objectEncoding: 'utf-16' },
      problem: /objectEncoding "utf-16" is not one of utf-8, base64, hex/,
    },
    {
      name: 'hex pfx',
      input: { objectName: 'a', objectType: 'secret', objectFormat: 'pfx', objectEncoding: 'hex' },
      problem: /cannot be combined with objectFormat pfx/,
    },
    {
      name: 'permission not octal',
      input: { objectName: 'a', objectType: 'secret', filePermission: '0999' },
      problem: /filePermission "0999" must be an octal file mode/,
    },
    { name: 'permission setuid', input: { objectName: 'a', objectType: 'secret', filePermission: '4755' }, problem: /filePermission "4755"/ },
    { name: 'permission words', input: { objectName: 'a', objectType: 'secret', filePermission: 'rw-r--r--' }, problem: /filePermission "rw-r--r--"/ },
    {
      name: 'history too long',
      input: { objectName: 'a', objectType: 'secret', objectVersionHistory: '1025' },
      problem: /objectVersionHistory "1025" must be a whole number of versions from 0 to 1024 \(0 and 1 both mean one version\)/,
    },
    {
      name: 'history of more digits than any limit',
      input: { objectName: 'a', objectType: 'secret', objectVersionHistory: '4294967296' },
      problem: /objectVersionHistory "4294967296" must be a whole number/,
    },
    {
      name: 'history negative',
      input: { objectName: 'a', objectType: 'secret', objectVersionHistory: '-1' },
      problem: /objectVersionHistory "-1" must be a whole number/,
    },
    { name: 'history fraction', input: { objectName: 'a', objectType: 'secret', objectVersionHistory: '1.5' }, problem: /objectVersionHistory "1.5"/ },
    { name: 'optional word', input: { objectName: 'a', objectType: 'secret', optional: 'yes' }, problem: /optional "yes" must be true or false/ },
    {
      name: 'bad version',
      input: { objectName: 'a', objectType: 'secret', objectVersion: '../x' },
      problem: /objectVersion "..\/x" must be a Key Vault version id/,
    },
    {
      name: 'typo field',
      input: { objectName: 'a', objectType: 'secret', objectname: 'b' },
      problem: /unknown field "objectname"; did you mean "objectName"\?/,
    },
    { name: 'unknown field', input: { objectName: 'a', objectType: 'secret', path: 'b' }, problem: /unknown field "path"; allowed fields: objectName/ },
    { name: 'nested value', input: { objectName: 'a', objectType: { x: 1 } }, problem: /objectType must be a single value, got a map/ },
    { name: 'not a map', input: 'objectName: a', problem: /object 0: must be a map of fields .* got string/ },
  ];
  for (const c of cases) {
    const { objects, problems } = parseObjects([c.input]);
    t.equal(objects.length, 0, `${c.name}: rejected`);
    t.match(problems.join('\n'), c.problem, c.name);
  }
});

t.test('all problems of all objects at once', async (t) => {
  const { problems } = parseObjects([
    { objectName: 'ok', objectType: 'secret' },
    { objectName: 'bad', objectType: 'nope', filePermission: 'x' },
    { objectType: 'key' },
  ]);
  t.equal(problems.length, 3);
  t.match(problems[0], /^object 1 "bad": objectType "nope"/);
  t.match(problems[1], /^object 1 "bad": filePermission "x"/);
  t.match(problems[2], /^object 2: objectName is required/);
});

t.test('the list itself', async (t) => {
  t.match(parseObjects({ objectName: 'a' }).problems, [/must be a list/]);
  t.same(parseObjects([]), { objects: [], problems: [] }, 'an empty list is valid: nothing is written');
});

t.test('output clashes between objects', async (t) => {
  t.match(
    parseObjects([
      { objectName: 'a', objectType: 'secret' },
      { objectName: 'b', objectType: 'secret', objectAlias: 'a' },
    ]).problems,
    [/objects "a" and "b" both write "a"/],
  );
  t.match(
    parseObjects([
      { objectName: 'a', objectType: 'secret', objectVersionHistory: 2 },
      { objectName: 'b', objectType: 'secret', objectAlias: 'a' },
    ]).problems,
    [/object "b" writes the file "a" but object "a" needs it as a folder for "a\/0"/],
  );
  t.same(
    parseObjects([
      { objectName: 'a', objectType: 'secret', objectAlias: 'x/a' },
      { objectName: 'b', objectType: 'secret', objectAlias: 'x/b' },
    ]).problems,
    [],
  );
});

t.test('helpers', async (t) => {
  t.same(outputPaths({ objectAlias: 'a', objectVersionHistory: 3 } as never), ['a/0', 'a/1', 'a/2']);
  t.same(outputPaths({ objectAlias: 'a', objectVersionHistory: 1 } as never), ['a']);
  t.equal(formatMode(0o440), '0440');
  t.equal(formatMode(0o7), '0007');
  t.equal(formatMode(0o4755), '04755', 'setuid and friends: all the digits');
  t.equal(formatMode(-1), '-1', 'a number that is no mode is said as it is');
  t.equal(formatMode(1.5), '1.5');
  for (const v of ['1', 't', 'T', 'true', 'TRUE', 'True']) t.equal(parseGoBool(v), true, v);
  for (const v of ['0', 'f', 'F', 'false', 'FALSE', 'False']) t.equal(parseGoBool(v), false, v);
  for (const v of ['yes', 'tRUE', '']) t.equal(parseGoBool(v), undefined, v);
});

t.test('values are compared case-insensitively and quoted as written', async (t) => {
  const { problems } = parseObjects([{ objectName: 'a', objectType: 'Secret', objectEncoding: 'SECRET_ALIAS', objectFormat: 'PFX_X' }]);
  t.match(problems.join('\n'), /objectFormat "PFX_X" is not one of pem, pfx/);
  t.match(problems.join('\n'), /objectEncoding "SECRET_ALIAS" is not one of utf-8, base64, hex/);
  t.match(parseObjects([{ objectName: 'a', objectType: 'Blob' }]).problems, [/objectType "Blob" is not one of secret, key, cert/]);
});
