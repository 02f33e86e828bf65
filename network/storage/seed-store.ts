import type { promises } from 'node:fs';
import { Bitfield } from '../wire/bitfield.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { PieceReader, openForRead } from './piece-reader.js';
import type { PieceStore } from './stores.js';

/** A complete shared file: every piece is there, read-only. */
export class SeedStore implements PieceStore {
  readonly have: Bitfield;
  private constructor(
    private readonly fd: promises.FileHandle,
    readonly reader: PieceReader,
    m: Metainfo,
  ) {
    this.have = Bitfield.full(m.pieceCount);
  }

  static async open(file: string, m: Metainfo): Promise<SeedStore> {
    const fd = await openForRead(file);
    const { size } = await fd.stat();
    if (size !== m.length) {
      await fd.close();
      throw new Error(`${file} is ${size} bytes, its torrent says ${m.length}`);
    }
    return new SeedStore(fd, new PieceReader(fd, m), m);
  }

  async close(): Promise<void> {
    await this.fd.close().catch(() => {});
  }
}
