import { Bitfield } from '../wire/bitfield.js';
import type { Metainfo } from '../metainfo/metainfo.js';
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
}

/**
 * A complete shared file, read-only: every piece is there. Reads lease the file from the
 * node's OpenFiles; after each piece read the file's stamp is compared with the one its
 * pieces were hashed at, and a piece read from a changed file is hashed before it is served
 * (PieceReader), so bytes that fail their hash are never sent. Any sign of change is passed
 * on (`changed`), for the library to hash the file again and announce what it holds now.
 */
export class SeedStore implements PieceStore {
  readonly have: Bitfield;
  readonly reader: PieceReader;
  /** The last stamp reported as a change, so each change is reported once. */
  private reported: FileStamp | null = null;

  private constructor(
    private readonly init: SeedStoreInit,
    private readonly opened: FileStamp,
  ) {
    this.have = Bitfield.full(init.metainfo.pieceCount);
    const { files, file } = init;
    this.reader = new PieceReader(
      {
        read: (buf, offset, length, position) => files.use(file, (fh) => fh.read(buf, offset, length, position)),
        unchanged: () => this.unchanged(),
      },
      init.metainfo,
      {
        memory: init.memory,
        hasher: init.hasher,
        counters: init.counters,
        refused: (_index, why) => init.changed(why),
      },
    );
  }

  /** Open `file` for seeding; FileChangedError when its size is not its torrent's. */
  static async open(init: SeedStoreInit): Promise<SeedStore> {
    const st = await init.files.use(init.file, (fh) => fh.stat());
    if (st.size !== init.metainfo.length) throw new FileChangedError(`${init.file} is ${st.size} bytes, its torrent says ${init.metainfo.length}`);
    const store = new SeedStore(init, stampOf(st));
    const expected = init.expected();
    if (expected && !sameStamp(expected, store.opened)) store.report(store.opened);
    return store;
  }

  async close(): Promise<void> {
    this.reader.close();
    this.init.files.forget(this.init.file);
  }

  /** Is the file as its pieces were hashed? */
  private async unchanged(): Promise<boolean> {
    const now = stampOf(await this.init.files.use(this.init.file, (fh) => fh.stat()));
    if (sameStamp(now, this.init.expected() ?? this.opened)) return true;
    this.report(now);
    return false;
  }

  private report(stamp: FileStamp): void {
    if (this.reported && sameStamp(this.reported, stamp)) return;
    this.reported = stamp;
    this.init.changed('its stamp (size, modification or change time, inode) is not the one it was hashed at');
  }
}
