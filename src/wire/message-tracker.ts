/**
 * MessageTracker: follows typed-message boundaries in a relayed byte stream without copying it, so that
 * pgward can inject a message of its own (e.g. the shutdown FATAL) only between two whole messages.
 * Reads length words only; costs a few integer operations per chunk.
 */

/** Tracks where typed messages end in a stream fed chunk by chunk. */
export class MessageTracker {
  /** Bytes still to come of the current message body, or -1 when inside a header. */
  #remaining = 0;
  /** Header bytes (type + length) collected so far when a header spans chunks. */
  #header = Buffer.alloc(5);
  #headerFilled = 0;
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
  feed(chunk: Buffer): number {
    let offset = 0;
    let firstBoundary = this.atBoundary ? 0 : -1;
    while (offset < chunk.length) {
      if (this.#remaining > 0) {
        const step = Math.min(this.#remaining, chunk.length - offset);
        this.#remaining -= step;
        offset += step;
      } else if (this.#headerFilled === 0 && offset + 5 <= chunk.length) {
        this.lastType = chunk[offset] ?? 0;
        this.#remaining = Math.max(0, chunk.readInt32BE(offset + 1) - 4);
        offset += 5;
      } else {
        const need = 5 - this.#headerFilled;
        const step = Math.min(need, chunk.length - offset);
        chunk.copy(this.#header, this.#headerFilled, offset, offset + step);
        this.#headerFilled += step;
        offset += step;
        if (this.#headerFilled < 5) break;
        this.#headerFilled = 0;
        this.lastType = this.#header[0] ?? 0;
        this.#remaining = Math.max(0, this.#header.readInt32BE(1) - 4);
      }
      if (firstBoundary < 0 && this.atBoundary) firstBoundary = offset;
    }
    return firstBoundary;
  }
}
