/**
 * Adding a file to a shared folder from an upload. The name is checked with the library's
 * own rules before anything touches the disk; the bytes go to a hidden temp file in the
 * target directory (a dot-name the library never serves), are fsynced, then linked to the
 * final name, which never replaces an existing file. Whatever goes wrong (a bad body, an
 * abort, a full disk), the temp file is removed. Memory stays bounded: the body is piped
 * with back-pressure.
 */
import fs, { promises as fsp } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Library, SharedFile } from './library.js';
import { unservablePath, resolveInside } from '../util/names.js';
import { exists, renameNoClobber } from '../storage/stores.js';

/** Largest upload accepted unless the caller sets `maxBytes`. */
export const DEFAULT_MAX_IMPORT_BYTES = 64 * 1024 ** 3;

/** Every refusal of an import; the kind of refusal is the subclass. */
export class ImportError extends Error {
  readonly code: string = 'EIMPORT';
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The name breaks the library's rules (`..`, absolute, NUL or control characters, dot-files, backslashes). */
export class BadNameError extends ImportError {
  override readonly code = 'EBADNAME';
}

/** A file of that name exists already: it is never replaced. */
export class ExistsError extends ImportError {
  override readonly code = 'EEXIST';
}

/** Not enough free space for the declared size, or the disk filled while writing. */
export class NoSpaceError extends ImportError {
  override readonly code = 'ENOSPC';
}

/** Bigger than the bound (declared or while streaming). */
export class TooLargeError extends ImportError {
  override readonly code = 'ETOOLARGE';
}

/** The body was not the size it was declared to be. */
export class SizeMismatchError extends ImportError {
  override readonly code = 'ESIZE';
}

export interface ImportOptions {
  /** Declared size (Content-Length): checked against free space before writing anything. */
  size?: number;
  signal?: AbortSignal;
  /** Upper bound on the size; DEFAULT_MAX_IMPORT_BYTES by default. */
  maxBytes?: number;
}

/** Hashing speed assumed when waiting for the library to index a new file. */
const INDEX_BYTES_PER_MS = 20_000;

/**
 * Write `body` as `name` (relative, '/'-separated) inside `folder`, one of the library's
 * folders, and resolve with the file once the library has indexed it.
 */
export async function importFile(library: Library, folder: string, name: string, body: Readable, opts: ImportOptions = {}): Promise<SharedFile> {
  const why = typeof name === 'string' ? unservablePath(name) : 'name must be a string';
  if (why) throw new BadNameError(`bad name ${JSON.stringify(name)}: ${why}`);
  const final = resolveInside(folder, name);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_IMPORT_BYTES;
  const size = opts.size;
  if (size !== undefined) {
    if (!Number.isSafeInteger(size) || size < 0) throw new SizeMismatchError(`bad declared size ${size}`);
    if (size > maxBytes) throw new TooLargeError(`${size} bytes is more than the ${maxBytes} bytes an upload may have`);
  }
  opts.signal?.throwIfAborted();
  if (await exists(final)) throw new ExistsError(`${name} exists already`);
  const dir = path.dirname(final);
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new ExistsError(`${name}: a parent of it is a file`);
    throw err;
  }
  // The directory must be a real one inside the folder: never write through a symlink.
  const [realFolder, realDir] = await Promise.all([fsp.realpath(folder), fsp.realpath(dir)]);
  if (realDir !== path.join(realFolder, path.relative(folder, dir))) throw new BadNameError(`bad name ${JSON.stringify(name)}: it goes through a symlink`);
  if (size !== undefined) {
    const st = await fsp.statfs(dir);
    const free = st.bavail * st.bsize;
    if (size > free) throw new NoSpaceError(`${size} bytes do not fit: ${free} bytes free`);
  }
  const tmp = path.join(dir, `.shoal-upload-${randomBytes(6).toString('hex')}.tmp`);
  // `flush`: fsync before the close that ends the pipeline, so the link below names durable bytes.
  const out = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644, flush: true });
  let placed = false;
  try {
    let n = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        if (n > maxBytes) return cb(new TooLargeError(`the upload is more than ${maxBytes} bytes`));
        if (size !== undefined && n > size) return cb(new SizeMismatchError(`the body is longer than the declared ${size} bytes`));
        cb(null, chunk);
      },
    });
    await pipeline(body, count, out, opts.signal ? { signal: opts.signal } : {});
    if (size !== undefined && n !== size) throw new SizeMismatchError(`the body is ${n} bytes, ${size} were declared`);
    if (!(await renameNoClobber(tmp, final))) throw new ExistsError(`${name} exists already`);
    placed = true;
    return await library.waitFor(final, 30_000 + n / INDEX_BYTES_PER_MS);
  } catch (err) {
    if (!(err instanceof ImportError) && (err as NodeJS.ErrnoException).code === 'ENOSPC') throw new NoSpaceError(`the disk is full: ${(err as Error).message}`);
    throw err;
  } finally {
    // Only once the stream has closed its descriptor can no late open recreate the temp file.
    if (!out.closed) await once(out, 'close').catch(() => {});
    if (!placed) await fsp.rm(tmp, { force: true }).catch(() => {});
  }
}
