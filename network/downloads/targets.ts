import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { parseTorrent, type Metainfo } from '../metainfo/metainfo.js';
import { parseMagnet } from '../metainfo/magnet.js';
import { AmbiguousTargetError, BadTargetError, NotFoundError } from '../errors.js';

/** What a user may ask to download: a .torrent file, a magnet link, an infohash, or a name. */
export type Target =
  | { kind: 'torrent'; metainfo: Metainfo }
  | { kind: 'magnet'; infohash: string; name?: string; trackers: string[]; peers: Array<{ host: string; port: number }> }
  | { kind: 'infohash'; infohash: string }
  /** `exact`: only a file of exactly that name will do (a .torrent name the caller may not open). */
  | { kind: 'name'; name: string; exact: boolean };

export interface TargetOptions {
  /**
   * Read a target ending in `.torrent` as a file on this machine (the console and the
   * command line). False for callers that must never open local files because a remote
   * user asked (the dashboard): such a target is a name to search for instead.
   */
  readTorrentFiles?: boolean;
  /**
   * Download only the files these shell patterns match (`--only`): one without `/` matches a
   * file's name, one with `/` its path inside the torrent's folder. Every file when absent.
   * SelectionError when a pattern is bad or matches no file of the torrent.
   */
  only?: readonly string[];
}

/**
 * What kind of target `text` is. A magnet link is parsed (MagnetError when it is bad), a
 * .torrent file read and parsed (BadTargetError when it cannot be read, MetainfoError when it
 * is not a torrent Shoal can take). Bytes are the content of a .torrent file (an upload: no
 * file of this machine is opened), parsed the same way.
 */
export async function parseTarget(text: string | Uint8Array, opts: TargetOptions = {}): Promise<Target> {
  if (typeof text !== 'string') return { kind: 'torrent', metainfo: parseTorrent(Buffer.from(text.buffer, text.byteOffset, text.byteLength)) };
  const t = text.trim();
  if (t.length === 0) throw new BadTargetError('empty download target');
  if (/^magnet:/i.test(t)) {
    const m = parseMagnet(t);
    return { kind: 'magnet', infohash: m.infoHash, name: m.name, trackers: m.trackers, peers: m.peers };
  }
  if (/^[0-9a-f]{40}$/i.test(t)) return { kind: 'infohash', infohash: t.toLowerCase() };
  if (/\.torrent$/i.test(t) && opts.readTorrentFiles !== false) {
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(t);
    } catch (err) {
      throw new BadTargetError(`cannot read ${t}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return { kind: 'torrent', metainfo: parseTorrent(bytes) };
  }
  return { kind: 'name', name: t, exact: /\.torrent$/i.test(t) };
}

/** A search hit as name resolution needs it. */
export interface NamedFile {
  infohash: string;
  name: string;
  peers: Array<{ host: string; port: number }>;
}

/**
 * The one file a name means among search results: the files called exactly that (by path or
 * base name), else (unless `exactOnly`) every result; NotFoundError when there are none,
 * AmbiguousTargetError when they are different files.
 */
export function pickByName(name: string, results: NamedFile[], exactOnly = false): { infohash: string; peers: Array<{ host: string; port: number }> } {
  const exact = results.filter((r) => r.name === name || path.posix.basename(r.name) === name);
  const pick = exact.length > 0 || exactOnly ? exact : results;
  const hashes = new Set(pick.map((r) => r.infohash));
  if (hashes.size === 0) throw new NotFoundError(`no known peer shares a file named ${JSON.stringify(name)}`);
  if (hashes.size > 1) {
    const candidates = pick.map((r) => ({ name: r.name, infohash: r.infohash }));
    throw new AmbiguousTargetError(`${JSON.stringify(name)} is ambiguous: ${candidates.map((c) => `${c.name} (${c.infohash})`).join(', ')}; use an infohash`, candidates);
  }
  return { infohash: pick[0]!.infohash, peers: pick.flatMap((r) => r.peers) };
}
