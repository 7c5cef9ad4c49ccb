/**
 * MessageTracker: follows typed-message boundaries in a relayed byte stream without copying it, so that
 * pgward can inject a message of its own (e.g. the shutdown FATAL) only between two whole messages.
 * Reads length words only; costs a few integer operations per chunk.
 */

/** Tracks where typed messages end in a stream fed chunk by chunk. */
export class MessageTracker {
  /** Bytes still to come of the current message body. */
  #remaining = 0;
  /** Header bytes (type + length) seen so far when a header spans chunks; 0 outside a header. */
  #headerFilled = 0;
  /** The length word being assembled from a split header (numbers, not a buffer: idle sessions keep this). */
  #length = 0;
  /** Type byte of the most recent message whose header was seen (0 before any). */
  lastType = 0;

  /** True when the bytes seen so far end exactly at a message boundary. */
  get atBoundary(): boolean {
    return this.#remaining === 0 && this.#headerFilled === 0;
  }

  /**
   * Consumes a chunk. Returns the offset just past the first message boundary inside the chunk
   * (0 if it starts at one), or -1 if the chunk ends mid-message with no boundary inside it.
   */
  feed(chunk: Uint8Array): number {
    let offset = 0;
    let firstBoundary = this.atBoundary ? 0 : -1;
    while (offset < chunk.length) {
      if (this.#remaining > 0) {
        const step = Math.min(this.#remaining, chunk.length - offset);
        this.#remaining -= step;
        offset += step;
      } else if (this.#headerFilled === 0 && offset + 5 <= chunk.length) {
        this.lastType = chunk[offset] ?? 0;
        const length =
          (((chunk[offset + 1] ?? 0) << 24) |
            ((chunk[offset + 2] ?? 0) << 16) |
            ((chunk[offset + 3] ?? 0) << 8) |
            (chunk[offset + 4] ?? 0)) >>>
          0;
        this.#remaining = Math.max(0, (length | 0) - 4);
        offset += 5;
      } else {
        const byte = chunk[offset++] ?? 0;
        if (this.#headerFilled === 0) {
          this.lastType = byte;
          this.#length = 0;
        } else {
          this.#length = ((this.#length << 8) | byte) >>> 0;
        }
        if (++this.#headerFilled === 5) {
          this.#headerFilled = 0;
          this.#remaining = Math.max(0, (this.#length | 0) - 4);
        }
      }
      if (firstBoundary < 0 && this.atBoundary) firstBoundary = offset;
    }
    return firstBoundary;
  }
}
