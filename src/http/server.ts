/**
 * The HTTP listener: `/healthz` (liveness plus the last reload result) and `/metrics` (Prometheus).
 * Later issues add `/sql` and the OAuth2 callback here.
 */

import http from 'node:http';
import { bindServer, formatListenAddress, type ListenAddress } from '../config/listen-address.ts';
import type { Runtime } from '../proxy/runtime.ts';

function send(response: http.ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  response.end(body);
}

/** Starts the HTTP listener; resolves with the server and the address bound. */
export async function startHttpServer(
  runtime: Runtime,
  address: ListenAddress,
): Promise<{ server: http.Server; address: ListenAddress }> {
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://pgward');
    if (request.method !== 'GET') return send(response, 405, 'text/plain', 'method not allowed\n');
    if (url.pathname === '/healthz') {
      const reload = runtime.metrics.lastReload;
      return send(
        response,
        200,
        'application/json',
        `${JSON.stringify({
          status: 'ok',
          clients: runtime.metrics.connectionsActive,
          sessions: runtime.metrics.sessionsActive,
          lastReload: reload && { at: reload.at.toISOString(), ok: reload.ok, error: reload.error },
        })}\n`,
      );
    }
    if (url.pathname === '/metrics')
      return send(response, 200, 'text/plain; version=0.0.4', runtime.metrics.render());
    return send(response, 404, 'text/plain', 'not found\n');
  });
  const bound = await bindServer(server, address);
  runtime.log.info({ address: formatListenAddress(bound) }, 'listening (http)');
  return { server, address: bound };
}
