/**
 * FolderLock: one node per download or state folder, on real files in a temp folder. Two
 * processes are test/e2e/folder-lock.test.ts; here the staleness rule as a table, and the
 * lock's life in one process.
 */
import { expect } from 'chai';
import os from 'node:os';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { FolderLock, FolderLocks, isStale, LOCK_FILE, STALE_AFTER_MS, type LockState } from '../../network/storage/folder-lock.js';
import { FolderLockedError, type LockHolder } from '../../network/errors.js';
import { captureLog, cleanup, rejection, tempDir } from '../helpers.js';

const HOST = 'here';
const self = { pid: 100, host: HOST, holds: false };
const holder = (h: Partial<LockHolder> = {}): LockHolder => ({ pid: 200, port: 9000, host: HOST, startedAt: 1, ...h });
const runs = (...pids: number[]) => (pid: number) => pids.includes(pid);

describe('FolderLock', function () {
  describe('isStale: when a lock may be taken over', function () {
    const table: Array<[string, LockState, typeof self, (pid: number) => boolean, boolean]> = [
      ['its pid runs here', { holder: holder(), ageMs: 1000 }, self, runs(200), false],
      ['its pid no longer runs here', { holder: holder(), ageMs: 1000 }, self, runs(), true],
      ['our own pid, a lock we do not hold (a restarted container, pid 1 again)', { holder: holder({ pid: 100 }), ageMs: 1000 }, self, runs(100), true],
      ['our own pid, a lock we hold (a second node in this process)', { holder: holder({ pid: 100 }), ageMs: 1000 }, { ...self, holds: true }, runs(100), false],
      ['another host, refreshed lately: its pid says nothing here', { holder: holder({ host: 'there' }), ageMs: 1000 }, self, runs(), false],
      ['another host, not refreshed for too long', { holder: holder({ host: 'there' }), ageMs: STALE_AFTER_MS + 1 }, self, runs(), true],
      ['a running pid that has not refreshed for too long (the pid was reused)', { holder: holder(), ageMs: STALE_AFTER_MS + 1 }, self, runs(200), true],
      ['unreadable and fresh: being written', { holder: null, ageMs: 1000 }, self, runs(), false],
      ['unreadable and old', { holder: null, ageMs: 60_000 }, self, runs(), true],
    ];
    for (const [what, lock, me, running, stale] of table) it(`${what}: ${stale ? 'stale' : 'held'}`, () => expect(isStale(lock, me, running)).to.equal(stale));
  });

  describe('on real files', function () {
    let dir = '';
    beforeEach(async () => {
      dir = await tempDir('shoal-lock-');
    });
    afterEach(async () => {
      await cleanup(dir);
    });

    it('a second lock on a folder is refused, naming the holder; released, it can be taken again; no temporary file is left', async () => {
      const log = captureLog();
      const first = await FolderLock.acquire(dir, 9000, log.logger);
      await first.setPort(9123);
      const err = await rejection(FolderLock.acquire(dir, 9001, log.logger));
      expect(err).to.be.instanceOf(FolderLockedError);
      const locked = err as FolderLockedError;
      expect(locked.folder).to.equal(dir);
      expect(locked.holder).to.include({ pid: process.pid, port: 9123, host: os.hostname() });
      expect(locked.message).to.contain(`pid ${process.pid}, port 9123`);
      await first.release();
      expect(await fsp.readdir(dir), 'the lock is gone with its holder').to.deep.equal([]);
      const again = await FolderLock.acquire(dir, 9001, log.logger);
      expect(await fsp.readdir(dir)).to.deep.equal([LOCK_FILE]);
      await again.release();
      expect(log.warnings()).to.deep.equal([]);
    });

    it('a lock left by a pid that no longer runs is taken over, with a warning', async () => {
      const dead = 2 ** 22 + 12345; // above Linux's pid_max: never a running process
      await fsp.writeFile(path.join(dir, LOCK_FILE), JSON.stringify(holder({ pid: dead, host: os.hostname(), port: 9555 })));
      const log = captureLog();
      const lock = await FolderLock.acquire(dir, 9000, log.logger);
      expect(log.warnings().join('\n')).to.match(new RegExp(`taking over a stale lock on .*pid ${dead}, port 9555\\) is no longer running`));
      expect(JSON.parse(await fsp.readFile(path.join(dir, LOCK_FILE), 'utf8'))).to.include({ pid: process.pid, port: 9000 });
      await lock.release();
    });

    it('FolderLocks takes every folder or none', async () => {
      const log = captureLog();
      const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')];
      const held = await FolderLock.acquire(b, 1, log.logger);
      expect(await rejection(FolderLocks.take([a, b], 2, log.logger))).to.be.instanceOf(FolderLockedError);
      expect(await fsp.readdir(a), 'the lock on the first folder was given back').to.deep.equal([]);
      await held.release();
      const both = await FolderLocks.take([a, b, a], 2, log.logger);
      expect(await fsp.readdir(a)).to.deep.equal([LOCK_FILE]);
      expect(await fsp.readdir(b)).to.deep.equal([LOCK_FILE]);
      await both.release();
    });
  });
});
