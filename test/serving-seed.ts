/**
 * A seed in a process of its own, for tests that measure what serving costs it: started with
 * `fork(serving-seed.js, [JSON NodeInit fields])`, it sends `{ type: 'ready', port, files }`
 * and answers every `'stats'` message with its serving counters, its resident memory and its
 * open descriptors (read from /proc/self/fd: how many in all, how many on its shared files).
 * Its warnings go to stderr as pino JSON lines. It stops on 'stop' or when its parent goes.
 */
import { promises as fsp, readlinkSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Node, type NodeInit, type ServingStats } from '../network/index.js';
import { createLogger } from '../network/util/log.js';

export interface SeedStats {
  serving: ServingStats;
  rss: number;
  /** Descriptors open now, and those on a file under the shared folder. */
  fds: number;
  sharedFds: number;
  connections: number;
}

export interface SeedFile {
  name: string;
  infohash: string;
  length: number;
  pieceLength: number;
  pieceCount: number;
}

function fdsOn(dir: string): { all: number; shared: number } {
  let all = 0;
  let shared = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor readdir itself used, closed by now
    }
    all++;
    if (target.startsWith(dir + path.sep)) shared++;
  }
  return { all, shared };
}

function rss(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

async function main(): Promise<void> {
  const init = JSON.parse(process.argv[2] ?? '{}') as Partial<NodeInit> & { dir: string };
  const node = new Node({
    port: 0,
    listenHost: '127.0.0.1',
    announceHost: '127.0.0.1',
    sharedDir: path.join(init.dir, 'shared'),
    downloadDir: path.join(init.dir, 'downloads'),
    hashWorkers: 1,
    watch: false,
    multicast: false,
    gossipIntervalMs: 0,
    utp: 'off',
    logger: createLogger({ level: 'warn', json: true }),
    ...init,
  });
  await fsp.mkdir(path.join(init.dir, 'shared'), { recursive: true });
  await node.start();
  const shared = path.resolve(path.join(init.dir, 'shared'));
  const files: SeedFile[] = node.files().map((f) => ({
    name: f.name,
    infohash: f.metainfo.infoHashHex,
    length: f.metainfo.length,
    pieceLength: f.metainfo.pieceLength,
    pieceCount: f.metainfo.pieceCount,
  }));
  process.send!({ type: 'ready', port: node.port, files });
  process.on('message', (msg: unknown) => {
    if (msg === 'stats') {
      const { all, shared: onShared } = fdsOn(shared);
      const status = node.status();
      const stats: SeedStats = { serving: status.serving, rss: rss(), fds: all, sharedFds: onShared, connections: status.connections };
      process.send!({ type: 'stats', stats });
    } else if (msg === 'stop') void node.stop().finally(() => process.exit(0));
  });
  process.on('disconnect', () => void node.stop().finally(() => process.exit(0)));
}

main().catch((err: Error) => {
  process.stderr.write(`serving-seed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
