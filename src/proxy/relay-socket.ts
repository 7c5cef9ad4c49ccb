/**
 * RelaySocket: a socket as the relay uses it, with the least work per relayed chunk.
 *
 * Reads: a plain TCP socket is re-created around its handle with Node's `onread` option, so every read
 * lands in one process-wide buffer: no 64 KiB allocation per read and no Readable-stream bookkeeping.
 * Sharing the buffer is safe because reads complete one at a time on the event loop and the chunk is
 * written on (or copied) before the callback returns.
 *
 * Writes: when nothing is queued on the socket, the chunk goes straight to the kernel with one
 * write(2) on the socket's descriptor, skipping the Writable machinery; whatever the kernel does not
 * take (and every later chunk until the queue drains) is copied and queued through `socket.write`, so
 * order and backpressure stay Node's. TLS sockets (no descriptor of their own) always queue.
 */

import { writeSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** The internals of net.Socket this module relies on; absent or null once the socket is destroyed. */
interface SocketInternals {
  _handle?: { fd?: number } | null;
}

function handleOf(socket: net.Socket): SocketInternals['_handle'] {
  return (socket as unknown as SocketInternals)._handle;
}

/** One side of a relay. */
export class RelaySocket {
  /** The socket to use from now on (a new object on the fast read path). */
  readonly socket: net.Socket;
  /** The descriptor for direct writes, or -1 (TLS, or a platform without one). */
  readonly #fd: number;

  /**
   * Starts delivering incoming bytes to `onChunk`; the chunk may be a view of the shared read buffer,
   * valid only until `onChunk` returns. The caller must have paused the socket and consumed everything
   * it had buffered.
   */
  constructor(socket: net.Socket, onChunk: (chunk: Buffer) => void) {
    const handle = handleOf(socket);
    if (socket instanceof tls.TLSSocket || !handle || socket.readableLength > 0) {
      socket.on('data', onChunk);
      socket.resume();
      this.socket = socket;
      this.#fd = -1;
      return;
    }
    (socket as unknown as SocketInternals)._handle = null;
    this.socket = new net.Socket({
      handle,
      onread: { buffer: READ_BUFFER, callback: (length: number) => onChunk(READ_BUFFER.subarray(0, length)) },
    } as net.SocketConstructorOpts);
    this.#fd = typeof handle.fd === 'number' ? handle.fd : -1;
    // Without its handle the old object closes nothing; destroying it now lets its net.Server stop
    // counting it and lets it be collected (an idle session keeps only the two sockets it uses).
    socket.destroy();
  }

  /**
   * Writes a chunk (which may be a view of the shared read buffer). Returns false when the socket's
   * queue is over its high-water mark: the caller should pause its source until 'drain'.
   */
  write(chunk: Buffer): boolean {
    let written = 0;
    // A live handle means the descriptor is still this socket's: Node closes it and drops the handle
    // in the same step, so a cached number is never used after it could belong to another connection.
    if (this.#fd >= 0 && this.socket.writableLength === 0 && handleOf(this.socket)) {
      try {
        written = writeSync(this.#fd, chunk, 0, chunk.length);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') {
          this.socket.destroy(error as Error);
          return true;
        }
      }
      if (written === chunk.length) return true;
    }
    return this.socket.write(Buffer.from(chunk.subarray(written)));
  }
}
