/**
 * RSS per idle client: connects `count` pg clients that then sit idle, reads the process's RSS, then
 * connects `count` more. The first step is the figure (RSS with N idle clients over RSS at
 * rest, after a few warm-up connections); the second is the marginal cost of one more idle client,
 * where growth that happens once (heap reservations, code, thread arenas) is already paid.
 */

import { readFile } from 'node:fs/promises';
import pg from 'pg';

/** Bytes per idle client for the first and the second batch. */
export interface IdleMemory {
  first: number;
  next: number;
}

const BATCH = 50;
const SETTLE_MS = 2000;

async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}

async function openIdleClients(port: number, count: number, password: string): Promise<pg.Client[]> {
  const clients: pg.Client[] = [];
  for (let i = 0; i < count; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - i) }, async () => {
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'postgres',
        password,
        database: 'postgres',
      });
      client.on('error', () => {});
      await client.connect();
      return client;
    });
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

/** Measures the process `pid` serving pg clients on `port`. */
export async function measureIdleMemory(
  pid: number,
  port: number,
  count: number,
  password: string,
): Promise<IdleMemory> {
  const warm = await openIdleClients(port, 20, password);
  await Promise.all(warm.map((client) => client.end()));
  await settle();
  const atRest = await rss(pid);
  const first = await openIdleClients(port, count, password);
  await settle();
  const withFirst = await rss(pid);
  const second = await openIdleClients(port, count, password);
  await settle();
  const withBoth = await rss(pid);
  await Promise.all([...first, ...second].map((client) => client.end().catch(() => {})));
  return { first: (withFirst - atRest) / count, next: (withBoth - withFirst) / count };
}
