import { promises as fsp } from 'node:fs';
import { Bitfield } from '../wire/bitfield.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { resolveInside } from '../util/names.js';
import { PieceReader, openForRead } from './piece-reader.js';
import { FileSet } from './file-set.js';
import { coveredPieces } from './layout.js';
import type { PieceStore } from './stores.js';

/**
 * A complete shared file, or folder of a multi-file torrent, read-only. Every piece is there,
 * except for a finished download of some files only: then the pieces whose every byte is in
 * those files.
 */
export class SeedStore implements PieceStore {
  readonly have: Bitfield;
  readonly wanted: Bitfield;
  private constructor(
    private readonly bytes: { close(): Promise<void> },
    readonly reader: PieceReader,
    have: Bitfield,
  ) {
    this.have = have;
    this.wanted = have;
  }

  /**
   * Seed `file` (a folder for a multi-file torrent: its selected files must all be there at
   * their length). Rejects when one is missing or of another length.
   */
  static async open(file: string, m: Metainfo, selected: readonly boolean[] | null = null): Promise<SeedStore> {
    if (m.multiFile) {
      for (const [i, f] of m.files.entries()) {
        if (f.pad || (selected && !selected[i])) continue;
        const where = resolveInside(file, f.name);
        const st = await fsp.lstat(where).catch(() => null);
        if (!st?.isFile()) throw new Error(`${where} is missing: the folder no longer holds its torrent's files`);
        if (st.size !== f.length) throw new Error(`${where} is ${st.size} bytes, its torrent says ${f.length}`);
      }
      const files = new FileSet({ root: file, metainfo: m, writable: false, placement: (f) => (m.files[f]!.pad ? 'pad' : 'file') });
      return new SeedStore(files, new PieceReader(files, m), coveredPieces(m, selected));
    }
    const fd = await openForRead(file);
    const { size } = await fd.stat();
    if (size !== m.length) {
      await fd.close();
      throw new Error(`${file} is ${size} bytes, its torrent says ${m.length}`);
    }
    return new SeedStore({ close: () => fd.close() }, new PieceReader(fd, m), Bitfield.full(m.pieceCount));
  }

  async close(): Promise<void> {
    await this.bytes.close().catch(() => {});
  }
}
