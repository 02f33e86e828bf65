/**
 * The bytes of a multi-file download: `downloads/<name>.part/`, a folder laid out as the
 * torrent's (nested paths made as needed), which becomes `downloads/<name>/` in one rename
 * when every wanted piece is verified. The `.part` suffix says what the single-file .part
 * says: a download in progress, never shared by the library, under a name that cannot be
 * mistaken for the finished folder.
 *
 * Every selected file is made at its full length when the download opens (sparse: holes cost
 * nothing), empty ones included, so an empty file is complete from the start. The files not
 * selected are never made: the bytes of theirs that share a piece with a selected file (the
 * piece must be verified whole) go to one sparse side file, `.shoal-unwanted`, at their
 * torrent offsets, and it is deleted before the rename. A change of selection moves the
 * verified bytes of each file that changes side between its file and the side file.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Metainfo } from '../metainfo/metainfo.js';
import { localName, PRIVATE_FOLDER_MARKER, UNWANTED_SIDE_FILE } from '../util/names.js';
import type { Bitfield } from '../wire/bitfield.js';
import { FileSet, type Placement } from './file-set.js';
import { filePieces, pieceSpan } from './layout.js';
import { exists } from './stores.js';

/** Bytes moved at a time when a change of selection moves a file's verified bytes. */
const MOVE_CHUNK = 1024 * 1024;
/** Files made at once when a download opens. */
const MAKE_AT_ONCE = 16;

export interface PartFolderOpen {
  folder: PartFolder;
  /** Made now (nothing of an earlier run was found). */
  fresh: boolean;
  /** Selected files that were missing or of the wrong size: their pieces must be verified again. */
  damaged: number[];
}

export class PartFolder {
  readonly files: FileSet;
  private selected: boolean[];

  private constructor(
    readonly partPath: string,
    private readonly m: Metainfo,
    selected: readonly boolean[] | null,
  ) {
    this.selected = m.files.map((f, i) => !f.pad && (selected ? selected[i] === true : true));
    this.files = new FileSet({ root: partPath, metainfo: m, writable: true, placement: (f) => this.placement(f), sidePath: path.join(partPath, UNWANTED_SIDE_FILE) });
  }

  /** Open the folder an earlier run left (`recorded`), or make a new one; make every selected file. */
  static async open(dir: string, m: Metainfo, recorded: string | null, selected: readonly boolean[] | null): Promise<PartFolderOpen> {
    let partPath = recorded ? path.join(dir, recorded) : null;
    let fresh = false;
    if (!partPath || !(await isFolder(partPath))) {
      partPath = await freeFolder(dir, m);
      await fsp.mkdir(partPath);
      // Before any file of a private torrent exists: the library never shares them, also once renamed.
      if (m.private) await fsp.writeFile(path.join(partPath, PRIVATE_FOLDER_MARKER), 'a private torrent (BEP 27): Shoal shares none of these files publicly\n');
      fresh = true;
    }
    const folder = new PartFolder(partPath, m, selected);
    const damaged = await folder.make(m.files.map((_, i) => i).filter((i) => folder.selected[i]));
    return { folder, fresh, damaged: fresh ? [] : damaged };
  }

  /** Which files are selected, in torrent order (padding never is). */
  selection(): boolean[] {
    return [...this.selected];
  }

  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return this.files.read(buf, offset, length, position);
  }

  write(data: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    return this.files.write(data, offset, length, position);
  }

  /**
   * Select `next` instead: each file that changes side has the verified bytes it holds (the
   * pieces set in `have`) moved, so nothing verified is lost, and a newly selected file is
   * made whole. Reads and writes wait meanwhile.
   */
  reselect(next: readonly boolean[], have: Bitfield): Promise<void> {
    return this.files.exclusive(async () => {
      for (let f = 0; f < this.m.files.length; f++) {
        const want = !this.m.files[f]!.pad && next[f] === true;
        if (want === this.selected[f]) continue;
        if (want) {
          await this.make([f]);
          await this.move(f, have, 'side');
          this.selected[f] = true;
        } else {
          await this.move(f, have, 'file');
          this.selected[f] = false;
          const file = this.files.pathOf(f);
          await this.files.forget(file);
          await fsp.rm(file, { force: true });
          await removeEmptyParents(path.dirname(file), this.partPath);
        }
      }
    });
  }

  async close(): Promise<void> {
    await this.files.close();
  }

  /** Cancel: the folder goes, with everything in it. */
  async discard(): Promise<void> {
    await this.files.close();
    await fsp.rm(this.partPath, { recursive: true, force: true });
  }

  /**
   * Every wanted piece is verified: the side file goes, then the folder takes its final name
   * in one rename, never over an existing file or folder (`name (1)` and so on).
   */
  async finish(): Promise<string> {
    await this.files.close();
    await fsp.rm(path.join(this.partPath, UNWANTED_SIDE_FILE), { force: true });
    const name = localName(this.m.name).name;
    for (let n = 0; n < 1000; n++) {
      const target = path.join(path.dirname(this.partPath), n === 0 ? name : `${name} (${n})`);
      if (await renameFolderNoClobber(this.partPath, target)) return target;
    }
    throw new Error(`no free name for ${name} in ${path.dirname(this.partPath)}`);
  }

  private placement(f: number): Placement {
    if (this.m.files[f]!.pad) return 'pad';
    return this.selected[f] ? 'file' : 'side';
  }

  /** Make files `list` at their full length (sparse); returns those that were missing or of another length. */
  private async make(list: number[]): Promise<number[]> {
    const damaged: number[] = [];
    const todo = [...list];
    const worker = async (): Promise<void> => {
      for (let f = todo.shift(); f !== undefined; f = todo.shift()) {
        const file = this.files.pathOf(f);
        const length = this.m.files[f]!.length;
        const st = await fsp.stat(file).catch(() => null);
        if (st?.isFile() && st.size === length) continue;
        if (st && !st.isFile()) throw new Error(`${file} is in the way of a file of the download`);
        damaged.push(f);
        await fsp.mkdir(path.dirname(file), { recursive: true });
        const fh = await fsp.open(file, st ? 'r+' : 'w');
        try {
          await fh.truncate(length);
        } finally {
          await fh.close();
        }
      }
    };
    await Promise.all(Array.from({ length: MAKE_AT_ONCE }, worker));
    return damaged;
  }

  /** Copy the verified bytes of file `f` from where they are now (`from`) to the other side. */
  private async move(f: number, have: Bitfield, from: 'file' | 'side'): Promise<void> {
    const span = filePieces(this.m, f);
    if (!span) return;
    const file = this.m.files[f]!;
    const src = from === 'file' ? this.files.pathOf(f) : path.join(this.partPath, UNWANTED_SIDE_FILE);
    const dst = from === 'file' ? path.join(this.partPath, UNWANTED_SIDE_FILE) : this.files.pathOf(f);
    // The side file holds bytes at their torrent offset, a file at its own.
    const srcBase = from === 'file' ? -file.offset : 0;
    const dstBase = from === 'file' ? 0 : -file.offset;
    if (!(await exists(src))) return;
    await this.files.forget(src);
    await this.files.forget(dst);
    const [input, output] = [await fsp.open(src, 'r'), await fsp.open(dst, 'r+').catch(() => fsp.open(dst, 'w+'))];
    try {
      const buf = Buffer.allocUnsafe(Math.min(MOVE_CHUNK, this.m.pieceLength * 2, file.length));
      for (let i = span.first; i <= span.last; i++) {
        if (!have.get(i)) continue;
        const p = pieceSpan(this.m, i);
        const start = Math.max(p.start, file.offset);
        const end = Math.min(p.end, file.offset + file.length);
        for (let pos = start; pos < end; ) {
          const n = Math.min(buf.length, end - pos);
          const { bytesRead } = await input.read(buf, 0, n, pos + srcBase);
          if (bytesRead === 0) break;
          await output.write(buf, 0, bytesRead, pos + dstBase);
          pos += bytesRead;
        }
      }
    } finally {
      await input.close();
      await output.close();
    }
  }
}

async function isFolder(p: string): Promise<boolean> {
  return (await fsp.lstat(p).catch(() => null))?.isDirectory() === true;
}

/** `<name>.part`, unless something else already has that name. */
async function freeFolder(dir: string, m: Metainfo): Promise<string> {
  const name = localName(m.name).name;
  const plain = path.join(dir, `${name}.part`);
  if (!(await exists(plain))) return plain;
  return path.join(dir, `${name}.${m.infoHashHex.slice(0, 8)}.part`);
}

/**
 * Rename folder `from` to `to` unless `to` exists. A rename would replace an empty folder
 * there, so `to` is first made by us (mkdir fails if anything has the name): then the rename
 * replaces only the empty folder we just made. False when the name is taken.
 */
export async function renameFolderNoClobber(from: string, to: string): Promise<boolean> {
  try {
    await fsp.mkdir(to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await fsp.rename(from, to);
    return true;
  } catch (err) {
    // Something was put in our empty folder meanwhile: leave it, try another name.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    await fsp.rmdir(to).catch(() => {});
    throw err;
  }
}

/** Remove `dir` and its parents while they are empty, up to (not including) `root`. */
async function removeEmptyParents(dir: string, root: string): Promise<void> {
  for (let d = dir; d.startsWith(root + path.sep); d = path.dirname(d)) {
    try {
      await fsp.rmdir(d);
    } catch {
      return;
    }
  }
}
