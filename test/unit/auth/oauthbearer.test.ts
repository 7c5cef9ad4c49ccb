/**
 * OAUTHBEARER message reading (RFC 7628 as PostgreSQL 18 reads it): what is accepted, the bearer token
 * format (RFC 6750 b64token, scheme case-insensitive) and the error challenge's exact JSON.
 */

import t from 'tap';
import {
  bearerToken,
  checkErrorAcknowledgement,
  errorChallenge,
  parseClientResponse,
} from '../../../src/auth/oauthbearer.ts';
import { PgError } from '../../../src/errors/pg-error.ts';

const bytes = (text: string) => Buffer.from(text, 'latin1');
const detailOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (error) {
    if (error instanceof PgError) return `${error.sqlstate} ${error.message}: ${error.detail}`;
    throw error;
  }
  return undefined;
};

t.test('client responses that are accepted', async (t) => {
  t.equal(parseClientResponse(bytes('n,,\x01auth=\x01\x01')), '', 'a discovery request');
  t.equal(
    parseClientResponse(bytes('y,,\x01auth=Bearer abc\x01\x01')),
    'Bearer abc',
    'y: no binding believed',
  );
  t.equal(
    parseClientResponse(bytes('n,,\x01host=db.example\x01port=5432\x01auth=Bearer x\x01\x01')),
    'Bearer x',
    'host and port are ignored, as the RFC says',
  );
  t.equal(parseClientResponse(bytes('n,,\x01auth=a\tb\r\n c\x01\x01')), 'a\tb\r\n c', 'SP HTAB CR LF');
});

t.test('structural errors name PostgreSQL’s detail', async (t) => {
  t.equal(
    detailOf(() => parseClientResponse(bytes('n'))),
    `08P01 malformed OAUTHBEARER message: Comma expected, but found character "0x00".`,
  );
  t.equal(
    detailOf(() => parseClientResponse(bytes('\x02,,'))),
    '08P01 malformed OAUTHBEARER message: Unexpected channel-binding flag "0x02".',
  );
  t.equal(
    detailOf(() => parseClientResponse(bytes('n,,\x01auth=é\x01\x01'))),
    '08P01 malformed OAUTHBEARER message: Message contains an invalid value.',
  );
});

t.test('the kvsep acknowledgement', async (t) => {
  t.doesNotThrow(() => checkErrorAcknowledgement(bytes('\x01')));
  t.equal(
    detailOf(() => checkErrorAcknowledgement(bytes('n,,\x01auth=\x01\x01'))),
    '08P01 malformed OAUTHBEARER message: Client did not send a kvsep response.',
  );
  t.equal(
    detailOf(() => checkErrorAcknowledgement(bytes(''))),
    '08P01 malformed OAUTHBEARER message: The message is empty.',
  );
});

t.test('bearer tokens', async (t) => {
  t.same(bearerToken('Bearer abc-._~+/9=='), { token: 'abc-._~+/9==' });
  t.same(bearerToken('BEARER  x'), { token: 'x' });
  t.same(bearerToken('Bearerx'), { problem: 'client response indicated a non-Bearer authentication scheme' });
  t.same(bearerToken('Token x'), { problem: 'client response indicated a non-Bearer authentication scheme' });
  t.same(bearerToken('Bearer '), { problem: 'bearer token is empty' });
  t.same(bearerToken('Bearer a=b'), { problem: 'bearer token is not in the correct format' });
  t.same(bearerToken('Bearer a b'), { problem: 'bearer token is not in the correct format' });
});

t.test('the error challenge', async (t) => {
  t.equal(
    errorChallenge('https://idp.example/realms/corp', 'openid db').toString(),
    '{"status":"invalid_token","openid-configuration":"https://idp.example/realms/corp/.well-known/openid-configuration","scope":"openid db"}',
  );
  t.equal(
    JSON.parse(errorChallenge('https://idp.example/.well-known/oauth-authorization-server', 'x').toString())[
      'openid-configuration'
    ],
    'https://idp.example/.well-known/oauth-authorization-server',
    'a discovery URL is kept as is',
  );
});
