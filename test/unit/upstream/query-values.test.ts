import t from 'tap';
import { jsonToParameter, textToJson } from '../../../src/upstream/query.ts';

t.test('result values: text form to JSON by type OID', async (t) => {
  t.equal(textToJson(null, 23), null);
  t.equal(textToJson('t', 16), true);
  t.equal(textToJson('f', 16), false);
  t.equal(textToJson('-32768', 21), -32768);
  t.equal(textToJson('2147483647', 23), 2147483647);
  t.equal(textToJson('4294967295', 26), 4294967295);
  t.equal(textToJson('1.5', 701), 1.5);
  t.equal(textToJson('NaN', 701), 'NaN', 'not a JSON number: kept as text');
  t.equal(textToJson('-Infinity', 700), '-Infinity');
  t.equal(textToJson('9223372036854775807', 20), '9223372036854775807', 'int8 keeps its precision');
  t.equal(textToJson('0.1000000000000000000001', 1700), '0.1000000000000000000001');
  t.same(textToJson('{"a":[1,null]}', 3802), { a: [1, null] });
  t.same(textToJson('[1,2]', 114), [1, 2]);
  t.equal(textToJson('2026-11-24 10:00:00+00', 1184), '2026-11-24 10:00:00+00');
});

t.test('arguments: JSON to the text form Bind sends', async (t) => {
  t.equal(jsonToParameter(null), null);
  t.equal(jsonToParameter(true), 'true');
  t.equal(jsonToParameter(42), '42');
  t.equal(jsonToParameter('plain'), 'plain');
  t.equal(jsonToParameter({ k: 'v' }), '{"k":"v"}');
  t.equal(jsonToParameter([1, null, 'a b', 'q"\\']), '{"1",NULL,"a b","q\\"\\\\"}');
  t.equal(
    jsonToParameter([
      [1, 2],
      [3, 4],
    ]),
    '{{"1","2"},{"3","4"}}',
  );
  t.equal(jsonToParameter([{ k: 1 }]), '{"{\\"k\\":1}"}');
});
