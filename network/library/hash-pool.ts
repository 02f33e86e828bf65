/**
 * A small pool of worker threads that compute SHA-1: whole files for the library, and
 * single pieces for the swarm (the download hot path). Every task goes to the least
 * busy worker; a worker runs at most one file at a time and at most
 * SHA1_PIPELINE piece digests, so it always has the next piece queued while it hashes
 * one, and piece digests are never stuck behind a long file.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './hash-worker.js';
import { ClosedError } from '../util/errors.js';

export interface HashPoolInit {
  /** Worker threads; default DEFAULT_HASH_WORKERS. */
  workers?: number;
}

export interface HashPoolStats {
  /** Files fully hashed by hashFile(). */
  filesHashed: number;
  /** Bytes hashed, by hashFile() and sha1() together. */
  bytesHashed: number;
  /** Pieces hashed: the pieces of hashed files plus one per sha1() call. */
  piecesHashed: number;
}

/** Leave one core to the event loop, and more than four hashers rarely helps a disk. */
export const DEFAULT_HASH_WORKERS = Math.max(1, Math.min(4, os.availableParallelism() - 1));
/** Piece digests in flight per worker: deep enough that a busy main thread answering late never leaves the worker idle. */
const SHA1_PIPELINE = 32;


export class AbortError extends Error {
  override name = 'AbortError';
  readonly code = 'ABORT_ERR';
}

interface Task {
  id: number;
  kind: 'sha1' | 'file';
  request: WorkerRequest;
  /** Bytes of a sha1 task (its copy is detached once transferred). */
  bytes: number;
  transfer: ArrayBuffer[];
  resolve: (value: Buffer) => void;
  reject: (err: Error) => void;
  slot: Slot | null;
  /** Receives a lent buffer back from the worker. */
  returned?: (buf: Buffer) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
}

/** One worker thread and what it is doing. */
interface Slot {
  worker: Worker;
  tasks: Map<number, Task>;
  hashes: number;
  files: number;
  /** A file task that was aborted and has not answered yet still holds the file slot. */
  abandoned: Set<number>;
}

const WORKER_URL = new URL('./hash-worker.js', import.meta.url);

export class HashPool {
  readonly stats: HashPoolStats = { filesHashed: 0, bytesHashed: 0, piecesHashed: 0 };
  private readonly size: number;
  private readonly slots: Slot[] = [];
  // Two FIFO queues so a waiting file never delays a waiting piece (and vice versa).
  private readonly queued = { sha1: [] as Task[], file: [] as Task[] };
  private nextId = 1;
  private closing: Promise<void> | null = null;

  constructor(init: HashPoolInit = {}) {
    const n = init.workers ?? DEFAULT_HASH_WORKERS;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`workers must be a positive integer, got ${n}`);
    this.size = n;
  }

  /**
   * Hash a file piece by piece inside a worker: it reads into one reused buffer, so
   * memory does not grow with the file. Resolves to the concatenated 20-byte SHA-1 of
   * each piece (empty for an empty file). Symlinks are not followed.
   */
  hashFile(path: string, pieceLength: number, signal?: AbortSignal): Promise<Buffer> {
    if (!Number.isSafeInteger(pieceLength) || pieceLength < 1) return Promise.reject(new RangeError(`bad piece length ${pieceLength}`));
    if (signal?.aborted) return Promise.reject(new AbortError('hashing aborted', { cause: signal.reason }));
    const id = this.nextId++;
    return this.submit('file', { id, file: path, pieceLength }, [], signal);
  }

  /**
   * Hash `files` end to end as one byte stream, pieces crossing from one file into the next
   * (a multi-file torrent's pieces), in a worker as hashFile does. Symlinks are not followed.
   */
  hashFiles(files: string[], pieceLength: number, signal?: AbortSignal): Promise<Buffer> {
    if (!Number.isSafeInteger(pieceLength) || pieceLength < 1) return Promise.reject(new RangeError(`bad piece length ${pieceLength}`));
    if (signal?.aborted) return Promise.reject(new AbortError('hashing aborted', { cause: signal.reason }));
    const id = this.nextId++;
    return this.submit('file', { id, files, pieceLength }, [], signal);
  }

  /**
   * SHA-1 of `data`. A view on a SharedArrayBuffer is handed to the worker as is (no
   * copy); other bytes are copied once into a buffer that is transferred, not cloned.
   */
  sha1(data: Uint8Array): Promise<Buffer> {
    const id = this.nextId++;
    if (data.buffer instanceof SharedArrayBuffer) return this.submit('sha1', { id, data }, [], undefined);
    const copy = new Uint8Array(data.byteLength);
    copy.set(data);
    return this.submit('sha1', { id, data: copy }, [copy.buffer], undefined);
  }

  /**
   * SHA-1 of `buf.subarray(0, size)`, lending `buf` to the worker: its memory is
   * transferred there and back (no copy, and no shared memory, whose copies V8 makes
   * slow), so `buf` is detached until this resolves with it. `buf` must own its
   * ArrayBuffer (Buffer.allocUnsafeSlow). If the worker dies the buffer is lost: the
   * promise rejects and the caller allocates a new one.
   */
  lend(buf: Buffer, size: number): Promise<{ digest: Buffer; buf: Buffer }> {
    const id = this.nextId++;
    let back: Buffer | null = null;
    const view = new Uint8Array(buf.buffer, buf.byteOffset, size);
    return this.submit('sha1', { id, data: view, lent: true }, [buf.buffer as ArrayBuffer], undefined, (b) => (back = b)).then((digest) => {
      if (!back) throw new Error('hash worker did not return a lent buffer');
      return { digest, buf: Buffer.from(back.buffer, 0, back.buffer.byteLength) };
    });
  }

  /** Reject every pending task with a ClosedError and stop the workers. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const err = () => new ClosedError('hash pool closed');
      for (const q of [this.queued.sha1, this.queued.file]) for (const t of q.splice(0)) this.settle(t, err());
      const slots = this.slots.splice(0);
      for (const s of slots) for (const t of s.tasks.values()) this.settle(t, err());
      await Promise.allSettled(slots.map((s) => s.worker.terminate()));
    })();
    return this.closing;
  }

  private submit(kind: Task['kind'], request: WorkerRequest, transfer: ArrayBuffer[], signal: AbortSignal | undefined, returned?: (b: Buffer) => void): Promise<Buffer> {
    if (this.closing) return Promise.reject(new ClosedError('hash pool closed'));
    return new Promise<Buffer>((resolve, reject) => {
      const bytes = 'data' in request ? request.data.byteLength : 0;
      const task: Task = { id: (request as { id: number }).id, kind, request, bytes, transfer, resolve, reject, slot: null, returned, signal, onAbort: null };
      if (signal) {
        task.onAbort = () => this.abort(task);
        signal.addEventListener('abort', task.onAbort, { once: true });
      }
      const slot = this.pick(kind);
      if (slot) this.dispatch(slot, task);
      else this.queued[kind].push(task);
    });
  }

  /** The least busy worker that can take a task of this kind, starting one if the pool is not full. */
  private pick(kind: Task['kind']): Slot | null {
    let best: Slot | null = null;
    for (const s of this.slots) {
      if (kind === 'sha1' ? s.hashes >= SHA1_PIPELINE : s.files + s.abandoned.size > 0) continue;
      if (!best || s.hashes + s.files < best.hashes + best.files) best = s;
    }
    // Workers start lazily: an idle node that never hashes costs no threads.
    if ((!best || best.hashes + best.files > 0) && this.slots.length < this.size) best = this.spawn();
    return best;
  }

  private dispatch(slot: Slot, task: Task): void {
    task.slot = slot;
    slot.tasks.set(task.id, task);
    if (task.kind === 'sha1') slot.hashes++;
    else slot.files++;
    // A busy worker keeps the process alive (a caller may be awaiting it); an idle one must not.
    if (slot.tasks.size + slot.abandoned.size === 1) slot.worker.ref();
    slot.worker.postMessage(task.request, task.transfer);
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_URL);
    const slot: Slot = { worker, tasks: new Map(), hashes: 0, files: 0, abandoned: new Set() };
    worker.unref();
    worker.on('message', (msg: WorkerReply) => this.onReply(slot, msg));
    // 'error' (an uncaught exception in the worker) is always followed by 'exit'.
    let why = 'exited';
    worker.on('error', (err) => (why = err.message));
    worker.on('exit', (code) => this.onExit(slot, `hash worker ${why} (exit code ${code})`));
    this.slots.push(slot);
    return slot;
  }

  private onReply(slot: Slot, msg: WorkerReply): void {
    if (slot.abandoned.delete(msg.id)) {
      this.release(slot);
      return this.pump();
    }
    const task = slot.tasks.get(msg.id);
    if (!task) return;
    slot.tasks.delete(msg.id);
    if (task.kind === 'sha1') slot.hashes--;
    else slot.files--;
    this.release(slot);
    if ('error' in msg) {
      const err = msg.code === 'ABORT_ERR' ? new AbortError(msg.error) : Object.assign(new Error(msg.error), msg.code ? { code: msg.code } : {});
      this.settle(task, err);
    } else if ('digest' in msg) {
      this.stats.piecesHashed++;
      this.stats.bytesHashed += task.bytes;
      if (msg.lent) task.returned?.(Buffer.from(msg.lent.buffer, msg.lent.byteOffset, msg.lent.byteLength));
      this.settle(task, null, Buffer.from(msg.digest.buffer, msg.digest.byteOffset, msg.digest.byteLength));
    } else {
      this.stats.filesHashed++;
      this.stats.piecesHashed += msg.pieces.byteLength / 20;
      this.stats.bytesHashed += msg.bytes;
      this.settle(task, null, Buffer.from(msg.pieces.buffer, msg.pieces.byteOffset, msg.pieces.byteLength));
    }
    this.pump();
  }

  /** A worker died: fail what it was doing and put a fresh one in its place (lazily). */
  private onExit(slot: Slot, why: string): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return; // closed
    this.slots.splice(i, 1);
    for (const t of slot.tasks.values()) this.settle(t, new Error(why));
    this.pump();
  }

  private release(slot: Slot): void {
    if (slot.tasks.size + slot.abandoned.size === 0) slot.worker.unref();
  }

  /** Hand queued tasks to workers that have room. */
  private pump(): void {
    for (const kind of ['sha1', 'file'] as const) {
      const q = this.queued[kind];
      while (q.length > 0) {
        const slot = this.pick(kind);
        if (!slot) break;
        this.dispatch(slot, q.shift()!);
      }
    }
  }

  private abort(task: Task): void {
    const err = new AbortError('hashing aborted', { cause: task.signal?.reason });
    const slot = task.slot;
    if (!slot) {
      const q = this.queued[task.kind];
      const i = q.indexOf(task);
      if (i >= 0) q.splice(i, 1);
      return this.settle(task, err);
    }
    if (!slot.tasks.delete(task.id)) return;
    // Answer now; the worker stops at its next read and keeps its file slot until it says so.
    slot.files--;
    slot.abandoned.add(task.id);
    slot.worker.postMessage({ abort: task.id } satisfies WorkerRequest);
    this.settle(task, err);
  }

  private settle(task: Task, err: Error | null, value?: Buffer): void {
    if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
    task.onAbort = null;
    if (err) task.reject(err);
    else task.resolve(value!);
  }
}
