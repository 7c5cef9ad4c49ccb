/**
 * Sends a CancelRequest to the upstream for one of its backends. Fire and forget: PostgreSQL answers
 * a cancel with nothing but closing the connection.
 */

import type { UpstreamConfig } from '../config/pgward-config.ts';
import { RequestCode } from '../wire/limits.ts';
import { connectUpstream } from './connect.ts';

/** Encodes a CancelRequest packet for a backend key. */
export function encodeCancelRequest(processId: number, secretKey: Buffer): Buffer {
  const packet = Buffer.allocUnsafe(12 + secretKey.length);
  packet.writeInt32BE(packet.length, 0);
  packet.writeInt32BE(RequestCode.CancelRequest, 4);
  packet.writeUInt32BE(processId >>> 0, 8);
  secretKey.copy(packet, 12);
  return packet;
}

/** Asks the upstream to cancel the query running in backend `processId`. */
export async function sendUpstreamCancel(
  config: UpstreamConfig,
  processId: number,
  secretKey: Buffer,
): Promise<void> {
  const socket = await connectUpstream(config);
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.once('error', () => resolve());
    socket.end(encodeCancelRequest(processId, secretKey));
    socket.resume();
  });
}
