/**
 * The torrents this node seeds under their own infohash from data it has, rather than under
 * the torrent the library computes: a .torrent added for a file already here (any maker, any
 * piece size, extra keys such as `private`), a finished download whose torrent the library
 * would not make itself, and every private torrent (BEP 27). Kept in the state folder
 * (`torrents.json`, replaced atomically) so each is seeded again at every start; each names
 * its data by path, size, mtime and inode, so a start re-verifies it by a stat, and hashes
 * only what changed.
 *
 * A private torrent's data is withheld from the library: it is in no public catalog and never
 * shared under another infohash. It is withheld by path and by inode (a finishing download's
 * .part is claimed before its rename, so the final file is never indexed, not even for a
 * moment), also after the torrent is removed from the list, until its file changes.
 */
import { promises as fsp } from 'node:fs';
import { z } from 'zod';
import { parseTorrent, encodeTorrent, type Metainfo } from '../metainfo/metainfo.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { Logger } from '../util/log.js';

/** Most torrents kept: beyond this a new one is refused (a node seeding more is not a node we plan for). */
export const MAX_KEPT_TORRENTS = 10_000;

/** Where a torrent's data is, and what it looked like when it was last verified. */
export interface DataStat {
  path: string;
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
}

export interface KeptTorrent extends DataStat {
  metainfo: Metainfo;
  /** Seeded now. A private torrent removed from the list stays (not seeded) only to withhold its file. */
  seeding: boolean;
}

const RecordSchema = z.object({
  infohash: z.string().regex(/^[0-9a-f]{40}$/),
  torrent: z.string(),
  path: z.string().min(1),
  size: z.number().int().nonnegative(),
  mtimeMs: z.number(),
  dev: z.number(),
  ino: z.number(),
  seeding: z.boolean(),
});
const FileSchema = z.object({ version: z.literal(1), torrents: z.array(z.unknown()) });

export class KeptTorrents {
  private readonly all = new Map<string, KeptTorrent>();
  /** `dev:ino` of private data about to be renamed into place (a finishing download). */
  private readonly claims = new Set<string>();
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly init: { file: string; log: Logger }) {}

  /** Read the file; a missing one is an empty list, a damaged record is skipped with a warning. */
  async load(): Promise<void> {
    const { file, log } = this.init;
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ file, err: (err as Error).message }, 'cannot read the kept torrents');
      return;
    }
    let records: unknown[];
    try {
      records = FileSchema.parse(JSON.parse(text)).torrents;
    } catch (err) {
      log.warn({ file, err: (err as Error).message }, 'ignoring a damaged list of kept torrents');
      return;
    }
    for (const r of records.slice(0, MAX_KEPT_TORRENTS)) {
      const rec = RecordSchema.safeParse(r);
      let m: Metainfo | null = null;
      try {
        if (rec.success) m = parseTorrent(Buffer.from(rec.data.torrent, 'base64'));
      } catch {
        m = null;
      }
      if (!rec.success || !m || m.infoHashHex !== rec.data.infohash) {
        log.warn({ file }, 'ignoring a damaged kept torrent');
        continue;
      }
      const { torrent: _t, infohash: _h, ...data } = rec.data;
      this.all.set(m.infoHashHex, { ...data, metainfo: m });
    }
  }

  list(): KeptTorrent[] {
    return [...this.all.values()];
  }

  get(infohash: string): KeptTorrent | undefined {
    return this.all.get(infohash);
  }

  /** A torrent seeded from data here, by infohash (what an incoming handshake may ask for). */
  seeded(infohash: string): { path: string; metainfo: Metainfo } | undefined {
    const k = this.all.get(infohash);
    return k?.seeding ? k : undefined;
  }

  /** Keep (or update) a torrent and its data; resolves once the file is saved. */
  put(k: KeptTorrent): Promise<void> {
    if (!this.all.has(k.metainfo.infoHashHex) && this.all.size >= MAX_KEPT_TORRENTS) return Promise.reject(new RangeError(`this node keeps ${MAX_KEPT_TORRENTS} torrents already`));
    this.all.set(k.metainfo.infoHashHex, k);
    return this.save();
  }

  /** Forget a torrent; resolves once the file is saved. */
  delete(infohash: string): Promise<void> {
    return this.all.delete(infohash) ? this.save() : Promise.resolve();
  }

  /** Withhold private data that is about to take a new name (until `release`). */
  claim(st: { dev: number; ino: number }): void {
    this.claims.add(`${st.dev}:${st.ino}`);
  }

  release(st: { dev: number; ino: number }): void {
    this.claims.delete(`${st.dev}:${st.ino}`);
  }

  /** Whether the file at `abs` (as `st` says) is a private torrent's data: the library must not share it. */
  withholds(abs: string, st: { dev: number; ino: number }): boolean {
    if (this.claims.has(`${st.dev}:${st.ino}`)) return true;
    for (const k of this.all.values()) if (k.metainfo.private && (k.path === abs || (k.dev === st.dev && k.ino === st.ino))) return true;
    return false;
  }

  /** Saves run one after another, each writing the list as it is then. */
  private save(): Promise<void> {
    const { file, log } = this.init;
    this.saving = this.saving.then(async () => {
      const torrents = [...this.all.values()].map(({ metainfo, ...data }) => ({ infohash: metainfo.infoHashHex, torrent: encodeTorrent(metainfo).toString('base64'), ...data }));
      await writeFileAtomic(file, JSON.stringify({ version: 1, torrents })).catch((err: Error) =>
        log.error({ file, err: err.message }, 'could not save the kept torrents: they are not seeded after a restart'),
      );
    });
    return this.saving;
  }
}
