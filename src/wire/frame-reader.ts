/**
 * FrameReader: cuts an incoming byte stream into whole frames, checking every length word as soon as
 * it arrives. Owns buffering only; what a frame means is frontend.ts's business.
 *
 * Two frame shapes exist: untyped startup packets (int32 length, body) before the StartupMessage, and
 * typed messages (byte type, int32 length, body) after it.
 */

import { PgError } from '../errors/pg-error.ts';
import { SqlState } from '../errors/sqlstate.ts';
import { MAX_STARTUP_PACKET_LENGTH, MIN_MESSAGE_LENGTH, MIN_STARTUP_PACKET_LENGTH } from './limits.ts';

/** A typed message: its type byte and the body after the length word. */
export interface TypedMessage {
  type: number;
  body: Buffer;
}

const EMPTY = Buffer.alloc(0);

/** Incremental reader for startup packets and typed messages. */
export class FrameReader {
  #buffer: Buffer = EMPTY;
  readonly #maxMessageLength: number;

  /** @param maxMessageLength largest typed message accepted, length word included. */
  constructor(maxMessageLength: number) {
    this.#maxMessageLength = maxMessageLength;
  }

  /** Bytes received but not yet returned as a frame. */
  get bufferedLength(): number {
    return this.#buffer.length;
  }

  /** The first buffered byte without consuming it, or undefined when nothing is buffered. */
  peekByte(): number | undefined {
    return this.#buffer[0];
  }

  /** The length word of the next typed message, once its five header bytes have arrived. */
  peekLength(): number | undefined {
    return this.#buffer.length < 5 ? undefined : this.#buffer.readInt32BE(1);
  }

  /** Appends received bytes. */
  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
  }

  /**
   * Returns the next startup packet's body (everything after the length word), or null if it is not
   * complete yet. Throws PgError 08P01 on a length outside 8..10000.
   */
  readStartupPacket(): Buffer | null {
    if (this.#buffer.length < 4) return null;
    const length = this.#buffer.readInt32BE(0);
    if (length < MIN_STARTUP_PACKET_LENGTH || length > MAX_STARTUP_PACKET_LENGTH) {
      throw new PgError(SqlState.ProtocolViolation, 'invalid length of startup packet', {
        logMessage: `invalid length of startup packet: ${length}`,
      });
    }
    return this.#take(0, length);
  }

  /**
   * Returns the next typed message, or null if it is not complete yet. Throws PgError 08P01 on a
   * length below 4 or above the configured maximum.
   */
  readMessage(): TypedMessage | null {
    if (this.#buffer.length < 5) return null;
    const type = this.#buffer.readUInt8(0);
    const length = this.#buffer.readInt32BE(1);
    if (length < MIN_MESSAGE_LENGTH || length > this.#maxMessageLength) {
      throw new PgError(SqlState.ProtocolViolation, 'invalid message length', {
        logMessage: `invalid length ${length} for message type 0x${type.toString(16)}`,
      });
    }
    const body = this.#take(1, length);
    return body === null ? null : { type, body };
  }

  /** Removes and returns every buffered byte (handed to the relay once the session starts). */
  takeRemaining(): Buffer {
    const rest = this.#buffer;
    this.#buffer = EMPTY;
    return rest;
  }

  #take(headerBefore: number, length: number): Buffer | null {
    const end = headerBefore + length;
    if (this.#buffer.length < end) return null;
    const body = this.#buffer.subarray(headerBefore + 4, end);
    this.#buffer = this.#buffer.length === end ? EMPTY : this.#buffer.subarray(end);
    return body;
  }
}

/** A frame's bytes as they came: type, length word, body (for relaying a message unchanged). */
export function frameBytes(frame: TypedMessage): Buffer {
  const header = Buffer.allocUnsafe(5);
  header.writeUInt8(frame.type, 0);
  header.writeInt32BE(frame.body.length + 4, 1);
  return Buffer.concat([header, frame.body]);
}
