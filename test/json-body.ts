// The JSON body parser: the value count bounds every real body from above, strings do not fool it, and the answers.
import t from 'tap';
import fc from 'fast-check';
import { countJsonValues, MAX_JSON_VALUES, parseJsonBody } from '../webhook/json-body.js';
import { FIXTURES, loadReview } from './fixtures/admission-fixtures.js';

/** Array items and object members below the root. */
function nestedValues(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + 1 + nestedValues(item), 0);
  if (value !== null && typeof value === 'object') return Object.values(value).reduce((sum: number, item) => sum + 1 + nestedValues(item), 0);
  return 0;
}

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

t.test('the count is never below the values JSON.parse builds, and strings do not count', async (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const text = JSON.stringify(value);
      return countJsonValues(bytes(text)) >= nestedValues(value);
    }),
    { numRuns: 500 },
  );
  const cases: Array<{ json: string; count: number }> = [
    { json: '{}', count: 1 },
    { json: '[1,2,3]', count: 3 },
    { json: '{"a":[{},{}],"b":"x"}', count: 6 },
    { json: '"[,{,[,"', count: 0 },
    { json: '{"k":"a \\" , [ { still a string"}', count: 1 },
    { json: '["\\\\",1]', count: 2 },
  ];
  for (const c of cases) t.equal(countJsonValues(bytes(c.json)), c.count, c.json);
});

t.test('real pods are far below the bound', async (t) => {
  for (const name of FIXTURES) {
    const count = countJsonValues(bytes(JSON.stringify(loadReview(name))));
    t.ok(count > 50 && count < 1_000, `${name}: ${count} values`);
  }
});

t.test('parseJsonBody: values, 400s and 413s with messages of our own', async (t) => {
  const atBound = `[${new Array(MAX_JSON_VALUES - 1).fill('0').join(',')}]`;
  const overBound = `[${new Array(MAX_JSON_VALUES + 1).fill('0').join(',')}]`;
  const cases: Array<{ name: string; body: string; result: RegExp | 'ok' }> = [
    { name: 'an object', body: '{"apiVersion":"admission.k8s.io/v1"}', result: 'ok' },
    { name: '__proto__ stays a key', body: '{"__proto__":{"polluted":true}}', result: 'ok' },
    { name: 'empty', body: '', result: /^400 the body is empty/ },
    { name: 'not JSON', body: '{"secret-value-PLANTED": ', result: /^400 the body is not valid JSON$/ },
    { name: 'values at the bound', body: atBound, result: 'ok' },
    { name: 'values past the bound', body: overBound, result: new RegExp(`^413 the body holds more than ${MAX_JSON_VALUES} JSON values`) },
    { name: 'a long string is one value', body: JSON.stringify({ annotation: ','.repeat(3 * 1024 * 1024) }), result: 'ok' },
  ];
  for (const c of cases) {
    const parsed = parseJsonBody(bytes(c.body));
    if (c.result === 'ok') {
      t.ok(parsed.ok, c.name);
      // Compared as text: a deep comparison of the million-value array costs seconds, and for values a JSON parser
      // built, equal serializations are equal values.
      if (parsed.ok) t.equal(JSON.stringify(parsed.value), JSON.stringify(JSON.parse(c.body)), `${c.name}: as JSON.parse`);
    } else {
      t.notOk(parsed.ok, c.name);
      if (!parsed.ok) t.match(`${parsed.status} ${parsed.message}`, c.result, c.name);
    }
  }
  const proto = parseJsonBody(bytes('{"__proto__":{"polluted":true}}'));
  t.ok(proto.ok && Object.hasOwn(proto.value as object, '__proto__'), '__proto__ is an own property');
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'not the prototype');
});
