import { promises as fsp } from 'node:fs';
import { Bitfield } from '../wire/bitfield.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { resolveInside } from '../util/names.js';
import { FileSet } from './file-set.js';
import { coveredPieces, segments } from './layout.js';
import { sameStamp, stampOf, type FileStamp } from '../util/file-stamp.js';
import { PieceReader, goneCode, type PieceHasher, type ReadCounters } from './piece-reader.js';
import type { OpenFiles } from './open-files.js';
import type { UploadMemory } from './upload-memory.js';
import type { PieceStore } from './stores.js';

const STAMP_CHANGED = 'its stamp (size, modification or change time, inode) is not the one it was hashed at';

/** A shared file is not what its torrent says any more (its size changed, or it is gone): it must be hashed again. */
export class FileChangedError extends Error {
  override name = 'FileChangedError';
}

export interface SeedStoreInit {
  file: string;
  metainfo: Metainfo;
  /** The node's open shared files: the store holds no descriptor of its own. */
  files: OpenFiles;
  memory: UploadMemory;
  /** Hashes pieces read from a file that changed since it was hashed. */
  hasher: PieceHasher;
  counters?: ReadCounters;
  /** The stamp the file had when its pieces were hashed (the library's entry), if known; else the one it has at open. */
  expected(): FileStamp | undefined;
  /** The file changed under us (a new stamp, a piece that failed its hash, a short read): hash it again. */
  changed(why: string): void;
  /** A multi-file download finished with some files only: those (torrent order); every file when absent. */
  selected?: readonly boolean[] | null;
}

/**
 * A complete shared file, or the folder of a multi-file torrent, read-only. Every piece is
 * there, except for a finished download of some files only: then the pieces whose every byte
 * is in those files.
 *
 * A single file is read through a lease from the node's OpenFiles; after each piece read its
 * stamp is compared with the one its pieces were hashed at, and a piece read from a changed file
 * is hashed before it is served (PieceReader), so bytes that fail their hash are never sent. Any
 * sign of change is passed on (`changed`), for the library to hash the file again and announce
 * what it holds now. A folder's files are read through its own FileSet, each stamped at open
 * and compared after every read that touched it, with the same consequences; a piece read
 * short (a file shrank) is refused and reported the same way.
 */
export class SeedStore implements PieceStore {
  readonly have: Bitfield;
  readonly wanted: Bitfield;
  readonly reader: PieceReader;
  /**
   * A change was reported (a stamp, a refused piece) and the file has not been found whole
   * again since (`forgive`): further signs of it are not news. Each change is reported once.
   */
  private reported = false;
  private folder: FileSet | null = null;
  /** A folder's files (torrent index) as they were at open, or when last found whole again (`forgive`). */
  private stamps = new Map<number, FileStamp>();

  private constructor(
    private readonly init: SeedStoreInit,
    private readonly opened: FileStamp | null,
    folder: FileSet | null,
  ) {
    const m = init.metainfo;
    this.folder = folder;
    this.have = folder ? coveredPieces(m, init.selected ?? null) : Bitfield.full(m.pieceCount);
    this.wanted = this.have;
    const { files, file } = init;
    const source = folder
      ? {
          read: (buf: Buffer, offset: number, length: number, position: number) => folder.read(buf, offset, length, position),
          unchanged: (position: number, length: number) => this.folderUnchanged(position, length),
        }
      : {
          read: (buf: Buffer, offset: number, length: number, position: number) => files.use(file, (fh) => fh.read(buf, offset, length, position)),
          unchanged: () => this.unchanged(),
        };
    this.reader = new PieceReader(source, m, {
      memory: init.memory,
      hasher: init.hasher,
      counters: init.counters,
      refused: (_index, why) => this.report(why),
    });
  }

  /**
   * Open `file` for seeding (a folder for a multi-file torrent: its selected files must all be
   * there at their length); FileChangedError when a size is not its torrent's or a file is missing.
   */
  static async open(init: SeedStoreInit): Promise<SeedStore> {
    const m = init.metainfo;
    if (m.multiFile) {
      const stamps = new Map<number, FileStamp>();
      for (const [i, f] of m.files.entries()) {
        if (f.pad || (init.selected && !init.selected[i])) continue;
        const where = resolveInside(init.file, f.name);
        const st = await fsp.lstat(where).catch(() => null);
        if (!st?.isFile()) throw new FileChangedError(`${where} is missing: the folder no longer holds its torrent's files`);
        if (st.size !== f.length) throw new FileChangedError(`${where} is ${st.size} bytes, its torrent says ${f.length}`);
        stamps.set(i, stampOf(st));
      }
      const folder = new FileSet({ root: init.file, metainfo: m, writable: false, files: init.files, placement: (f) => (m.files[f]!.pad ? 'pad' : 'file') });
      const store = new SeedStore(init, null, folder);
      store.stamps = stamps;
      return store;
    }
    const st = await init.files.use(init.file, (fh) => fh.stat()).catch((err: Error) => {
      const code = goneCode(err);
      throw code ? new FileChangedError(`${init.file} is gone (${code})`) : err;
    });
    if (st.size !== m.length) throw new FileChangedError(`${init.file} is ${st.size} bytes, its torrent says ${m.length}`);
    const store = new SeedStore(init, stampOf(st), null);
    const expected = init.expected();
    if (expected && !sameStamp(expected, stampOf(st))) store.report(STAMP_CHANGED);
    return store;
  }

  /**
   * The file was hashed again and still makes this torrent (a change undone, a file touched):
   * pieces refused before are served again, and the next change is reported anew.
   */
  forgive(): void {
    this.reported = false;
    this.reader.forgive();
    // A folder's files are stamped anew as they are next read.
    this.stamps.clear();
  }

  async close(): Promise<void> {
    this.reader.close();
    if (this.folder) await this.folder.close().catch(() => {});
    else this.init.files.forget(this.init.file);
  }

  /** Is the file as its pieces were hashed? (Bytes read before it went away are hashed, then served if they match.) */
  private async unchanged(): Promise<boolean> {
    let st;
    try {
      st = await this.init.files.use(this.init.file, (fh) => fh.stat());
    } catch (err) {
      const code = goneCode(err);
      if (!code) throw err;
      this.report(`the file is gone (${code})`);
      return false;
    }
    if (sameStamp(stampOf(st), this.init.expected() ?? this.opened!)) return true;
    this.report(STAMP_CHANGED);
    return false;
  }

  /** Are the folder's files that hold torrent bytes `position` .. `position + length` as they were? */
  private async folderUnchanged(position: number, length: number): Promise<boolean> {
    const m = this.init.metainfo;
    for (const s of segments(m.files, position, length)) {
      const f = m.files[s.file]!;
      if (f.pad) continue;
      const where = resolveInside(this.init.file, f.name);
      const st = await fsp.lstat(where).catch((err: Error) => err);
      if (st instanceof Error) {
        const code = goneCode(st);
        if (!code) throw st;
        this.report(`${f.name} is gone (${code})`);
        return false;
      }
      const was = this.stamps.get(s.file);
      if (!was) this.stamps.set(s.file, stampOf(st));
      else if (!st.isFile() || !sameStamp(was, stampOf(st))) {
        this.report(`${f.name}: ${STAMP_CHANGED}`);
        return false;
      }
    }
    return true;
  }

  private report(why: string): void {
    if (this.reported) return;
    this.reported = true;
    this.init.changed(why);
  }
}
