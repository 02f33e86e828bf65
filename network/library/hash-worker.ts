/**
 * The hash worker: SHA-1 off the main thread. It runs inside a worker_thread started
 * by HashPool and speaks a tiny message protocol with it (types below; the pool
 * imports them as types only, so nothing of this module runs on the main thread).
 *
 * A `sha1` request is answered synchronously; a `file` request is a loop of awaited
 * reads, so `sha1` and `abort` messages are served between two reads of a file.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants, promises as fsp } from 'node:fs';
import { parentPort } from 'node:worker_threads';

/** Main thread → worker. */
export type WorkerRequest =
  | { id: number; data: Uint8Array; lent?: boolean }
  | { id: number; file: string; pieceLength: number }
  /** Several files as one byte stream, pieces crossing from one into the next (a multi-file torrent). */
  | { id: number; files: string[]; pieceLength: number }
  | { abort: number };

/** Worker → main thread. */
export type WorkerReply =
  | { id: number; digest: Uint8Array; lent?: Uint8Array }
  | { id: number; pieces: Uint8Array; bytes: number }
  | { id: number; error: string; code?: string };

/** Bytes per read: large reads amortise the syscalls whatever the piece length. */
const READ_SIZE = 1024 * 1024;

/**
 * Never follow a symlink, and never block opening something that is not a regular
 * file (a FIFO would wait for a writer forever). Both flags are 0 where unsupported.
 */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** Reused by every file this worker hashes: memory stays at READ_SIZE whatever the file size. */
let readBuffer: Buffer | null = null;
/** Files being hashed, and those of them the pool asked to abort. */
const running = new Set<number>();
const aborted = new Set<number>();

/** Hash `files` end to end as one byte stream (one file for a single-file torrent). */
async function hashFiles(id: number, files: string[], pieceLength: number): Promise<WorkerReply> {
  running.add(id);
  try {
    readBuffer ??= Buffer.allocUnsafe(READ_SIZE);
    const buf = readBuffer;
    const digests: Buffer[] = [];
    let hash: Hash = createHash('sha1');
    let inPiece = 0;
    let total = 0;
    for (const file of files) {
      const fh = await fsp.open(file, OPEN_FLAGS);
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw Object.assign(new Error(`not a regular file: ${file}`), { code: 'ENOTFILE' });
        for (let position = 0; ; ) {
          if (aborted.delete(id)) return { id, error: 'hashing aborted', code: 'ABORT_ERR' };
          const { bytesRead } = await fh.read(buf, 0, buf.length, position);
          // Read until EOF rather than up to the size at open: the caller compares the
          // file's size before and after, and rehashes when it changed.
          if (bytesRead === 0) break;
          position += bytesRead;
          total += bytesRead;
          for (let off = 0; off < bytesRead; ) {
            const n = Math.min(bytesRead - off, pieceLength - inPiece);
            hash.update(buf.subarray(off, off + n));
            off += n;
            inPiece += n;
            if (inPiece === pieceLength) {
              digests.push(hash.digest());
              hash = createHash('sha1');
              inPiece = 0;
            }
          }
        }
      } finally {
        await fh.close();
      }
    }
    if (inPiece > 0) digests.push(hash.digest());
    // A fresh, exactly sized array whose buffer can be transferred (Buffer.concat may
    // hand back a slice of Node's shared pool).
    const pieces = new Uint8Array(digests.length * 20);
    digests.forEach((d, i) => pieces.set(d, i * 20));
    return { id, pieces, bytes: total };
  } finally {
    running.delete(id);
    aborted.delete(id);
  }
}

function fail(id: number, err: unknown): WorkerReply {
  const e = err as NodeJS.ErrnoException;
  return { id, error: e?.message ?? String(err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) };
}

function reply(msg: WorkerReply): void {
  if ('pieces' in msg) parentPort!.postMessage(msg, [msg.pieces.buffer as ArrayBuffer]);
  else if ('lent' in msg && msg.lent) parentPort!.postMessage(msg, [msg.lent.buffer as ArrayBuffer]);
  else parentPort!.postMessage(msg);
}

if (parentPort) {
  parentPort.on('message', (msg: WorkerRequest) => {
    if ('abort' in msg) {
      if (running.has(msg.abort)) aborted.add(msg.abort);
    } else if ('data' in msg) {
      try {
        const d = createHash('sha1').update(msg.data).digest();
        // Copy the 20 bytes out: posting `d` would clone whatever pool slab it sits in.
        // A lent buffer goes back to its owner with the digest (transferred, not copied).
        reply({ id: msg.id, digest: new Uint8Array(d), ...(msg.lent ? { lent: msg.data } : {}) });
      } catch (err) {
        reply(fail(msg.id, err));
      }
    } else {
      hashFiles(msg.id, 'files' in msg ? msg.files : [msg.file], msg.pieceLength).then(reply, (err: unknown) => reply(fail(msg.id, err)));
    }
  });
}
