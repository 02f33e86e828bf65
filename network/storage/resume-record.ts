/**
 * A download's resume record: `<resume dir>/<infohash>.json`, replaced atomically. It names the
 * .part (a file, or a folder for a multi-file torrent), holds the .torrent (so a restart needs
 * no peer to know what it downloads), the verified pieces, and which files are selected.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseTorrent, type Metainfo } from '../metainfo/metainfo.js';
import type { Logger } from '../util/log.js';

export const ResumeRecord = z.object({
  version: z.literal(1),
  infohash: z.string().regex(/^[0-9a-f]{40}$/),
  /** The .part's name in the downloads folder (one component). */
  part: z.string(),
  torrent: z.string(),
  /** Base64 of the verified-pieces bitfield. */
  have: z.string(),
  /** Base64 of the selected-files bitfield (torrent order); absent: every file. */
  files: z.string().optional(),
  savedAt: z.number(),
});
export type ResumeRecord = z.infer<typeof ResumeRecord>;

export function resumePath(resumeDir: string, infohashHex: string): string {
  return path.join(resumeDir, `${infohashHex}.json`);
}

export async function readRecord(file: string, logger: Logger): Promise<ResumeRecord | null> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return null;
  }
  try {
    return ResumeRecord.parse(JSON.parse(text));
  } catch (err) {
    logger.warn({ file, err: (err as Error).message }, 'ignoring a damaged resume record');
    return null;
  }
}

/** The metainfo of every download that has a resume record in `resumeDir`. */
export async function pendingDownloads(resumeDir: string, logger: Logger): Promise<Metainfo[]> {
  let names: string[];
  try {
    names = await fsp.readdir(resumeDir);
  } catch {
    return [];
  }
  const out: Metainfo[] = [];
  for (const n of names.filter((x) => /^[0-9a-f]{40}\.json$/.test(x))) {
    const rec = await readRecord(path.join(resumeDir, n), logger);
    if (!rec) continue;
    try {
      const m = parseTorrent(Buffer.from(rec.torrent, 'base64'));
      if (m.infoHashHex === rec.infohash) out.push(m);
      else logger.warn({ file: n }, 'ignoring a resume record whose torrent does not match its infohash');
    } catch (err) {
      logger.warn({ file: n, err: (err as Error).message }, 'ignoring a resume record with a damaged torrent');
    }
  }
  return out;
}

/** A selection as the record keeps it: null (every file) stays absent. */
export function encodeSelection(selected: readonly boolean[] | null): string | undefined {
  if (!selected) return undefined;
  const bytes = new Uint8Array(Math.ceil(selected.length / 8));
  selected.forEach((on, i) => {
    if (on) bytes[i >> 3]! |= 0x80 >> (i & 7);
  });
  return Buffer.from(bytes).toString('base64');
}

/** The selection a record keeps, or null (every file) when absent or not for `count` files. */
export function decodeSelection(text: string | undefined, count: number): boolean[] | null {
  if (text === undefined) return null;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== Math.ceil(count / 8)) return null;
  return Array.from({ length: count }, (_, i) => (bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0);
}
