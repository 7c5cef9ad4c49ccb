import t from 'tap';
import { PgError } from '../../../src/errors/pg-error.ts';
import { parseAuthorization } from '../../../src/http/authorization.ts';
import { httpStatusOf, parseSqlRequest } from '../../../src/http/sql.ts';
import { QueryError } from '../../../src/upstream/query.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

t.test('Basic credentials: RFC 7617 (the user ends at the first colon, UTF-8)', async (t) => {
  t.same(parseAuthorization(undefined), { scheme: 'none' });
  t.same(parseAuthorization('  '), { scheme: 'none' });
  t.same(parseAuthorization(`Basic ${b64('alice:pa:ss')}`), {
    scheme: 'basic',
    user: 'alice',
    password: 'pa:ss',
  });
  t.same(parseAuthorization(`basic ${b64('zoë:')}`), { scheme: 'basic', user: 'zoë', password: '' });
  const refused = (header: string) => {
    try {
      parseAuthorization(header);
      return null;
    } catch (error) {
      t.ok(error instanceof PgError);
      return [(error as PgError).sqlstate, (error as PgError).message];
    }
  };
  t.same(parseAuthorization('Bearer a.b-c_~+/=='), { scheme: 'bearer', token: 'a.b-c_~+/==' });
  t.same(parseAuthorization('bearer   tok'), { scheme: 'bearer', token: 'tok' });
  t.same(refused('Bearer a b'), ['28000', 'malformed Bearer token']);
  t.same(refused('Bearer'), ['28000', 'malformed Bearer token']);
  t.same(refused('Negotiate x'), ['28000', 'unsupported authorization scheme "Negotiate"']);
  t.same(refused('Basic'), ['28000', 'malformed Basic credentials']);
  t.same(refused('Basic abc'), ['28000', 'malformed Basic credentials'], 'not a multiple of 4');
  t.same(refused('Ba(sic x'), ['28000', 'malformed Authorization header']);
  t.same(refused(`Basic ${b64('nocolon')}`), [
    '28000',
    'malformed Basic credentials: no ":" between user and password',
  ]);
  t.same(refused(`Basic ${b64(':pw')}`), ['28000', 'malformed Basic credentials: the user name is empty']);
  t.same(refused(`Basic ${b64('a\0b:pw')}`), ['28000', 'malformed Basic credentials: a NUL character']);
  t.same(refused(`Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString('base64')}`), [
    '28000',
    'malformed Basic credentials: not UTF-8',
  ]);
});

t.test('request bodies: stmt and args only', async (t) => {
  t.same(parseSqlRequest(Buffer.from('{"stmt":"select 1"}')), { stmt: 'select 1', args: [] });
  t.same(parseSqlRequest(Buffer.from('{"stmt":"select $1","args":[null]}')), {
    stmt: 'select $1',
    args: [null],
  });
  for (const [body, message] of [
    ['', /^request body is not JSON/],
    ['"select 1"', /must be a JSON object/],
    ['null', /must be a JSON object/],
    ['{"stmt":"x","argz":[]}', /unknown key "argz"/],
    ['{"stmt":"   "}', /non-empty string/],
    ['{"stmt":1}', /non-empty string/],
    ['{"stmt":"a\\u0000b"}', /NUL/],
    ['{"stmt":"x","args":{}}', /"args" must be a list/],
  ] as const) {
    t.throws(() => parseSqlRequest(Buffer.from(body)), { sqlstate: '22P02', message }, body);
  }
});

t.test('HTTP status by SQLSTATE class', async (t) => {
  const status = (code: string) => httpStatusOf(new PgError(code, 'x'));
  t.equal(status('28000'), 401);
  t.equal(status('28P01'), 401);
  t.equal(status('53300'), 503);
  t.equal(status('57P01'), 503);
  t.equal(status('08006'), 502);
  t.equal(status('08P01'), 400, 'a protocol violation is the client’s');
  t.equal(status('XX000'), 500);
  t.equal(status('3D000'), 400);
  t.equal(httpStatusOf(new QueryError('57014', 'canceling statement due to user request')), 400);
});
