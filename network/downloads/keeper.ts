/**
 * Seeding what the world made: a torrent (any maker, any piece size, extra keys) whose data
 * is here already is seeded under its own infohash, from that data, and again at every start
 * (library/kept-torrents.ts). Adding one (a download of it, or `seed`) looks for its data
 * (library/data-match.ts): every piece here, and it is seeded and listed as a finished
 * download; some pieces, and its download starts from them (copied into its .part and
 * verified again on the way, like a resume; the file found is never written to); none, and
 * it downloads like any other.
 *
 * A finished download is kept too when the library would not make the same torrent of its
 * file (another piece length or name, extra keys), and always when it is private (BEP 27):
 * then the library never shares its file under another infohash, in no public catalog,
 * because the .part is claimed before it is renamed into place.
 */
import { constants, promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { unservablePath } from '../util/names.js';
import { buildMetainfo, pieceHash, pieceSize, type Metainfo } from '../metainfo/metainfo.js';
import { PartFile, type Hasher } from '../storage/part-file.js';
import { exists } from '../storage/stores.js';
import type { Torrents } from '../swarm/torrents.js';
import type { Announcer } from '../tracker/announcer.js';
import type { Library } from '../library/library.js';
import { KeptTorrents, type DataStat, type KeptTorrent } from '../library/kept-torrents.js';
import { findData, type Candidate, type DataFound, type MatchHasher } from '../library/data-match.js';
import { BadTargetError, NoDataError } from '../errors.js';
import type { Downloads } from './downloads.js';
import { parseTarget, type TargetOptions } from './targets.js';

export interface KeeperInit {
  /** Where the kept torrents are listed (`<state>/torrents.json`). */
  file: string;
  downloads: Downloads;
  torrents: Torrents;
  announcer: Announcer;
  hasher: MatchHasher & Hasher;
  library: Library;
  /** The shared folders and the downloads folder, as they are now. */
  folders(): string[];
  downloadDir: string;
  resumeDir: string;
  /** Trackers a public torrent is announced to besides its own (the bootstrap server's, --tracker). */
  trackers(): string[];
  log: Logger;
}

/** What adding a torrent found here: all of its data (seeded now), some (its download starts from it), or none. */
export type Existing = 'seeding' | 'partial' | 'none';

const dataStat = (abs: string, st: Stats): DataStat => ({ path: abs, size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino });
const sameData = (a: DataStat, b: DataStat) => a.path === b.path && a.size === b.size && a.mtimeMs === b.mtimeMs && a.dev === b.dev && a.ino === b.ino;

export class Keeper {
  /** One look per torrent at a time: a second add of it waits for the first. */
  private readonly looking = new Map<string, Promise<Existing>>();
  private readonly halt = new AbortController();
  private readonly kept: KeptTorrents;
  /** The background hashing of kept data that changed while the node was stopped. */
  private rechecking: Promise<void> = Promise.resolve();

  constructor(private readonly init: KeeperInit) {
    this.kept = new KeptTorrents({ file: init.file, log: init.log });
    // A kept file the library saw change or go: verify it again (a private one's changes show at the next start).
    init.library.on('removed', (f) => void this.changed(f.path).catch(() => {}));
  }

  /** Read the list of kept torrents: before the library's first scan, which must withhold private data. */
  load(): Promise<void> {
    return this.kept.load();
  }

  /** A torrent seeded from data here, by infohash (Torrents opens it when a peer asks for it). */
  /** The infohashes of the kept torrents seeded now (an encrypted handshake may name any of them). */
  seededInfoHashes(): string[] {
    return this.kept.list().filter((k) => k.seeding).map((k) => k.metainfo.infoHashHex);
  }

  seeded(infohash: string): { path: string; metainfo: Metainfo } | undefined {
    return this.kept.seeded(infohash);
  }

  /** Whether the library must not share this file: it is a private torrent's data (BEP 27). */
  withholds(abs: string, st: { dev: number; ino: number }): boolean {
    return this.kept.withholds(abs, st);
  }

  /**
   * After a start: seed every kept torrent whose data is unchanged (one stat each). Data that
   * changed is hashed again in the background (a start does not wait for it), and seeded again
   * if every piece still matches.
   */
  async restore(): Promise<void> {
    const { downloads, log } = this.init;
    const changed: KeptTorrent[] = [];
    let seeding = 0;
    for (const k of this.kept.list()) {
      if (this.halt.signal.aborted) return;
      // A download of it resumes from its .part, and is kept again when it finishes.
      if (downloads.knows(k.metainfo.infoHashHex)) continue;
      const now = await this.located(k);
      if (!now) await this.drop(k, 'its data is gone');
      else if (!sameData(now, k)) changed.push(k);
      else if (await this.resume(k, now)) seeding++;
    }
    if (seeding > 0) log.info({ torrents: seeding }, 'seeding kept torrents from the data here');
    this.rechecking = (async () => {
      for (const k of changed) await this.recheck(k);
    })();
  }

  /**
   * A torrent is to be downloaded: when its data is here, seed it ('seeding'), or start its
   * .part from the pieces that are ('partial'); 'none' when nothing of it is here.
   */
  existing(m: Metainfo): Promise<Existing> {
    const h = m.infoHashHex;
    let p = this.looking.get(h);
    if (!p) {
      p = this.look(m).finally(() => this.looking.delete(h));
      this.looking.set(h, p);
    }
    return p;
  }

  /** `seed` of a .torrent file (a path) or its bytes: see Node.seed. */
  async seedTarget(torrent: string | Uint8Array, opts: TargetOptions): Promise<{ infohash: string; path: string }> {
    const t = await parseTarget(torrent, opts);
    if (t.kind !== 'torrent') throw new BadTargetError(`seed takes a .torrent file, not ${JSON.stringify(String(torrent).slice(0, 100))}`);
    return { infohash: t.metainfo.infoHashHex, path: await this.seed(t.metainfo) };
  }

  /** Seed `m` from data here, never downloading it: resolves with the data's path; NoDataError when not every piece is here. */
  async seed(m: Metainfo): Promise<string> {
    const h = m.infoHashHex;
    const own = this.init.library.byInfoHash(h);
    if (own) {
      // The library's own torrent of a shared file: seeded already.
      if (!this.init.downloads.get(h)) await this.init.downloads.alreadyShared(own);
      return own.path;
    }
    const kept = this.kept.seeded(h);
    if (kept) {
      await this.list(m, kept.path);
      return kept.path;
    }
    const found = await findData(m, this.candidates(m), this.init.hasher, this.halt.signal);
    if (!found?.have.complete()) {
      const n = found?.have.count() ?? 0;
      const where = found ? `${n} of its ${m.pieceCount} pieces are in ${found.path}` : `no file of ${m.length} bytes in the shared or download folders holds any of its pieces`;
      throw new NoDataError(`cannot seed ${m.name}: ${where} (download it to fetch what is missing)`, n, m.pieceCount, found?.path);
    }
    await this.keep(m, found);
    return found.path;
  }

  /** A download's pieces are all verified and its .part is about to take its final name: a private torrent's data is withheld from now on. */
  async finishing(m: Metainfo, partPath: string): Promise<void> {
    if (!m.private) return;
    const st = await fsp.lstat(partPath);
    this.kept.claim(st);
    // Kept before the rename: a crash right after it must not leave the file to the library.
    await this.kept.put({ metainfo: m, ...dataStat(partPath, st), seeding: true });
  }

  /** A download is complete at `file`: the library shares it (unless it is private), and it is kept when its torrent is not the library's own. */
  async finished(file: string, m: Metainfo): Promise<void> {
    const { library, log } = this.init;
    const kept = this.kept;
    const st = await fsp.lstat(file);
    if (m.private) {
      await kept.put({ metainfo: m, ...dataStat(file, st), seeding: true });
      kept.release(st);
      log.info({ file: m.name, infohash: m.infoHashHex }, 'a private torrent: seeded under its own infohash only, its file in no public catalog');
      return;
    }
    const own = m.pieceLength === library.pieceLength && buildMetainfo({ name: path.basename(file), length: m.length, pieceLength: m.pieceLength, pieces: m.pieces }).infoHashHex === m.infoHashHex;
    if (!own) await kept.put({ metainfo: m, ...dataStat(file, st), seeding: true });
    await library.adopt(file, m.pieces, m.pieceLength);
  }

  /**
   * Take a finished or failed download off the list (Downloads.remove): a kept torrent is seeded
   * no more, and a private one's file (unless deleted) stays out of the public catalog until it
   * changes. False when there is no such download, or it is still active.
   */
  async remove(infohash: string, deleteData: boolean): Promise<boolean> {
    if (!(await this.init.downloads.remove(infohash, deleteData))) return false;
    const k = this.kept.get(infohash);
    if (!k) return true;
    await this.init.announcer.stop(infohash);
    await this.init.torrents.drop(infohash);
    if (k.metainfo.private && !deleteData) await this.kept.put({ ...k, seeding: false });
    else await this.kept.delete(infohash);
    return true;
  }

  /** Look no more: a look or recheck under way stops at its next piece; resolves once every one settled. */
  async stop(): Promise<void> {
    this.halt.abort();
    await Promise.allSettled([...this.looking.values(), this.rechecking]);
  }

  // ---- internals ------------------------------------------------------------------------

  private async look(m: Metainfo): Promise<Existing> {
    const h = m.infoHashHex;
    const kept = this.kept.seeded(h);
    if (kept) {
      await this.list(m, kept.path);
      return 'seeding';
    }
    // A download of it that was interrupted resumes from its own .part.
    if (await exists(PartFile.resumePath(this.init.resumeDir, h))) return 'none';
    const found = await findData(m, this.candidates(m), this.init.hasher, this.halt.signal);
    if (!found) return 'none';
    if (found.have.complete()) {
      await this.keep(m, found);
      return 'seeding';
    }
    await this.prefill(m, found);
    return 'partial';
  }

  /** Where a torrent's data may be: the library's files of its size (with their digests), its name in each folder, kept data. */
  private candidates(m: Metainfo): Candidate[] {
    const out: Candidate[] = [];
    for (const f of this.init.library.files())
      if (f.size === m.length) out.push({ path: f.path, known: { pieceLength: f.metainfo.pieceLength, pieces: f.metainfo.pieces } });
    if (!unservablePath(m.name)) for (const dir of this.init.folders()) out.push({ path: path.join(dir, m.name) });
    for (const k of this.kept.list()) if (k.size === m.length) out.push({ path: k.path });
    return out;
  }

  private async keep(m: Metainfo, found: DataFound): Promise<void> {
    const { path: where, size, mtimeMs, dev, ino } = found;
    await this.kept.put({ metainfo: m, path: where, size, mtimeMs, dev, ino, seeding: true });
    // A private torrent's file leaves the public catalog now.
    if (m.private) await this.init.library.look(where);
    this.announce(m);
    await this.list(m, where);
    this.init.log.info({ file: m.name, infohash: m.infoHashHex, path: where, private: m.private }, 'seeding a torrent from the data here');
  }

  /** Copy the pieces found into a new .part and its resume record, each verified again: the download then resumes from them. */
  private async prefill(m: Metainfo, found: DataFound): Promise<void> {
    const { hasher, log } = this.init;
    const { part } = await PartFile.open({ metainfo: m, downloadDir: this.init.downloadDir, resumeDir: this.init.resumeDir, hasher, logger: log, signal: this.halt.signal });
    const fh = await fsp.open(found.path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0)).catch(async (err: Error) => {
      await part.close();
      throw err;
    });
    let buf = part.pool.acquire()!;
    let copied = 0;
    try {
      for (let i = 0; i < m.pieceCount && !this.halt.signal.aborted; i++) {
        if (!found.have.get(i)) continue;
        const size = pieceSize(m, i);
        const { bytesRead } = await fh.read(buf, 0, size, i * m.pieceLength);
        if (bytesRead !== size) break;
        const res = await hasher.lend(buf, size);
        buf = res.buf;
        // The file may have changed since it was hashed: only a piece that still matches goes in.
        if (!res.digest.equals(pieceHash(m, i))) continue;
        await part.writePiece(i, buf);
        part.markVerified(i);
        copied++;
      }
    } finally {
      part.pool.release(buf);
      await fh.close();
      await part.close();
    }
    log.info({ file: m.name, from: found.path, pieces: copied, of: m.pieceCount }, 'some of its pieces are here: the download starts from them');
  }

  /** Announce a seeded torrent: a private one to its own trackers only (BEP 27), a public one to the node's too. */
  private announce(m: Metainfo): void {
    const { announcer, torrents } = this.init;
    const h = m.infoHashHex;
    const urls = m.private ? m.announce : [...new Set([...m.announce, ...this.init.trackers()])];
    // A seed dials the leechers its trackers name: some clients only wait to be dialled.
    const dial = (peer: { host: string; port: number }) => void torrents.find(h).then((t) => t?.addPeers([peer]), () => {});
    announcer.start(m, urls, () => ({ uploaded: torrents.get(h)?.info().uploaded ?? 0, downloaded: 0, left: 0 }), dial);
  }

  /** Show it in the downloads list, finished, unless it is there (`tell`: with a `done` event). */
  private async list(m: Metainfo, where: string, tell = true): Promise<void> {
    if (!this.init.downloads.get(m.infoHashHex)) await this.init.downloads.alreadyShared({ name: m.name, path: where, metainfo: m }, tell);
  }

  /** Seed a kept torrent again (announced, listed); false for a private one that only withholds its file. */
  private async resume(k: KeptTorrent, now: DataStat): Promise<boolean> {
    if (!k.seeding) return false;
    this.announce(k.metainfo);
    await this.list(k.metainfo, now.path, false);
    return true;
  }

  /** Where `k`'s data is now (a stat; null when it is gone). */
  private async located(k: KeptTorrent): Promise<DataStat | null> {
    let where = k.path;
    let st = await fsp.lstat(where).catch(() => null);
    // A private download renamed into place just before a crash: its file has the .part's inode.
    if (!st && k.metainfo.private) ({ where, st } = await this.byInode(k));
    return st?.isFile() ? dataStat(where, st) : null;
  }

  /** Verify `k`'s data again now: unchanged (a stat), or hashed again and still whole; dropped otherwise. */
  private async recheck(k: KeptTorrent): Promise<void> {
    const now = await this.located(k);
    if (now && sameData(now, k)) return;
    let whole = false;
    if (now) {
      this.init.log.info({ file: k.metainfo.name, path: now.path }, "a kept torrent's data changed: verifying it again");
      const found = await findData(k.metainfo, [{ path: now.path }], this.init.hasher, this.halt.signal).catch(() => null);
      // Stopping is no verdict: it is looked at again at the next start.
      if (this.halt.signal.aborted) return;
      whole = found?.have.complete() === true && sameData(found, now);
    }
    if (!now || !whole) return this.drop(k, now ? 'its data is not its data any more' : 'its data is gone');
    await this.kept.put({ ...k, ...now });
    await this.resume(k, now);
  }

  private async byInode(k: KeptTorrent): Promise<{ where: string; st: Stats | null }> {
    const names = await fsp.readdir(this.init.downloadDir).catch(() => [] as string[]);
    for (const n of names) {
      const where = path.join(this.init.downloadDir, n);
      const st = await fsp.lstat(where).catch(() => null);
      if (st?.isFile() && st.ino === k.ino && st.dev === k.dev) return { where, st };
    }
    return { where: k.path, st: null };
  }

  /** The library saw `abs` change or go: a kept torrent seeded from it is verified again, and dropped if it is not its data now. */
  private async changed(abs: string): Promise<void> {
    for (const k of this.kept.list()) if (k.path === abs && k.seeding && !this.halt.signal.aborted) await this.recheck(k);
  }

  private async drop(k: KeptTorrent, why: string): Promise<void> {
    const h = k.metainfo.infoHashHex;
    this.init.log.warn({ file: k.metainfo.name, infohash: h, path: k.path, why }, 'no longer seeding a kept torrent');
    await this.kept.delete(h);
    await this.init.announcer.stop(h);
    if (!this.init.downloads.get(h)?.active) await this.init.torrents.drop(h);
    // A private torrent's file, withheld until now, is an ordinary file again.
    if (k.metainfo.private) await this.init.library.look(k.path);
  }
}
