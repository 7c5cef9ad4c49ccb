/**
 * Runs one statement on a logged-in upstream connection with the extended query protocol (Parse, Bind,
 * Describe, Execute, Sync: the statement text is never built from the arguments, they travel as bound
 * parameters), collects the result in text format, and ends the connection with Terminate. Used by the
 * HTTP `/sql` endpoint; the pg front end relays bytes and never comes here.
 */

import { serialize } from 'pg-protocol';
import type {
  BackendMessage,
  CommandCompleteMessage,
  DatabaseError,
  DataRowMessage,
  RowDescriptionMessage,
} from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import type { UpstreamSession } from './login.ts';
import { connectionClosed, connectionFailed, unreadableAnswer } from './socket-errors.ts';

/** A JSON value as it arrives in a request's `args`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A column of the result. */
export interface ResultColumn {
  name: string;
  /** The PostgreSQL type OID. */
  typeOid: number;
}

/** A statement's result. */
export interface QueryResult {
  columns: ResultColumn[];
  rows: unknown[][];
  /** The command tag (`SELECT 2`, `INSERT 0 1`), or null for an empty statement. */
  command: string | null;
  /** The tag's row count, or -1 when the tag has none (`CREATE TABLE`). */
  rowCount: number;
}

/** The upstream refused the statement (a syntax error, a permission…): the client gets its error. */
export class QueryError extends PgError {}

/** Type OIDs whose text form becomes a JSON number, boolean or document. */
const Oid = { bool: 16, int2: 21, int4: 23, oid: 26, float4: 700, float8: 701, json: 114, jsonb: 3802 };

/**
 * A value's text form as JSON: booleans, 16/32-bit integers and finite floats as numbers, json/jsonb
 * as documents; everything else (int8 and numeric keep their precision this way) as the text itself.
 */
export function textToJson(text: string | null, typeOid: number): unknown {
  if (text === null) return null;
  switch (typeOid) {
    case Oid.bool:
      return text === 't';
    case Oid.int2:
    case Oid.int4:
    case Oid.oid:
      return Number(text);
    case Oid.float4:
    case Oid.float8: {
      const value = Number(text);
      return Number.isFinite(value) ? value : text;
    }
    case Oid.json:
    case Oid.jsonb:
      return JSON.parse(text);
    default:
      return text;
  }
}

function arrayElement(value: JsonValue): string {
  if (value === null) return 'NULL';
  if (Array.isArray(value)) return arrayLiteral(value);
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return `"${text.replace(/[\\"]/g, '\\$&')}"`;
}

function arrayLiteral(values: JsonValue[]): string {
  return `{${values.map(arrayElement).join(',')}}`;
}

/**
 * An argument's text form for Bind: strings as they are, numbers and booleans as PostgreSQL reads them,
 * arrays as array literals (`{1,"a b",NULL}`), objects as JSON text (for json/jsonb parameters).
 */
export function jsonToParameter(value: JsonValue): string | null {
  if (value === null) return null;
  if (Array.isArray(value)) return arrayLiteral(value);
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** The row count at the end of a command tag, or -1. */
function rowCountOf(tag: string): number {
  const match = /\s(\d+)$/.exec(tag);
  return match ? Number(match[1]) : -1;
}

/**
 * Runs `statement` with `args` and closes the connection. Rejects with QueryError for the upstream's
 * error, or with PgError 54000 once the result passes `maxResultBytes` (the connection is dropped).
 */
export function runStatement(
  session: UpstreamSession,
  statement: string,
  args: readonly JsonValue[],
  maxResultBytes: number,
): Promise<QueryResult> {
  const { socket } = session;
  const parser = new Parser();
  const result: QueryResult = { columns: [], rows: [], command: null, rowCount: 0 };
  let failure: PgError | null = null;
  let received = 0;
  let done = false;

  return new Promise((resolve, reject) => {
    const finish = (error: PgError | null) => {
      if (done) return;
      done = true;
      socket.off('data', onData).off('error', onError).off('close', onClose);
      if (error) {
        socket.destroy();
        reject(error);
        return;
      }
      socket.end(serialize.end());
      resolve(result);
    };
    const handle = (message: BackendMessage): void => {
      switch (message.name) {
        case 'rowDescription':
          result.columns = (message as RowDescriptionMessage).fields.map((field) => ({
            name: field.name,
            typeOid: field.dataTypeID,
          }));
          return;
        case 'dataRow': {
          const fields = (message as DataRowMessage).fields as (string | null)[];
          result.rows.push(fields.map((text, i) => textToJson(text, result.columns[i]?.typeOid ?? 0)));
          return;
        }
        case 'commandComplete': {
          const tag = (message as CommandCompleteMessage).text;
          result.command = tag;
          result.rowCount = rowCountOf(tag);
          return;
        }
        case 'error': {
          const error = message as DatabaseError;
          failure ??= new QueryError(error.code ?? SqlState.InternalError, error.message, {
            detail: error.detail,
            hint: error.hint,
            severity: 'ERROR',
          });
          return;
        }
        case 'readyForQuery':
          finish(failure);
          return;
        default:
          return;
      }
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxResultBytes) {
        finish(
          new PgError(SqlState.ProgramLimitExceeded, 'result too large for the HTTP endpoint', {
            detail: `The result passed the limit of ${maxResultBytes} bytes (http.max_result_bytes).`,
          }),
        );
        return;
      }
      try {
        parser.parse(chunk, handle);
      } catch (error) {
        finish(unreadableAnswer(error));
      }
    };
    const onError = (error: Error) => finish(connectionFailed(error));
    const onClose = () => finish(connectionClosed());
    socket.on('data', onData).once('error', onError).once('close', onClose);
    socket.write(
      Buffer.concat([
        serialize.parse({ text: statement }),
        serialize.bind({ values: args.map(jsonToParameter) }),
        serialize.describe({ type: 'P' }),
        serialize.execute({}),
        serialize.sync(),
      ]),
    );
    if (session.leftover.length > 0) onData(session.leftover);
    socket.resume();
  });
}
