/**
 * The cases every client runs, in both directions: what data, which piece length, how the
 * client is set up, whether it gets a .torrent or only a magnet link, and which Shoal
 * features the case needs (it skips, saying so, until the build has them). Sizes are small
 * on purpose: the suite runs in CI on a loaded two-core machine.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomFile } from '../helpers.js';
import type { Feature } from './features.js';
import type { Direction } from './matrix.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * How the client is configured for a case:
 *   defaults   uTP and encryption as the client ships (only discovery is off: no DHT, LSD, PEX, UPnP)
 *   plain      TCP only, no encryption required: the BitTorrent wire and nothing else
 *   encrypted  as `defaults`, but the client requires encryption (MSE/PE)
 */
export type Settings = 'defaults' | 'plain' | 'encrypted';

export type Content = { kind: 'file'; size: number } | { kind: 'folder'; files: Array<{ path: string; size: number }> };

export interface InteropCase {
  id: string;
  title: string;
  settings: Settings;
  pieceLength: number;
  content: Content;
  /** The client (to Shoal) or Shoal (from Shoal) gets only `magnet:?xt=...&tr=...`, no .torrent. */
  magnet?: boolean;
  /** Shoal features the case needs, by direction. */
  needs?: Partial<Record<Direction, Feature[]>>;
}

/** A folder with nesting, an empty file, files under a block, and pieces that cross files. */
const FOLDER: Content = {
  kind: 'folder',
  files: [
    { path: 'cover.jpg', size: 300_000 },
    { path: 'empty.txt', size: 0 },
    { path: 'disc 1/01 intro.flac', size: 1 },
    { path: 'disc 1/02 song.flac', size: 16 * KiB + 1 },
    { path: 'disc 1/deep/er/notes.txt', size: 700 },
    { path: 'disc 2/03 long.flac', size: MiB + 3 },
  ],
};

export const CASES: InteropCase[] = [
  { id: 'defaults', title: 'client defaults (uTP, encryption as shipped), 3 MiB, 256 KiB pieces', settings: 'defaults', pieceLength: 256 * KiB, content: { kind: 'file', size: 3 * MiB + 12_345 } },
  { id: 'encryption-required', title: 'client requires encryption', settings: 'encrypted', pieceLength: 256 * KiB, content: { kind: 'file', size: 3 * MiB + 12_345 }, needs: { 'to-shoal': ['mse'], 'from-shoal': ['mse'] } },
  { id: 'multi-file', title: 'multi-file: nested folders, an empty file, files under a block, pieces across files', settings: 'plain', pieceLength: 256 * KiB, content: FOLDER, needs: { 'to-shoal': ['multiFile'], 'from-shoal': ['folderSeed'] } },
  { id: 'piece-16k', title: '16 KiB pieces, 1 MiB', settings: 'plain', pieceLength: 16 * KiB, content: { kind: 'file', size: MiB + 100 } },
  { id: 'piece-256k', title: '256 KiB pieces, 3 MiB', settings: 'plain', pieceLength: 256 * KiB, content: { kind: 'file', size: 3 * MiB + 12_345 } },
  { id: 'piece-4m', title: '4 MiB pieces, 9 MiB', settings: 'plain', pieceLength: 4 * MiB, content: { kind: 'file', size: 9 * MiB + 7 } },
  { id: 'piece-16m', title: '16 MiB pieces, 20 MiB', settings: 'plain', pieceLength: 16 * MiB, content: { kind: 'file', size: 20 * MiB + 3 } },
  { id: 'size-1', title: 'a 1-byte file', settings: 'plain', pieceLength: 256 * KiB, content: { kind: 'file', size: 1 } },
  { id: 'size-block+1', title: 'one byte over a block (16385 bytes)', settings: 'plain', pieceLength: 256 * KiB, content: { kind: 'file', size: 16 * KiB + 1 } },
  { id: 'size-one-piece', title: 'exactly one piece (256 KiB)', settings: 'plain', pieceLength: 256 * KiB, content: { kind: 'file', size: 256 * KiB } },
  { id: 'magnet', title: 'a magnet link only (infohash and tracker), metadata over BEP 9', settings: 'plain', pieceLength: 256 * KiB, content: { kind: 'file', size: 2 * MiB + 77 }, magnet: true },
];

/**
 * Write the case's data as `dir/<name>`: one random file, or the folder with its files.
 * Names differ per case and direction so no client mistakes one case's data for another's.
 */
export async function writeContent(dir: string, name: string, content: Content): Promise<string> {
  const top = path.join(dir, name);
  if (content.kind === 'file') {
    await randomFile(top, content.size);
    return top;
  }
  for (const f of content.files) {
    const p = path.join(top, f.path);
    await fsp.mkdir(path.dirname(p), { recursive: true });
    await fsp.writeFile(p, randomBytes(f.size));
  }
  return top;
}

/** Total bytes of a case's content. */
export const contentSize = (c: Content): number => (c.kind === 'file' ? c.size : c.files.reduce((a, f) => a + f.size, 0));
