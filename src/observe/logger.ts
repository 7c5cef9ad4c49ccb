/**
 * The one logger (pino, JSON lines). Sessions log through a child carrying their connection id, so
 * every line about a connection can be found by `conn`.
 */

import { type DestinationStream, type Logger, pino } from 'pino';
import type { LogLevel } from '../config/pgward-config.ts';

export type { Logger } from 'pino';

/** Creates the process logger; tests pass a destination to read the lines back. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = { level, base: { name: 'pgward' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}

let nextConnectionId = 1;

/** A short, process-unique id for a connection, e.g. `c42`. */
export function newConnectionId(): string {
  return `c${nextConnectionId++}`;
}
