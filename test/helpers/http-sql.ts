/**
 * A client for pgward's HTTP `/sql` endpoint on node:http / node:https, so tests choose the TLS material
 * (CA, client certificate) and the Authorization header byte for byte.
 */

import http from 'node:http';
import https from 'node:https';

/** How to reach the endpoint. */
export interface SqlTarget {
  port: number;
  /** HTTPS with this CA (and optionally a client certificate); plain HTTP without. */
  tls?: { ca: string; cert?: string; key?: string };
}

/** A `/sql` answer's body: a result or an error (`text` holds a body that is not JSON). */
export interface SqlBody {
  cols?: string[];
  col_types?: number[];
  rows?: unknown[][];
  rowcount?: number;
  command?: string | null;
  error?: { code: string; message: string; detail?: string; hint?: string };
  text?: string;
}

/** What came back. */
export interface SqlResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: SqlBody;
}

/** Basic credentials for `user:password`. */
export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/** POSTs a body (an object is sent as JSON) to `/sql`, or sends `method` to `path`. */
export function postSql(
  target: SqlTarget,
  body: unknown,
  options: { authorization?: string; path?: string; method?: string; signal?: AbortSignal } = {},
): Promise<SqlResponse> {
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  const common = {
    host: '127.0.0.1',
    port: target.port,
    path: options.path ?? '/sql',
    method: options.method ?? 'POST',
    headers,
    agent: false as const,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  return new Promise((resolve, reject) => {
    const onResponse = (response: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: SqlBody;
        try {
          parsed = JSON.parse(text) as SqlBody;
        } catch {
          parsed = { text };
        }
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: parsed });
      });
      response.on('error', reject);
    };
    const request = target.tls
      ? https.request({ ...common, servername: 'localhost', ...target.tls }, onResponse)
      : http.request(common, onResponse);
    request.on('error', reject);
    request.end(options.method === 'GET' ? undefined : payload);
  });
}
