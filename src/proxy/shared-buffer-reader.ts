/**
 * The relay's read path. A plain TCP socket is re-created around its handle with Node's `onread`
 * option, so every read lands in one process-wide buffer and reaches the relay as a small private
 * copy: no 64 KiB allocation per read and no Readable-stream bookkeeping, which roughly halves
 * pgward's user CPU per relayed message (see bench/). TLS sockets keep their 'data' events.
 *
 * Sharing one buffer is safe because reads complete one at a time on the event loop and each callback
 * copies its bytes out before it returns.
 */

import net from 'node:net';
import tls from 'node:tls';

const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** The handle property Node keeps on every net.Socket; absent once destroyed. */
interface WithHandle {
  _handle?: object | null;
}

/**
 * Starts delivering the socket's incoming bytes to `onChunk` and returns the socket to use from now on
 * (a new object for the fast path; the same one otherwise). The caller must have paused the socket and
 * consumed everything it had buffered.
 */
export function readChunks(socket: net.Socket, onChunk: (chunk: Buffer) => void): net.Socket {
  const handle = (socket as unknown as WithHandle)._handle;
  if (socket instanceof tls.TLSSocket || !handle || socket.readableLength > 0) {
    socket.on('data', onChunk);
    socket.resume();
    return socket;
  }
  (socket as unknown as WithHandle)._handle = null;
  const adopted = new net.Socket({
    handle,
    onread: {
      buffer: READ_BUFFER,
      callback: (length: number, buffer: Uint8Array) => onChunk(Buffer.from(buffer.subarray(0, length))),
    },
  } as net.SocketConstructorOpts);
  // Without its handle the old object closes nothing; destroying it now lets its net.Server stop
  // counting it and lets it be collected (an idle session keeps only the two sockets it uses).
  socket.destroy();
  return adopted;
}
