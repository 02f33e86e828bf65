import fs from 'node:fs';
import path from 'node:path';
import { nanoid } from 'nanoid';

/**
 * This node's id for a peer port: kept in the state folder across restarts on a fixed port
 * (so other nodes and the bootstrap server know it again), fresh for port 0 (tests, one-off
 * runs). A read-only state folder only costs the id's stability.
 */
export function loadNodeId(stateDir: string, port: number): string {
  if (port === 0) return nanoid(16);
  const file = path.join(stateDir, `node-id-${port}`);
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_-]{8,64}$/.test(id)) return id;
  } catch {
    /* first start on this port */
  }
  const id = nanoid(16);
  try {
    fs.mkdirSync(stateDir, { recursive: true });
    fs.writeFileSync(file, `${id}\n`);
  } catch {
    /* a read-only state folder: the id just changes at each start */
  }
  return id;
}
