/**
 * What this build of Shoal can do, found by trying it (never by a version number or a flag
 * table that could drift): the interop cases that need a feature skip, with the reason,
 * until the probe finds it. Probed once per process, on loopback, against a real node.
 *
 *   utp          a uTP SYN (BEP 29) to the peer port's UDP twin is answered with ST_STATE
 *   mse          a connection opening with 96 bytes of a Diffie-Hellman key (MSE/PE) is
 *                answered with the node's own key instead of being closed
 *   multiFile    a multi-file .torrent is accepted as a download target
 *   folderSeed   node-cli lists `--share-folder-as-torrent` (issue 15 item 1) and
 *                `node-cli create DIR` makes a .torrent of a folder
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import bencode from 'bencode';
import { CLI, startNode, tempDir, cleanup } from '../helpers.js';

export type Feature = 'utp' | 'mse' | 'multiFile' | 'folderSeed';

/** The flag that makes a node share a folder as one torrent; the folder-seeding cases use it. */
export const FOLDER_SEED_FLAG = '--share-folder-as-torrent';

export const FEATURE_NAMES: Record<Feature, string> = {
  utp: 'uTP (BEP 29)',
  mse: 'MSE/PE encryption',
  multiFile: 'multi-file torrent downloads',
  folderSeed: `sharing a folder as one torrent (${FOLDER_SEED_FLAG}, create DIR)`,
};

export type Features = Record<Feature, boolean>;

/** A uTP ST_SYN (type 4, version 1): 20 bytes, connection id and sequence number random. */
function utpSyn(): Buffer {
  const b = Buffer.alloc(20);
  b[0] = (4 << 4) | 1;
  b.writeUInt16BE(randomBytes(2).readUInt16BE(), 2);
  b.writeUInt32BE(Number(process.hrtime.bigint() / 1000n) >>> 0, 4);
  b.writeUInt32BE(1 << 20, 12);
  b.writeUInt16BE(1, 16);
  return b;
}

async function answersUtp(port: number): Promise<boolean> {
  const s = dgram.createSocket('udp4');
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 2000);
      s.on('message', (m) => {
        // ST_STATE (2), version 1: the answer to a SYN.
        if (m.length >= 20 && m[0] === ((2 << 4) | 1)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      s.on('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      s.send(utpSyn(), port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}

async function answersMse(port: number): Promise<boolean> {
  // 96 bytes of a public key, the first byte never 0x13 (a BitTorrent handshake) nor '{' (control).
  const ya = randomBytes(96 + 64);
  ya[0] = 0x80 | (ya[0]! & 0x3f);
  return new Promise<boolean>((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = 0;
    const done = (v: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), 3000);
    sock.on('connect', () => sock.write(ya));
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= 96) done(true);
    });
    sock.on('close', () => done(got >= 96));
    sock.on('error', () => done(false));
  });
}

/** A two-file torrent of data that exists nowhere: enough to see whether it is accepted. */
function multiFileTorrent(): Buffer {
  const info = {
    files: [
      { length: 3, path: [Buffer.from('a.txt')] },
      { length: 5, path: [Buffer.from('sub'), Buffer.from('b.txt')] },
    ],
    name: Buffer.from(`probe-${randomBytes(4).toString('hex')}`),
    'piece length': 16384,
    pieces: createHash('sha1').update('probe').digest(),
  };
  return Buffer.from(bencode.encode({ announce: Buffer.from('http://127.0.0.1:1/announce'), info }));
}

async function probe(): Promise<Features> {
  const dir = await tempDir('shoal-features-');
  const node = await startNode(path.join(dir, 'node'));
  try {
    const [utp, mse] = await Promise.all([answersUtp(node.port), answersMse(node.port)]);
    const torrent = path.join(dir, 'probe.torrent');
    await fsp.writeFile(torrent, multiFileTorrent());
    let multiFile = false;
    try {
      const h = await Promise.race([node.download(torrent), new Promise<string>((_, reject) => setTimeout(() => reject(new Error('no answer')), 5000))]);
      multiFile = true;
      await node.cancel(h).catch(() => false);
    } catch {
      multiFile = false;
    }
    const help = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' }).stdout;
    const folder = path.join(dir, 'folder');
    await fsp.mkdir(path.join(folder, 'sub'), { recursive: true });
    await fsp.writeFile(path.join(folder, 'a.txt'), 'abc');
    await fsp.writeFile(path.join(folder, 'sub', 'b.txt'), 'defgh');
    const create = spawnSync(process.execPath, [CLI, 'create', folder, '-o', path.join(dir, 'folder.torrent')], { encoding: 'utf8' });
    const folderSeed = help.includes(FOLDER_SEED_FLAG) && create.status === 0;
    return { utp, mse, multiFile, folderSeed };
  } finally {
    await node.stop();
    await cleanup(dir);
  }
}

let probed: Promise<Features> | undefined;

/** The features of this build (probed once). */
export function shoalFeatures(): Promise<Features> {
  probed ??= probe();
  return probed;
}

/** The skip reason for a case that needs `needs`, or null when this build has them all. */
export async function missingFeatures(needs: readonly Feature[]): Promise<string | null> {
  const f = await shoalFeatures();
  const missing = needs.filter((n) => !f[n]);
  return missing.length === 0 ? null : `needs ${missing.map((m) => FEATURE_NAMES[m]).join(' and ')} in Shoal, not in this build yet`;
}
