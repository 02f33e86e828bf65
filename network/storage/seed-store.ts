import { promises as fsp } from 'node:fs';
import { Bitfield } from '../wire/bitfield.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { resolveInside } from '../util/names.js';
import { FileSet } from './file-set.js';
import { coveredPieces } from './layout.js';
import { sameStamp, stampOf, type FileStamp } from '../util/file-stamp.js';
import { PieceReader, type PieceHasher, type ReadCounters } from './piece-reader.js';
import type { OpenFiles } from './open-files.js';
import type { UploadMemory } from './upload-memory.js';
import type { PieceStore } from './stores.js';

/** A shared file is not what its torrent says any more (its size changed): it must be hashed again. */
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
 * what it holds now. A folder's files are read through its own FileSet; a piece read short
 * (a file shrank) is refused and reported the same way.
 */
export class SeedStore implements PieceStore {
  readonly have: Bitfield;
  readonly wanted: Bitfield;
  readonly reader: PieceReader;
  /** The last stamp reported as a change, so each change is reported once. */
  private reported: FileStamp | null = null;
  private folder: FileSet | null = null;

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
      ? { read: (buf: Buffer, offset: number, length: number, position: number) => folder.read(buf, offset, length, position) }
      : {
          read: (buf: Buffer, offset: number, length: number, position: number) => files.use(file, (fh) => fh.read(buf, offset, length, position)),
          unchanged: () => this.unchanged(),
        };
    this.reader = new PieceReader(source, m, {
      memory: init.memory,
      hasher: init.hasher,
      counters: init.counters,
      refused: (_index, why) => init.changed(why),
    });
  }

  /**
   * Open `file` for seeding (a folder for a multi-file torrent: its selected files must all be
   * there at their length); FileChangedError when a size is not its torrent's or a file is missing.
   */
  static async open(init: SeedStoreInit): Promise<SeedStore> {
    const m = init.metainfo;
    if (m.multiFile) {
      for (const [i, f] of m.files.entries()) {
        if (f.pad || (init.selected && !init.selected[i])) continue;
        const where = resolveInside(init.file, f.name);
        const st = await fsp.lstat(where).catch(() => null);
        if (!st?.isFile()) throw new FileChangedError(`${where} is missing: the folder no longer holds its torrent's files`);
        if (st.size !== f.length) throw new FileChangedError(`${where} is ${st.size} bytes, its torrent says ${f.length}`);
      }
      const folder = new FileSet({ root: init.file, metainfo: m, writable: false, placement: (f) => (m.files[f]!.pad ? 'pad' : 'file') });
      return new SeedStore(init, null, folder);
    }
    const st = await init.files.use(init.file, (fh) => fh.stat());
    if (st.size !== m.length) throw new FileChangedError(`${init.file} is ${st.size} bytes, its torrent says ${m.length}`);
    const store = new SeedStore(init, stampOf(st), null);
    const expected = init.expected();
    if (expected && !sameStamp(expected, stampOf(st))) store.report(stampOf(st));
    return store;
  }

  async close(): Promise<void> {
    this.reader.close();
    if (this.folder) await this.folder.close().catch(() => {});
    else this.init.files.forget(this.init.file);
  }

  /** Is the file as its pieces were hashed? */
  private async unchanged(): Promise<boolean> {
    const now = stampOf(await this.init.files.use(this.init.file, (fh) => fh.stat()));
    if (sameStamp(now, this.init.expected() ?? this.opened!)) return true;
    this.report(now);
    return false;
  }

  private report(stamp: FileStamp): void {
    if (this.reported && sameStamp(this.reported, stamp)) return;
    this.reported = stamp;
    this.init.changed('its stamp (size, modification or change time, inode) is not the one it was hashed at');
  }
}
