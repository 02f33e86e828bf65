import { promises as fsp, type promises } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { Bitfield } from '../wire/bitfield.js';
import { pieceHash, pieceSize, parseTorrent, encodeTorrent, type Metainfo } from '../metainfo/metainfo.js';
import type { Logger } from '../util/log.js';
import { writeFileAtomic } from '../util/atomic.js';
import { PieceReader } from './piece-reader.js';
import { BufferPool } from './buffer-pool.js';
import type { UploadMemory } from './upload-memory.js';
import { candidateName, exists, renameNoClobber, type PieceWriter } from './stores.js';

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
  /** The node's memory for uploads (pieces read to serve them); a private one otherwise. */
  memory?: UploadMemory;
}

export const DEFAULT_BUFFER_BUDGET = 8 * 1024 * 1024;

const ResumeRecord = z.object({
  version: z.literal(1),
  infohash: z.string().regex(/^[0-9a-f]{40}$/),
  part: z.string(),
  torrent: z.string(),
  have: z.string(),
  savedAt: z.number(),
});
type ResumeRecord = z.infer<typeof ResumeRecord>;

export const DEFAULT_SAVE_INTERVAL_MS = 1000;

/**
 * A download's bytes on disk: `downloads/<name>.part`, written at piece offsets, plus a
 * resume record naming the verified pieces, replaced atomically. A piece is listed only
 * after its bytes were written, so a kill -9 can lose the latest listings but never list
 * an unwritten piece; on the next open the unlisted pieces are re-hashed from the .part,
 * so verified work survives the crash even between two record saves.
 */
export class PartFile implements PieceWriter {
  readonly have: Bitfield;
  readonly pool: BufferPool;
  readonly reader: PieceReader;
  private saveTimer: NodeJS.Timeout | null = null;
  private saving: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly init: PartFileInit,
    private fd: promises.FileHandle,
    readonly partPath: string,
    have: Bitfield,
  ) {
    this.have = have;
    this.reader = new PieceReader(fd, init.metainfo, { memory: init.memory });
    const budget = init.bufferBudget ?? DEFAULT_BUFFER_BUDGET;
    this.pool = new BufferPool(init.metainfo.pieceLength, Math.max(4, Math.floor(budget / init.metainfo.pieceLength)));
  }

  static resumePath(resumeDir: string, infohashHex: string): string {
    return path.join(resumeDir, `${infohashHex}.json`);
  }

  /** The metainfo of every download that has a resume record in `resumeDir`. */
  static async pending(resumeDir: string, logger: Logger): Promise<Metainfo[]> {
    let names: string[];
    try {
      names = await fsp.readdir(resumeDir);
    } catch {
      return [];
    }
    const out: Metainfo[] = [];
    for (const n of names.filter((x) => /^[0-9a-f]{40}\.json$/.test(x))) {
      const rec = await readRecord(path.join(resumeDir, n), logger);
      if (!rec) continue;
      try {
        const m = parseTorrent(Buffer.from(rec.torrent, 'base64'));
        if (m.infoHashHex === rec.infohash) out.push(m);
        else logger.warn({ file: n }, 'ignoring a resume record whose torrent does not match its infohash');
      } catch (err) {
        logger.warn({ file: n, err: (err as Error).message }, 'ignoring a resume record with a damaged torrent');
      }
    }
    return out;
  }

  /** Create a new .part or resume the one a record names. */
  static async open(init: PartFileInit): Promise<{ part: PartFile; resumed: number; rechecked: number }> {
    const m = init.metainfo;
    await fsp.mkdir(init.downloadDir, { recursive: true });
    await fsp.mkdir(init.resumeDir, { recursive: true });
    const rec = await readRecord(PartFile.resumePath(init.resumeDir, m.infoHashHex), init.logger);
    let partPath: string | null = null;
    let have = new Bitfield(m.pieceCount);
    let listed = 0;
    if (rec && rec.infohash === m.infoHashHex && path.basename(rec.part) === rec.part) {
      const candidate = path.join(init.downloadDir, rec.part);
      if (await exists(candidate)) {
        partPath = candidate;
        const bits = Bitfield.fromWire(m.pieceCount, Buffer.from(rec.have, 'base64'));
        if (bits) have = bits;
        listed = have.count();
      }
    }
    let fresh = false;
    if (!partPath) {
      partPath = await freePartPath(init.downloadDir, m);
      fresh = true;
    }
    const fd = await fsp.open(partPath, fresh ? 'w+' : 'r+');
    const { size } = await fd.stat();
    if (size !== m.length) await fd.truncate(m.length); // sparse: holes cost nothing
    const part = new PartFile(init, fd, partPath, have);
    let rechecked = 0;
    try {
      if (!fresh) rechecked = await part.recheckUnlisted();
      init.signal?.throwIfAborted();
    } catch (err) {
      // Keep the record as it was (the pieces found so far are found again next time).
      part.closed = true;
      await fd.close().catch(() => {});
      throw err;
    }
    await part.saveNow();
    return { part, resumed: listed + rechecked, rechecked };
  }

  /** Write a verified piece at its offset; the caller marks it with `markVerified` afterwards. */
  async writePiece(index: number, data: Uint8Array): Promise<void> {
    const size = pieceSize(this.init.metainfo, index);
    let done = 0;
    while (done < size) {
      const { bytesWritten } = await this.fd.write(data, done, size - done, index * this.init.metainfo.pieceLength + done);
      done += bytesWritten;
    }
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
    const rec: ResumeRecord = {
      version: 1,
      infohash: m.infoHashHex,
      part: path.basename(this.partPath),
      torrent: encodeTorrent(m).toString('base64'),
      have: Buffer.from(this.have.bytes).toString('base64'),
      savedAt: Date.now(),
    };
    const file = PartFile.resumePath(this.init.resumeDir, m.infoHashHex);
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
    await this.fd.close().catch(() => {});
  }

  /** Cancel: remove the .part and the record. */
  async discard(): Promise<void> {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    await this.saving;
    this.closed = true;
    this.reader.close();
    await this.fd.close().catch(() => {});
    await fsp.rm(this.partPath, { force: true });
    await fsp.rm(PartFile.resumePath(this.init.resumeDir, this.init.metainfo.infoHashHex), { force: true });
  }

  /**
   * Every piece is verified: flush, move the .part to its final name (never replacing an
   * existing file: `name (1).ext` and so on), then drop the record. Returns the final path.
   */
  async finish(): Promise<string> {
    if (!this.have.complete()) throw new Error('finish() before every piece is verified');
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    await this.saving;
    this.closed = true;
    this.reader.close();
    await this.fd.close();
    const name = this.init.metainfo.name;
    for (let n = 0; n < 1000; n++) {
      const target = path.join(this.init.downloadDir, candidateName(name, n));
      if (await renameNoClobber(this.partPath, target)) {
        await fsp.rm(PartFile.resumePath(this.init.resumeDir, this.init.metainfo.infoHashHex), { force: true });
        return target;
      }
    }
    throw new Error(`no free name for ${name} in ${this.init.downloadDir}`);
  }

  private scheduleSave(): void {
    if (this.saveTimer || this.closed) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      void this.saveNow();
    }, this.init.saveIntervalMs ?? DEFAULT_SAVE_INTERVAL_MS);
    this.saveTimer.unref();
  }

  /** Hash the pieces the record does not list; keep the ones that match. */
  private async recheckUnlisted(): Promise<number> {
    const m = this.init.metainfo;
    const todo: number[] = [];
    for (let i = 0; i < m.pieceCount; i++) if (!this.have.get(i)) todo.push(i);
    let found = 0;
    const worker = async () => {
      let buf = this.pool.acquire();
      if (!buf) return;
      try {
        for (let i = todo.pop(); i !== undefined && !this.init.signal?.aborted; i = todo.pop()) {
          const size = pieceSize(m, i);
          const { bytesRead } = await this.fd.read(buf, 0, size, i * m.pieceLength);
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

async function readRecord(file: string, logger: Logger): Promise<ResumeRecord | null> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return null;
  }
  try {
    return ResumeRecord.parse(JSON.parse(text));
  } catch (err) {
    logger.warn({ file, err: (err as Error).message }, 'ignoring a damaged resume record');
    return null;
  }
}

/** `<name>.part`, unless another download already uses that name. */
async function freePartPath(dir: string, m: Metainfo): Promise<string> {
  const plain = path.join(dir, `${m.name}.part`);
  if (!(await exists(plain))) return plain;
  return path.join(dir, `${m.name}.${m.infoHashHex.slice(0, 8)}.part`);
}
