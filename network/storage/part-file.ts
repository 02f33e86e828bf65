import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Bitfield } from '../wire/bitfield.js';
import { pieceHash, pieceSize, encodeTorrent, type Metainfo } from '../metainfo/metainfo.js';
import type { Logger } from '../util/log.js';
import { writeFileAtomic } from '../util/atomic.js';
import { PieceReader } from './piece-reader.js';
import { BufferPool } from './buffer-pool.js';
import type { PieceWriter } from './stores.js';
import type { UploadMemory } from './upload-memory.js';
import { SelectionError } from '../errors.js';
import { SinglePart } from './single-part.js';
import { localName } from '../util/names.js';
import { PartFolder } from './part-folder.js';
import { filePieces, wantedPieces } from './layout.js';
import { decodeSelection, encodeSelection, pendingDownloads, readRecord, resumePath, type ResumeRecord } from './resume-record.js';

/** Something that hashes pieces off the event loop (the node's HashPool). */
export interface Hasher {
  /** SHA-1 of `buf.subarray(0, size)`; `buf` is unusable until the promise gives it back. */
  lend(buf: Buffer, size: number): Promise<{ digest: Buffer; buf: Buffer }>;
}

export interface PartFileInit {
  metainfo: Metainfo;
  /** Where `<name>.part` and the finished file go. */
  downloadDir: string;
  /** Where resume records live (`<downloads>/.shoal/resume`). */
  resumeDir: string;
  hasher: Hasher;
  logger: Logger;
  /** Resume records are rewritten at most this often while pieces arrive. */
  saveIntervalMs?: number;
  /** Bytes of piece buffers (fetching plus verifying): bounds RSS whatever the file size. */
  bufferBudget?: number;
  /** Aborts the recheck of an open (the node is stopping): open() then closes the file and rejects. */
  signal?: AbortSignal;
  /** The files to fetch of a new multi-file download (torrent order); every file when absent. A resumed one keeps its own. */
  select?: readonly boolean[] | null;
  /** The node's memory for uploads (pieces read to serve them); a private one otherwise. */
  memory?: UploadMemory;
}

/** The .part file or folder of a download: its bytes at torrent offsets, and where they go at the end. */
type PartBytes = SinglePart | PartFolder;

export const DEFAULT_BUFFER_BUDGET = 8 * 1024 * 1024;

export const DEFAULT_SAVE_INTERVAL_MS = 1000;

/**
 * A download's bytes on disk: `downloads/<name>.part` (a file; for a multi-file torrent a
 * folder, storage/part-folder.ts), written at piece offsets, plus a resume record naming the
 * verified pieces and the selected files, replaced atomically. A piece is listed only after
 * its bytes were written, so a kill -9 can lose the latest listings but never list an
 * unwritten piece; on the next open the unlisted wanted pieces are re-hashed from the .part,
 * so verified work survives the crash even between two record saves.
 */
export class PartFile implements PieceWriter {
  readonly have: Bitfield;
  readonly pool: BufferPool;
  readonly reader: PieceReader;
  /** The pieces the selected files need; every piece unless files were left out. */
  wanted: Bitfield;
  private saveTimer: NodeJS.Timeout | null = null;
  private saving: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly init: PartFileInit,
    private readonly bytes: PartBytes,
    have: Bitfield,
  ) {
    this.have = have;
    this.reader = new PieceReader(bytes, init.metainfo, { memory: init.memory });
    this.wanted = wantedPieces(init.metainfo, this.selection());
    const budget = init.bufferBudget ?? DEFAULT_BUFFER_BUDGET;
    this.pool = new BufferPool(init.metainfo.pieceLength, Math.max(4, Math.floor(budget / init.metainfo.pieceLength)));
  }

  /** The .part file or folder. */
  get partPath(): string {
    return this.bytes.partPath;
  }

  static resumePath(resumeDir: string, infohashHex: string): string {
    return resumePath(resumeDir, infohashHex);
  }

  /** The metainfo of every download that has a resume record in `resumeDir`. */
  static pending(resumeDir: string, logger: Logger): Promise<Metainfo[]> {
    return pendingDownloads(resumeDir, logger);
  }

  /** Create a new .part or resume the one a record names. */
  static async open(init: PartFileInit): Promise<{ part: PartFile; resumed: number; rechecked: number }> {
    const m = init.metainfo;
    await fsp.mkdir(init.downloadDir, { recursive: true });
    await fsp.mkdir(init.resumeDir, { recursive: true });
    const rec = await readRecord(resumePath(init.resumeDir, m.infoHashHex), init.logger);
    const usable = rec && rec.infohash === m.infoHashHex && path.basename(rec.part) === rec.part ? rec : null;
    let bytes: PartBytes;
    let fresh: boolean;
    let damaged: number[] = [];
    if (!usable) {
      const local = localName(m.name);
      if (local.why) init.logger.warn({ file: m.name, as: local.name }, `saving under another name: ${local.why}`);
    }
    if (m.multiFile) {
      const selected = usable ? decodeSelection(usable.files, m.files.length) : checkSelection(m, init.select ?? null);
      ({ folder: bytes, fresh, damaged } = await PartFolder.open(init.downloadDir, m, usable?.part ?? null, selected));
    } else ({ bytes, fresh } = await SinglePart.open(init.downloadDir, m, usable?.part ?? null));
    let have = new Bitfield(m.pieceCount);
    if (!fresh && usable) have = Bitfield.fromWire(m.pieceCount, Buffer.from(usable.have, 'base64')) ?? have;
    // A file of the folder that went missing (or changed length) lost its verified pieces.
    for (const f of damaged) {
      const span = filePieces(m, f);
      if (span) for (let i = span.first; i <= span.last; i++) have.clear(i);
    }
    const listed = have.count();
    const part = new PartFile(init, bytes, have);
    let rechecked = 0;
    try {
      if (!fresh) rechecked = await part.recheckUnlisted();
      init.signal?.throwIfAborted();
    } catch (err) {
      // Keep the record as it was (the pieces found so far are found again next time).
      part.closed = true;
      await bytes.close();
      throw err;
    }
    await part.saveNow();
    return { part, resumed: listed + rechecked, rechecked };
  }

  /** Which files are selected (torrent order), or null when every file is (always, for a single file). */
  selection(): boolean[] | null {
    if (!(this.bytes instanceof PartFolder)) return null;
    const sel = this.bytes.selection();
    return this.init.metainfo.files.every((f, i) => sel[i] || f.pad) ? null : sel;
  }

  /** Every wanted piece is verified: the download is complete. */
  done(): boolean {
    for (const i of this.wanted.indices()) if (!this.have.get(i)) return false;
    return true;
  }

  /**
   * Fetch these files from now on (torrent order; null: every file). Verified bytes are kept
   * whatever changes side. SelectionError when it selects nothing or does not fit the torrent.
   */
  async select(selected: readonly boolean[] | null): Promise<void> {
    const m = this.init.metainfo;
    const next = checkSelection(m, selected);
    if (this.closed) throw new SelectionError('the download is closed');
    if (this.bytes instanceof PartFolder) await this.bytes.reselect(next ?? m.files.map(() => true), this.have);
    this.wanted = wantedPieces(m, this.selection());
    await this.saveNow();
  }

  /** Write a verified piece at its offset; the caller marks it with `markVerified` afterwards. */
  async writePiece(index: number, data: Uint8Array): Promise<void> {
    const m = this.init.metainfo;
    await this.bytes.write(data, 0, pieceSize(m, index), index * m.pieceLength);
  }

  markVerified(index: number): void {
    if (this.have.set(index)) this.scheduleSave();
  }

  /** Persist the resume record now (coalesced with one in progress). */
  saveNow(): Promise<void> {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
    }
    const m = this.init.metainfo;
    const files = encodeSelection(this.selection());
    const rec: ResumeRecord = {
      version: 1,
      infohash: m.infoHashHex,
      part: path.basename(this.partPath),
      torrent: encodeTorrent(m).toString('base64'),
      have: Buffer.from(this.have.bytes).toString('base64'),
      ...(files !== undefined && { files }),
      savedAt: Date.now(),
    };
    const file = resumePath(this.init.resumeDir, m.infoHashHex);
    this.saving = this.saving.then(() => writeFileAtomic(file, JSON.stringify(rec))).catch((err: Error) => {
      this.init.logger.error({ err: err.message }, 'could not save resume record');
    });
    return this.saving;
  }

  /** Flush the record and close the file, leaving both for the next start (stop, Ctrl-C). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.saveNow();
    this.closed = true;
    this.reader.close();
    await this.bytes.close();
  }

  /** Cancel: remove the .part and the record. */
  async discard(): Promise<void> {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    await this.saving;
    this.closed = true;
    this.reader.close();
    await this.bytes.discard();
    await fsp.rm(resumePath(this.init.resumeDir, this.init.metainfo.infoHashHex), { force: true });
  }

  /**
   * Every wanted piece is verified: flush, move the .part to its final name (never replacing
   * an existing file or folder: `name (1).ext` and so on), then drop the record. Returns the
   * final path.
   */
  async finish(): Promise<string> {
    if (!this.done()) throw new Error('finish() before every wanted piece is verified');
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    await this.saving;
    this.closed = true;
    this.reader.close();
    const target = await this.bytes.finish();
    await fsp.rm(resumePath(this.init.resumeDir, this.init.metainfo.infoHashHex), { force: true });
    return target;
  }

  private scheduleSave(): void {
    if (this.saveTimer || this.closed) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      void this.saveNow();
    }, this.init.saveIntervalMs ?? DEFAULT_SAVE_INTERVAL_MS);
    this.saveTimer.unref();
  }

  /** Hash the wanted pieces the record does not list; keep the ones that match. */
  private async recheckUnlisted(): Promise<number> {
    const m = this.init.metainfo;
    const todo: number[] = [];
    for (let i = 0; i < m.pieceCount; i++) if (!this.have.get(i) && this.wanted.get(i)) todo.push(i);
    let found = 0;
    const worker = async () => {
      let buf = this.pool.acquire();
      if (!buf) return;
      try {
        for (let i = todo.pop(); i !== undefined && !this.init.signal?.aborted; i = todo.pop()) {
          const size = pieceSize(m, i);
          const { bytesRead } = await this.bytes.read(buf, 0, size, i * m.pieceLength);
          if (bytesRead !== size) continue;
          const res = await this.init.hasher.lend(buf, size);
          buf = res.buf;
          if (res.digest.equals(pieceHash(m, i)) && this.have.set(i)) found++;
        }
      } finally {
        this.pool.release(buf);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    if (found > 0) this.init.logger.info({ name: m.name, pieces: found }, 'recovered verified pieces the resume record had not listed yet');
    return found;
  }
}

/** A selection checked against the torrent: null when it selects every file; SelectionError when it selects nothing. */
export function checkSelection(m: Metainfo, selected: readonly boolean[] | null): boolean[] | null {
  if (!selected) return null;
  if (selected.length !== m.files.length) throw new SelectionError(`a selection of ${selected.length} files for a torrent of ${m.files.length}`);
  const real = m.files.map((f, i) => !f.pad && selected[i] === true);
  if (!real.some(Boolean)) throw new SelectionError('select at least one file');
  return m.files.every((f, i) => real[i] || f.pad) ? null : real;
}
