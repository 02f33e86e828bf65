import { promises as fsp } from 'node:fs';
import { parseTorrent, type Metainfo } from '../metainfo/metainfo.js';
import { parseMagnet } from '../metainfo/magnet.js';

/** What a user may ask to download: a .torrent file, a magnet link, an infohash, or a name. */
export type Target =
  | { kind: 'torrent'; metainfo: Metainfo }
  | { kind: 'magnet'; infohash: string; name?: string; trackers: string[]; peers: Array<{ host: string; port: number }> }
  | { kind: 'infohash'; infohash: string }
  | { kind: 'name'; name: string };

export async function parseTarget(text: string): Promise<Target> {
  const t = text.trim();
  if (t.length === 0) throw new Error('empty download target');
  if (/^magnet:/i.test(t)) {
    const m = parseMagnet(t);
    return { kind: 'magnet', infohash: m.infoHash, name: m.name, trackers: m.trackers, peers: m.peers };
  }
  if (/^[0-9a-f]{40}$/i.test(t)) return { kind: 'infohash', infohash: t.toLowerCase() };
  if (/\.torrent$/i.test(t)) {
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(t);
    } catch (err) {
      throw new Error(`cannot read ${t}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return { kind: 'torrent', metainfo: parseTorrent(bytes) };
  }
  return { kind: 'name', name: t };
}
