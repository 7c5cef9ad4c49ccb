/**
 * Opens a socket to the upstream PostgreSQL: TCP with a connect timeout and TCP_NODELAY, then TLS per
 * the configured mode (libpq's sslmode semantics) after an SSLRequest.
 */

import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { serialize } from 'pg-protocol';
import type { UpstreamConfig } from '../config/pgward-config.ts';
import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';

/** A socket to the upstream, plain or TLS. */
export type UpstreamSocket = net.Socket | tls.TLSSocket;

/** The PgError a client sees when the upstream cannot be used. */
export function upstreamFailure(config: UpstreamConfig, reason: string, cause?: unknown): PgError {
  const where = `${config.host}:${config.port}`;
  return new PgError(SqlState.ConnectionFailure, `could not connect to upstream server "${where}"`, {
    detail: reason,
    logMessage: `could not connect to upstream server "${where}": ${reason}`,
    cause,
  });
}

function connectTcp(config: UpstreamConfig): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: config.host, port: config.port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(upstreamFailure(config, `timed out after ${config.connectTimeoutMs} ms`));
    }, config.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(upstreamFailure(config, error.message, error));
    });
  });
}

function readOneByte(socket: net.Socket, config: UpstreamConfig): Promise<number> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      cleanup();
      if (chunk.length > 1) socket.unshift(chunk.subarray(1));
      resolve(chunk[0] ?? 0);
    };
    const onEnd = () => {
      cleanup();
      reject(upstreamFailure(config, 'server closed the connection during TLS negotiation'));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(upstreamFailure(config, error.message, error));
    };
    const cleanup = () => {
      socket.off('data', onData).off('end', onEnd).off('error', onError);
      socket.pause();
    };
    socket.on('data', onData).once('end', onEnd).once('error', onError);
  });
}

/** pgward's own certificate for the upstream handshake (a login's `cert` and `key`). */
export interface UpstreamClientCertificate {
  certFile: string;
  keyFile: string;
}

function startTls(
  socket: net.Socket,
  config: UpstreamConfig,
  clientCertificate: UpstreamClientCertificate | undefined,
): Promise<tls.TLSSocket> {
  const mode = config.tls.mode;
  const verify = mode === 'verify-ca' || mode === 'verify-full';
  const servername = config.tls.serverName ?? (net.isIP(config.host) ? undefined : config.host);
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      ...(servername === undefined ? {} : { servername }),
      ...(config.tls.caFile === undefined ? {} : { ca: readFileSync(config.tls.caFile) }),
      ...(clientCertificate === undefined
        ? {}
        : { cert: readFileSync(clientCertificate.certFile), key: readFileSync(clientCertificate.keyFile) }),
      rejectUnauthorized: verify,
      checkServerIdentity:
        mode === 'verify-full'
          ? (_host, cert) => tls.checkServerIdentity(config.tls.serverName ?? config.host, cert)
          : () => undefined,
    });
    secure.once('secureConnect', () => {
      secure.removeAllListeners('error');
      resolve(secure);
    });
    secure.once('error', (error) => {
      socket.destroy();
      reject(upstreamFailure(config, `TLS handshake failed: ${error.message}`, error));
    });
  });
}

/** Connects to the upstream and negotiates TLS as configured. */
export async function connectUpstream(
  config: UpstreamConfig,
  clientCertificate?: UpstreamClientCertificate,
): Promise<UpstreamSocket> {
  const socket = await connectTcp(config);
  if (config.tls.mode === 'disable') {
    if (clientCertificate) {
      socket.destroy();
      throw upstreamFailure(
        config,
        'the upstream login has a client certificate, but upstream TLS is disabled',
      );
    }
    return socket;
  }
  try {
    socket.write(serialize.requestSsl());
    const answer = await readOneByte(socket, config);
    if (answer === 0x53 /* 'S' */) return await startTls(socket, config, clientCertificate);
    if (answer === 0x4e /* 'N' */ && config.tls.mode === 'prefer') return socket;
    throw upstreamFailure(
      config,
      answer === 0x4e
        ? `server does not support TLS, but tls mode "${config.tls.mode}" requires it`
        : 'invalid answer to SSLRequest',
    );
  } catch (error) {
    socket.destroy();
    throw error;
  }
}
