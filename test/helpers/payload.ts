/**
 * Test data: a CSV payload of at least a given size, with a checksum, for COPY round trips.
 */

import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

/** CSV text `id,payload` of at least `bytes` bytes. */
export function makeCopyPayload(bytes = 10 * 1024 * 1024): { text: string; rows: number; sha256: string } {
  const lines: string[] = [];
  let size = 0;
  while (size < bytes) {
    const line = `${lines.length},${createHash('sha256').update(String(lines.length)).digest('hex')}${'x'.repeat(40)}\n`;
    lines.push(line);
    size += line.length;
  }
  const text = lines.join('');
  return { text, rows: lines.length, sha256: sha256(text) };
}

/** Hex SHA-256 of a string or buffer. */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hex SHA-256 of everything a stream yields, without keeping it in memory. */
export async function sha256OfStream(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
