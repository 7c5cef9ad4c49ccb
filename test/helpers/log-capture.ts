/**
 * Captures pgward's log lines (pino JSON) in memory so tests can assert on them.
 */

import type { DestinationStream } from 'pino';

/** One parsed log line. */
export type LogLine = Record<string, unknown> & { msg?: string; conn?: string };

/** A pino destination that keeps every line. */
export class LogCapture implements DestinationStream {
  readonly lines: LogLine[] = [];
  readonly #waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];

  write(text: string): void {
    for (const raw of text.split('\n')) {
      if (!raw.trim()) continue;
      const line = JSON.parse(raw) as LogLine;
      this.lines.push(line);
      if (process.env.PGWARD_TEST_LOG) process.stderr.write(`${raw}\n`);
      for (const waiter of [...this.#waiters]) {
        if (waiter.match(line)) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  }

  /** Lines whose fields include every field of `fields`. */
  find(fields: Record<string, unknown>): LogLine[] {
    return this.lines.filter((line) => Object.entries(fields).every(([k, v]) => line[k] === v));
  }

  /** Resolves with the first line (past or future) that includes `fields`. */
  waitFor(fields: Record<string, unknown>, timeoutMs = 10_000): Promise<LogLine> {
    return this.#wait(fields, 0, timeoutMs);
  }

  /** Resolves with the first line written from now on that includes `fields`. */
  next(fields: Record<string, unknown>, timeoutMs = 10_000): Promise<LogLine> {
    return this.#wait(fields, this.lines.length, timeoutMs);
  }

  #wait(fields: Record<string, unknown>, from: number, timeoutMs: number): Promise<LogLine> {
    const match = (line: LogLine) => Object.entries(fields).every(([k, v]) => line[k] === v);
    const seen = this.lines.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no log line with ${JSON.stringify(fields)}`)),
        timeoutMs,
      );
      this.#waiters.push({
        match,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }
}
