/**
 * The bytes of a multi-file torrent on disk, read and written at torrent offsets: a piece
 * that crosses files is cut into segments (storage/layout.ts), each read from or written to
 * its file. A file's bytes live in its file under the root folder, or (a file not selected)
 * in one sparse side file at their torrent offsets, or nowhere (padding: zeros).
 *
 * Files are opened when first needed and kept in a small LRU, so a torrent of 100,000 files
 * never holds more than MAX_OPEN descriptors. Reads and writes run side by side; `exclusive`
 * runs a change of layout (moving a file's bytes) with none of them under way.
 */
import { constants, promises as fsp, type promises } from 'node:fs';
import path from 'node:path';
import type { Metainfo } from '../metainfo/metainfo.js';
import { resolveInside } from '../util/names.js';
import { segments } from './layout.js';
import type { OpenFiles } from './open-files.js';

/** Descriptors one torrent keeps open at most. */
export const MAX_OPEN = 64;

/** Where the bytes of a file are. */
export type Placement = 'file' | 'side' | 'pad';

/** What PieceReader reads from: a FileHandle is one, and so is a FileSet. */
export interface ByteSource {
  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

interface Open {
  fh: Promise<promises.FileHandle>;
  refs: number;
}

export interface FileSetInit {
  root: string;
  metainfo: Pick<Metainfo, 'files'>;
  /** Open files for writing too (a download), or read-only (a seed). */
  writable: boolean;
  /** Where file `f`'s bytes are now; asked at every read and write. */
  placement(f: number): Placement;
  /** The side file for the bytes of files not selected (a download only). */
  sidePath?: string;
  /**
   * A seed's files are read through the node's open files (one budget of descriptors for every
   * shared file and folder) rather than a set of its own.
   */
  files?: OpenFiles;
}

export class FileSet implements ByteSource {
  private readonly open = new Map<string, Open>();
  private busy = 0;
  private idle: Array<() => void> = [];
  private gate: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly init: FileSetInit) {}

  /** Absolute path of file `f` (its components were checked when the torrent was read; checked again here). */
  pathOf(f: number): string {
    return resolveInside(this.init.root, this.init.metainfo.files[f]!.name);
  }

  /**
   * Read torrent bytes `position` .. into `buf`. Stops early (a short count) at a file that
   * is missing or shorter than the torrent says: nothing verified is ever read from there.
   */
  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return this.shared(async () => {
      let total = 0;
      for (const s of segments(this.init.metainfo.files, position, length)) {
        const where = this.init.placement(s.file);
        const dst = offset + s.at;
        if (where === 'pad') {
          buf.fill(0, dst, dst + s.length);
          total += s.length;
          continue;
        }
        const got = await this.io(where === 'side' ? this.side() : this.pathOf(s.file), (fh) => readFully(fh, buf, dst, s.length, where === 'side' ? position + s.at : s.fileOffset));
        total += got;
        if (got < s.length) break;
      }
      return { bytesRead: total };
    });
  }

  /** Write torrent bytes at `position`; padding is skipped. */
  write(data: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    return this.shared(async () => {
      for (const s of segments(this.init.metainfo.files, position, length)) {
        const where = this.init.placement(s.file);
        if (where === 'pad') continue;
        const file = where === 'side' ? this.side() : this.pathOf(s.file);
        await this.io(file, (fh) => writeFully(fh, data, offset + s.at, s.length, where === 'side' ? position + s.at : s.fileOffset), true);
      }
    });
  }

  /** Run `fn` with no read or write under way, and none starting until it is done. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    let release!: () => void;
    this.gate = new Promise<void>((r) => (release = r));
    try {
      while (this.busy > 0) await new Promise<void>((r) => this.idle.push(r));
      return await fn();
    } finally {
      this.gate = null;
      release();
    }
  }

  /** Close the descriptor of `file` if it is open (before the file is moved or deleted). */
  async forget(file: string): Promise<void> {
    const o = this.open.get(file);
    if (!o) return;
    this.open.delete(file);
    await (await o.fh.catch(() => null))?.close().catch(() => {});
  }

  /** Close every descriptor; reads and writes after this fail. */
  async close(): Promise<void> {
    this.closed = true;
    if (!this.init.writable && this.init.files) for (const [f, file] of this.init.metainfo.files.entries()) if (!file.pad) this.init.files.forget(this.pathOf(f));
    await Promise.all([...this.open.keys()].map((f) => this.forget(f)));
  }

  private side(): string {
    if (!this.init.sidePath) throw new Error('no side file for the bytes of files not selected');
    return this.init.sidePath;
  }

  private async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    this.busy++;
    try {
      return await fn();
    } finally {
      if (--this.busy === 0) for (const w of this.idle.splice(0)) w();
    }
  }

  /**
   * Run `fn` on the open descriptor of `file`, opening it if needed; `create` makes it (and
   * its folders) when missing. Without `create` a missing file reads as zero bytes.
   */
  private async io(file: string, fn: (fh: promises.FileHandle) => Promise<number | void>, create = false): Promise<number> {
    if (this.closed) throw new Error('file set closed');
    const shared = this.init.writable ? undefined : this.init.files;
    if (shared) {
      return shared.use(file, async (fh) => (await fn(fh)) ?? 0).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return 0;
        throw err;
      });
    }
    let o = this.open.get(file);
    if (o) {
      this.open.delete(file); // re-insert: Map order is the LRU order
      this.open.set(file, o);
    } else {
      o = { fh: this.openFile(file, create), refs: 0 };
      this.open.set(file, o);
      this.evict();
    }
    o.refs++;
    try {
      return (await fn(await o.fh)) ?? 0;
    } catch (err) {
      // A descriptor that could not be had is not kept: the next call tries again.
      if (this.open.get(file) === o && (await o.fh.then(() => false, () => true))) this.open.delete(file);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !create) return 0;
      throw err;
    } finally {
      o.refs--;
      this.evict();
    }
  }

  private async openFile(file: string, create: boolean): Promise<promises.FileHandle> {
    // A seed never follows a symlink put where one of its files was.
    if (!this.init.writable) return fsp.open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    if (!create) return fsp.open(file, 'r+');
    await fsp.mkdir(path.dirname(file), { recursive: true });
    return fsp.open(file, constants.O_RDWR | constants.O_CREAT);
  }

  /** Close the least recently used descriptors beyond MAX_OPEN that nothing uses now. */
  private evict(): void {
    if (this.open.size <= MAX_OPEN) return;
    for (const [file, o] of this.open) {
      if (this.open.size <= MAX_OPEN) return;
      if (o.refs > 0) continue;
      this.open.delete(file);
      void o.fh.then((fh) => fh.close()).catch(() => {});
    }
  }
}

async function readFully(fh: promises.FileHandle, buf: Buffer, at: number, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, at + done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

async function writeFully(fh: promises.FileHandle, data: Uint8Array, at: number, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await fh.write(data, at + done, length - done, position + done);
    done += bytesWritten;
  }
}
