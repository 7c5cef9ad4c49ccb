import { Parser } from 'pg-protocol/dist/parser.js';
import t from 'tap';
import { PgError } from '../../../src/errors/pg-error.ts';
import {
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationMD5Password,
  encodeAuthenticationOk,
  encodeAuthenticationSASL,
  encodeAuthenticationSASLContinue,
  encodeAuthenticationSASLFinal,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeReadyForQuery,
} from '../../../src/wire/backend.ts';

/** Decodes with pg-protocol's client-side parser: an independent reader of our bytes. */
function decode(bytes: Buffer): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  new Parser().parse(bytes, (message) => out.push(message as unknown as Record<string, unknown>));
  return out;
}

t.test('authentication requests decode as node-postgres expects', async (t) => {
  t.match(decode(encodeAuthenticationOk()), [{ name: 'authenticationOk' }]);
  t.match(decode(encodeAuthenticationCleartextPassword()), [{ name: 'authenticationCleartextPassword' }]);
  t.match(decode(encodeAuthenticationMD5Password(Buffer.from([1, 2, 3, 4]))), [
    { name: 'authenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) },
  ]);
  t.match(decode(encodeAuthenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'])), [
    { name: 'authenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
  ]);
  t.match(decode(encodeAuthenticationSASLContinue(Buffer.from('r=abc'))), [
    { name: 'authenticationSASLContinue', data: 'r=abc' },
  ]);
  t.match(decode(encodeAuthenticationSASLFinal(Buffer.from('v=xyz'))), [
    { name: 'authenticationSASLFinal', data: 'v=xyz' },
  ]);
});

t.test('session start messages', async (t) => {
  t.match(decode(encodeParameterStatus('server_version', '18.4')), [
    { name: 'parameterStatus', parameterName: 'server_version', parameterValue: '18.4' },
  ]);
  t.match(decode(encodeBackendKeyData(4242, Buffer.from([0, 0, 0, 7]))), [
    { name: 'backendKeyData', processID: 4242, secretKey: 7 },
  ]);
  const long = encodeBackendKeyData(1, Buffer.alloc(32, 1));
  t.equal(long.readInt32BE(1), 4 + 4 + 32, '3.2 keys make a longer BackendKeyData');
  t.match(decode(encodeReadyForQuery('I')), [{ name: 'readyForQuery', status: 'I' }]);
});

t.test('ErrorResponse and NoticeResponse carry severity, SQLSTATE, message, detail and hint', async (t) => {
  const error = new PgError('28P01', 'password authentication failed for user "x"', {
    detail: 'd',
    hint: 'h',
  });
  t.match(decode(encodeErrorResponse(error)), [
    {
      name: 'error',
      severity: 'FATAL',
      code: '28P01',
      message: 'password authentication failed for user "x"',
      detail: 'd',
      hint: 'h',
    },
  ]);
  t.match(decode(encodeNoticeResponse({ code: '00000', message: 'visit https://idp/login' })), [
    { name: 'notice', severity: 'NOTICE', code: '00000', message: 'visit https://idp/login' },
  ]);
  t.notOk(
    encodeErrorResponse(new PgError('08P01', 'x', { logMessage: 'secret detail' })).includes('secret'),
    'log text stays out',
  );
});

t.test('NegotiateProtocolVersion names the newest minor and the unrecognized options', async (t) => {
  const bytes = encodeNegotiateProtocolVersion(2, ['_pq_.a', '_pq_.b']);
  t.equal(bytes.toString('latin1', 0, 1), 'v');
  t.equal(bytes.readInt32BE(5), (3 << 16) | 2);
  t.equal(bytes.readInt32BE(9), 2);
  t.equal(bytes.toString('latin1', 13), '_pq_.a\0_pq_.b\0');
  t.equal(bytes.readInt32BE(1), bytes.length - 1);
});
