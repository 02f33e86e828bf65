/**
 * One node per folder. Two nodes started on one download folder (a `web` and a `node-cli`
 * in the same checkout) would both write the same `.part` and resume records; so a node
 * takes a lock on its download folder and on its state folder at start, and a second one is
 * refused with FolderLockedError, which names the holder.
 *
 * The lock is a file, `.shoal.lock`, holding the holder's pid, port, host name and start
 * time. It is taken atomically: the content is written to a temporary file first, then
 * hard-linked to the lock's name, which fails if the name exists, so nobody ever reads half
 * a lock (where the file system has no hard links, an exclusive create stands in). The
 * holder refreshes the file's time every REFRESH_MS while it runs, and deletes it at stop.
 *
 * A lock left by a node that did not stop (kill -9, a crash, a power cut) is stale and taken
 * over, with a warning: on this host when its pid no longer runs (or is our own pid: a
 * restarted container often runs as pid 1 again), on any host when it has not been
 * refreshed for STALE_AFTER_MS (a pid says nothing about another machine sharing the folder).
 */
import os from 'node:os';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../util/log.js';
import { FolderLockedError, type LockHolder } from '../errors.js';

export const LOCK_FILE = '.shoal.lock';
/** How often a holder touches its lock. */
export const REFRESH_MS = 30_000;
/** A lock untouched this long is stale whoever holds it: ten refreshes missed. */
export const STALE_AFTER_MS = 10 * REFRESH_MS;
/** A lock whose content cannot be read yet is being written, unless it is older than this. */
const UNREADABLE_GRACE_MS = 10_000;

/** Locks this process holds, by file: one process may run two nodes, on different folders only. */
const heldHere = new Set<string>();

/** What a lock file says and how old it is, as the staleness rule sees it. */
export interface LockState {
  holder: LockHolder | null;
  /** Since the file was last written or refreshed (ms). */
  ageMs: number;
}

/**
 * Whether a lock may be taken over (pure, but for `running`): see the top of this file.
 * `self` is this process; `running(pid)` says whether a pid runs on this host.
 */
export function isStale(lock: LockState, self: { pid: number; host: string; holds: boolean }, running: (pid: number) => boolean): boolean {
  const { holder, ageMs } = lock;
  if (holder === null) return ageMs > UNREADABLE_GRACE_MS;
  if (ageMs > STALE_AFTER_MS) return true;
  if (holder.host !== self.host) return false;
  if (holder.pid === self.pid) return !self.holds;
  return !running(holder.pid);
}

export class FolderLock {
  private timer: NodeJS.Timeout | null = null;
  private released = false;

  private constructor(
    readonly file: string,
    private holder: LockHolder,
    private readonly log: Logger,
  ) {
    heldHere.add(file);
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  /** Lock `folder` (made if missing) for a node on `port`; FolderLockedError when another node holds it. */
  static async acquire(folder: string, port: number, log: Logger): Promise<FolderLock> {
    await fsp.mkdir(folder, { recursive: true });
    const file = path.join(folder, LOCK_FILE);
    const holder: LockHolder = { pid: process.pid, port, host: os.hostname(), startedAt: Date.now() };
    const tmp = path.join(folder, `${LOCK_FILE}.${process.pid}-${randomBytes(4).toString('hex')}`);
    await fsp.writeFile(tmp, JSON.stringify(holder));
    try {
      // A few rounds: a stale lock removed here may be taken by another starter first.
      for (let round = 0; round < 3; round++) {
        if (await place(tmp, file)) return new FolderLock(file, holder, log);
        const found = await readLock(file);
        if (found === null) continue; // gone meanwhile: try again
        if (!isStale(found, { pid: process.pid, host: holder.host, holds: heldHere.has(file) }, running)) throw new FolderLockedError(folder, file, found.holder);
        const was = found.holder;
        log.warn(
          { folder, lock: file, ...(was && { pid: was.pid, port: was.port, host: was.host, since: new Date(was.startedAt).toISOString() }) },
          `taking over a stale lock on ${folder}: ${was ? `the node that held it (pid ${was.pid}, port ${was.port}) is no longer running` : 'it could not be read'}`,
        );
        await removeIfUnchanged(file, found);
      }
      throw new FolderLockedError(folder, file, (await readLock(file))?.holder ?? null);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  /** Say which port we ended up on (the lock is taken before the port is bound). */
  async setPort(port: number): Promise<void> {
    if (this.released || port === this.holder.port) return;
    const next = { ...this.holder, port };
    const tmp = `${this.file}.${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await fsp.writeFile(tmp, JSON.stringify(next));
      await fsp.rename(tmp, this.file);
      this.holder = next;
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      this.log.warn({ lock: this.file, err: (err as Error).message }, 'could not record the port in the folder lock');
    }
  }

  /** Delete the lock, if it is still ours. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    heldHere.delete(this.file);
    const found = await readLock(this.file);
    if (found?.holder && sameHolder(found.holder, this.holder)) await fsp.rm(this.file, { force: true });
  }

  private async refresh(): Promise<void> {
    const found = await readLock(this.file);
    if (!found?.holder || !sameHolder(found.holder, this.holder)) {
      // Another node took it over (we were suspended past STALE_AFTER_MS, or someone deleted it).
      this.log.error({ lock: this.file, holder: found?.holder }, `lost the lock on ${path.dirname(this.file)}: another node may now write there too`);
      if (this.timer) clearInterval(this.timer);
      return;
    }
    const now = new Date();
    await fsp.utimes(this.file, now, now).catch(() => {});
  }
}

/** Link our ready-made lock to its name; false when the name is taken. */
async function place(tmp: string, file: string): Promise<boolean> {
  try {
    await fsp.link(tmp, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  }
  // No hard links on this file system: an exclusive create (a reader may briefly see it empty).
  try {
    await fsp.writeFile(file, await fsp.readFile(tmp), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** The lock's holder (null when unreadable) and age; null when there is no lock file. */
async function readLock(file: string): Promise<(LockState & { raw: string }) | null> {
  let raw: string;
  let mtimeMs: number;
  try {
    [raw, { mtimeMs }] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.stat(file)]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return { holder: parseHolder(raw), ageMs: Math.max(0, Date.now() - mtimeMs), raw };
}

function parseHolder(raw: string): LockHolder | null {
  try {
    const j = JSON.parse(raw) as Partial<LockHolder>;
    const ok = Number.isInteger(j.pid) && Number.isInteger(j.port) && typeof j.host === 'string' && Number.isFinite(j.startedAt);
    return ok ? { pid: j.pid!, port: j.port!, host: j.host!, startedAt: j.startedAt! } : null;
  } catch {
    return null;
  }
}

/**
 * Remove a stale lock, unless it changed since we read it (another starter took it over
 * first). The check and the removal are two steps: the window between them is a few
 * microseconds, against starters racing over a lock that was already stale.
 */
async function removeIfUnchanged(file: string, seen: { raw: string }): Promise<void> {
  const now = await fsp.readFile(file, 'utf8').catch(() => null);
  if (now === seen.raw) await fsp.rm(file, { force: true });
}

function sameHolder(a: LockHolder, b: LockHolder): boolean {
  return a.pid === b.pid && a.host === b.host && a.startedAt === b.startedAt;
}

/** Whether `pid` runs on this host (EPERM: it runs, as another user). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The locks of one node: its download folder and its state folder (one lock when they are the same). */
export class FolderLocks {
  private constructor(private readonly locks: FolderLock[]) {}

  /** Lock every folder, or none: on a refusal the ones taken are released again. */
  static async take(folders: string[], port: number, log: Logger): Promise<FolderLocks> {
    const taken: FolderLock[] = [];
    try {
      for (const folder of new Set(folders.map((f) => path.resolve(f)))) taken.push(await FolderLock.acquire(folder, port, log));
    } catch (err) {
      await Promise.all(taken.map((l) => l.release()));
      throw err;
    }
    return new FolderLocks(taken);
  }

  async setPort(port: number): Promise<void> {
    await Promise.all(this.locks.map((l) => l.setPort(port)));
  }

  async release(): Promise<void> {
    await Promise.all(this.locks.map((l) => l.release()));
  }
}
