/**
 * The HTTP listeners: `/healthz` (liveness plus the last reload result), `/metrics` (Prometheus) and
 * `POST /sql` (sql.ts). `listen.https` serves the same over TLS with the pg listener's certificate,
 * asking for a client certificate when `listen.tls.ca` is set; each handshake takes the TLS context in
 * force at accept, so a reloaded certificate applies to new connections at once.
 */

import http from 'node:http';
import net from 'node:net';
import { TLSSocket } from 'node:tls';
import { bindServer, formatListenAddress, type ListenAddress } from '../config/listen-address.ts';
import type { Runtime } from '../proxy/runtime.ts';
import { handshakeCertificate, recordVerification } from '../tls/peer-certificate.ts';
import { type ClientTls, handleSqlRequest } from './sql.ts';

/** Time a client gets to finish its TLS handshake. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

function send(response: http.ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  response.end(body);
}

/** What a connection's TLS handshake established, read once per connection. */
const handshakes = new WeakMap<TLSSocket, ClientTls>();

function route(runtime: Runtime, request: http.IncomingMessage, response: http.ServerResponse): unknown {
  const url = new URL(request.url ?? '/', 'http://pgward');
  if (url.pathname === '/sql') {
    if (request.method !== 'POST') {
      response.setHeader('allow', 'POST');
      return send(response, 405, 'text/plain', 'method not allowed\n');
    }
    const socket = request.socket;
    const tls = socket instanceof TLSSocket ? handshakes.get(socket) : undefined;
    void handleSqlRequest(runtime, request, response, url, tls ?? null);
    return;
  }
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
}

/** A running HTTP listener. */
export interface HttpListener {
  address: ListenAddress;
  close(): void;
}

/** Starts the plain HTTP listener. */
export async function startHttpServer(runtime: Runtime, address: ListenAddress): Promise<HttpListener> {
  const server = http.createServer((request, response) => route(runtime, request, response));
  const bound = await bindServer(server, address);
  runtime.log.info({ address: formatListenAddress(bound) }, 'listening (http)');
  return {
    address: bound,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

/**
 * Starts the HTTPS listener: TCP connections are wrapped in TLS with the runtime's current context
 * (client certificates requested, never required: the rule decides) and handed to the HTTP server.
 */
export async function startHttpsServer(runtime: Runtime, address: ListenAddress): Promise<HttpListener> {
  const server = http.createServer((request, response) => route(runtime, request, response));
  const tcp = net.createServer((raw) => {
    const context = runtime.tls;
    if (!context) {
      raw.destroy();
      return;
    }
    raw.setNoDelay(true);
    const requestCert = context.requestClientCertificate;
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext: context.current,
      ALPNProtocols: ['http/1.1'],
      requestCert,
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => secure.destroy(), HANDSHAKE_TIMEOUT_MS);
    secure.on('error', () => secure.destroy());
    secure.once('close', () => clearTimeout(timer));
    secure.once('secure', () => {
      clearTimeout(timer);
      if (requestCert) recordVerification(secure);
      // As on the pg listener: a CN with a NUL ends the connection, whatever the rules.
      const certificate = handshakeCertificate(secure, runtime.log.child({ protocol: 'http' }));
      if (certificate === 'refused') {
        secure.destroy();
        return;
      }
      handshakes.set(secure, { peerCertificate: certificate });
      server.emit('connection', secure);
    });
  });
  const bound = await bindServer(tcp, address);
  runtime.log.info({ address: formatListenAddress(bound) }, 'listening (https)');
  return {
    address: bound,
    close() {
      server.closeAllConnections();
      tcp.close();
    },
  };
}
