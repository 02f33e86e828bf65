/**
 * A file's bytes over HTTP ranges, also while it downloads: a single-file torrent's file, or
 * one file of a multi-file torrent (its bytes are one run of the torrent's, from its offset;
 * on disk they are one file of the .part folder). A complete file streams from disk. A download serves only verified pieces (never rewritten once verified): the range
 * ends where the run of verified pieces from `start` ends, so a player asks again for the
 * rest; a reader at a piece not yet here moves that piece to the front of the picker and
 * waits a bounded time for it. A reader that wants every byte (a download without Range:
 * curl, "save as") follows the download instead: it waits for each missing piece as it
 * reaches it, and fails rather than end early.
 *
 * The .part is opened by path at read time, the finished file's path tried next: an open
 * handle survives the rename at completion, and a read that starts after it finds the file
 * under its final name.
 */
import { promises as fsp } from 'node:fs';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bitfield } from '../wire/bitfield.js';

/** The piece a reader needs did not arrive in time (or cannot: paused, failed). */
export class ContentUnavailableError extends Error {
  override name = 'ContentUnavailableError';
  readonly code = 'EUNAVAILABLE';
  constructor(
    readonly piece: number,
    message: string,
  ) {
    super(message);
  }
}

/** No shared file and no download has this infohash. */
export class UnknownContentError extends Error {
  override name = 'UnknownContentError';
  readonly code = 'ENOTFOUND';
}

/** One file of a torrent as a reader sees it: where its bytes sit in the torrent's. */
export interface FileView {
  /** Its name (a multi-file torrent's file: its path inside the torrent's folder). */
  name: string;
  length: number;
  /** Where its first byte is in the torrent's byte stream (0 for a single-file torrent). */
  offset: number;
  pieceLength: number;
}

export interface ReadOptions {
  /** How long to wait for the first piece of the range if it is not verified yet (with `follow`: for each piece). */
  waitMs: number;
  signal?: AbortSignal;
  /**
   * Give every byte up to `end`, never fewer: the stream waits for each missing piece when
   * it reaches it (fetched first, up to `waitMs` each) and fails with ContentUnavailableError
   * when one does not come, instead of ending where the verified run ends. A download that
   * cannot go on (paused, failed) with a piece of the range missing is refused at once.
   */
  follow?: boolean;
}

/** How much a following reader reads at a time. */
const FOLLOW_CHUNK = 256 * 1024;

/** A download's verified pieces, as the reader needs them. */
export interface VerifiedSource {
  readonly view: FileView;
  /** Verified pieces now (full once the download completed). */
  have(): Bitfield;
  /** Where to open the bytes, in order: the .part while it exists, then the finished file. */
  paths(): Array<string | null | undefined>;
  /** Why a missing piece will not come (paused, failed, cancelled), or null while it is being fetched. */
  blocked(): string | null;
  /** Fetch the pieces from `index` on before any other. */
  prioritize(index: number): void;
  /** Call `cb` on every verified piece and change of state; returns the unsubscribe. */
  watch(cb: () => void): () => void;
}

/** A RangeError unless 0 <= start <= end < length, all integers. */
export function checkRange(length: number, start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end >= length)
    throw new RangeError(`range ${start}-${end} is outside the file (0-${length - 1})`);
}

/** The piece holding byte `pos` of the file. */
const pieceOf = (v: FileView, pos: number) => Math.floor((v.offset + pos) / v.pieceLength);

/** Last byte (of the file) of the run of verified pieces that holds `start`, or -1 if start's piece is missing. */
export function verifiedRunEnd(have: Bitfield, v: FileView, start: number): number {
  let i = pieceOf(v, start);
  if (!have.get(i)) return -1;
  while (i + 1 < have.length && have.get(i + 1)) i++;
  return Math.min(v.length, (i + 1) * v.pieceLength - v.offset) - 1;
}

/** Bytes start..end (inclusive) of a complete file on disk, read as the consumer pulls. */
export async function readFileRange(file: string, length: number, start: number, end: number): Promise<Readable> {
  const fh = await fsp.open(file, 'r');
  return streamFrom(fh, file, length, start, end);
}

/**
 * Bytes from `start` of a download, from verified pieces only. Resolves with the stream and
 * the last byte it will give (`end`, or less where the verified run stops).
 */
export async function readVerified(src: VerifiedSource, start: number, end: number, opts: ReadOptions): Promise<{ stream: Readable; end: number }> {
  const v = src.view;
  checkRange(v.length, start, end);
  if (opts.follow) return { stream: await follow(src, start, end, opts), end };
  let last = verifiedRunEnd(src.have(), v, start);
  if (last < 0) {
    await waitForPiece(src, pieceOf(v, start), opts);
    last = verifiedRunEnd(src.have(), v, start);
  }
  const stop = Math.min(end, last);
  const fh = await openFirst(src);
  return { stream: await streamFrom(fh.handle, fh.path, v.length, start, stop), end: stop };
}

/**
 * Every byte start..end of a download, as its pieces are verified. Refused at once (before
 * any byte) when a piece is missing and cannot come; the first piece is awaited before the
 * stream is handed out, so a caller can still answer "not yet" instead of starting a body.
 */
async function follow(src: VerifiedSource, start: number, end: number, opts: ReadOptions): Promise<Readable> {
  const v = src.view;
  const why = src.blocked();
  const missing = firstMissing(src.have(), v, start, end);
  if (why && missing >= 0) throw new ContentUnavailableError(missing, `piece ${missing} of ${v.name} is not downloaded yet and ${why}`);
  const first = pieceOf(v, start);
  if (!src.have().get(first)) await waitForPiece(src, first, opts);
  const { handle, path: file } = await openFirst(src);
  try {
    const { size } = await handle.stat();
    if (size !== v.length) throw new Error(`${file} is ${size} bytes now, its torrent says ${v.length}`);
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
  return Readable.from(followPieces(src, handle, start, end, opts), { objectMode: false });
}

async function* followPieces(src: VerifiedSource, handle: fsp.FileHandle, start: number, end: number, opts: ReadOptions): AsyncGenerator<Buffer> {
  const v = src.view;
  try {
    let pos = start;
    while (pos <= end) {
      const piece = pieceOf(v, pos);
      if (!src.have().get(piece)) await waitForPiece(src, piece, opts);
      const stop = Math.min(end, verifiedRunEnd(src.have(), v, pos));
      // Ask for the piece after this run now, so it is on its way while the run is sent.
      const next = firstMissing(src.have(), v, stop + 1, end);
      if (next >= 0) src.prioritize(next);
      while (pos <= stop) {
        const n = Math.min(FOLLOW_CHUNK, stop - pos + 1);
        const buf = Buffer.allocUnsafe(n);
        const { bytesRead } = await handle.read(buf, 0, n, pos);
        if (bytesRead === 0) throw new Error(`${v.name} ends at ${pos} bytes on disk, its torrent says ${v.length}`);
        pos += bytesRead;
        yield bytesRead === n ? buf : buf.subarray(0, bytesRead);
      }
    }
  } finally {
    await handle.close().catch(() => {});
  }
}

/** The first piece holding a byte of start..end that is not verified, or -1 (also when start > end). */
function firstMissing(have: Bitfield, v: FileView, start: number, end: number): number {
  if (start > end) return -1;
  for (let i = pieceOf(v, start); i <= pieceOf(v, end); i++) if (!have.get(i)) return i;
  return -1;
}

async function streamFrom(fh: fsp.FileHandle, file: string, length: number, start: number, end: number): Promise<Readable> {
  try {
    const { size } = await fh.stat();
    if (size !== length) throw new Error(`${file} is ${size} bytes now, its torrent says ${length}`);
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
  return fh.createReadStream({ start, end, autoClose: true });
}

/** Wait until `piece` is verified; a ContentUnavailableError after `waitMs` or when it cannot come. */
function waitForPiece(src: VerifiedSource, piece: number, opts: ReadOptions): Promise<void> {
  const name = src.view.name;
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unwatch();
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const look = () => {
      if (src.have().get(piece)) return finish();
      const why = src.blocked();
      if (why) finish(new ContentUnavailableError(piece, `piece ${piece} of ${name} is not downloaded yet and ${why}`));
    };
    const onAbort = () => finish(opts.signal?.reason ?? new Error('aborted'));
    const timer = setTimeout(
      () => finish(new ContentUnavailableError(piece, `piece ${piece} of ${name} did not arrive within ${opts.waitMs} ms`)),
      Math.max(0, opts.waitMs),
    );
    const unwatch = src.watch(look);
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    look();
    if (!done) src.prioritize(piece);
  });
}

/**
 * Open the first of the source's paths that exists. While the .part is being renamed the
 * final name may not be known for a moment: look again a few times before giving up.
 */
async function openFirst(src: VerifiedSource): Promise<{ handle: fsp.FileHandle; path: string }> {
  let lastErr: unknown = null;
  for (let attempt = 0; attempt < 40; attempt++) {
    for (const p of src.paths()) {
      if (!p) continue;
      try {
        return { handle: await fsp.open(p, 'r'), path: p };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        lastErr = err;
      }
    }
    if (src.blocked() === 'the download was cancelled') break;
    await sleep(25);
  }
  throw lastErr ?? new Error(`no file to read ${src.view.name} from`);
}
