// Object lists as users write them in annotations and SecretProviderClasses.
import t from 'tap';
import { decodeObjectList } from '../src/object-list.js';
import { parseObjects } from '../src/objects.js';

t.test('the accepted forms', async (t) => {
  const cases: Array<[string, string, unknown[]]> = [
    [
      'JSON',
      '[{"objectName":"a","objectType":"secret","optional":true,"objectVersionHistory":2}]',
      [{ objectName: 'a', objectType: 'secret', optional: 'true', objectVersionHistory: '2' }],
    ],
    ['YAML list', '- objectName: a\n  objectType: key\n  filePermission: 0440\n', [{ objectName: 'a', objectType: 'key', filePermission: '0440' }]],
    ['YAML flow', '[{objectName: a, objectType: cert}]', [{ objectName: 'a', objectType: 'cert' }]],
    [
      'CSI array of YAML strings',
      'array:\n  - |\n    objectName: secret1\n    objectType: secret\n    objectVersion: ""\n  - |\n    objectName: key1\n    objectType: key\n    filePermission: 0755\n',
      [
        { objectName: 'secret1', objectType: 'secret', objectVersion: '' },
        { objectName: 'key1', objectType: 'key', filePermission: '0755' },
      ],
    ],
    ['CSI array of maps', 'array:\n  - objectName: a\n    objectType: secret\n', [{ objectName: 'a', objectType: 'secret' }]],
    ['CSI array with no items (the provider mounts nothing)', 'array:\n', []],
    ['CSI empty array', 'array: []', []],
    ['an empty list', '[]', []],
  ];
  for (const [name, text, items] of cases) t.same(decodeObjectList(text), { ok: true, items }, name);
  const parsed = parseObjects((decodeObjectList('- objectName: a\n  objectType: key\n  filePermission: 0440\n') as { items: unknown[] }).items);
  t.equal(parsed.objects[0]?.filePermission, 0o440, 'an unquoted 0440 stays octal through YAML');
});

t.test('what is refused', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['broken JSON', '[{"objectName": ', /is not valid YAML or JSON/],
    ['a map', 'objectName: a', /must be a list of objects/],
    ['a string', 'db-password', /must be a list of objects/],
    ['array not a list', 'array: nope', /"array:" that is not a list/],
    ['bad item YAML', 'array:\n  - "a: [unclosed"\n', /"array:" item 0 that is not valid YAML/],
    ['duplicate keys', '- objectName: a\n  objectName: b\n', /is not valid YAML or JSON/],
  ];
  for (const [name, text, problem] of cases) {
    const result = decodeObjectList(text);
    t.equal(result.ok, false, name);
    if (!result.ok) t.match(result.problem, problem, name);
  }
});
