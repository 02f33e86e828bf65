/**
 * What serving costs a seed under many peers, measured in the seed's own process (a child,
 * test/serving-seed.ts): 50 peers, each from its own address, ask for 200 shared files (four
 * connections each, one file per connection), half of them for every block of every piece
 * and half for the first block of each piece (attack 3's shape), and never read a byte. The
 * seed's upload memory stays within its budget, its descriptors on shared files within the
 * open-file budget (read from /proc/self/fd), its resident memory within the budget and a
 * stated slack; an honest node downloads meanwhile; every non-reader that pins memory is
 * closed saying why (memory being short, or after the send-stall time), and what they pinned
 * comes back. Figures are printed (docs: /work/notes/faults-robustness.md).
 */
import { expect } from 'chai';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { WireDecoder, encodeHandshake, encodeRequests, INTERESTED, maxFrameFor } from '../../network/wire/peer-wire.js';
import { reservedBytes } from '../../network/wire/extension.js';
import type { Node } from '../../network/index.js';
import type { SeedFile, SeedStats } from '../serving-seed.js';
import { cleanup, randomFile, sha1File, startNode, tempDir, waitFor } from '../helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const FILES = 200;
const PEERS = 50;
const PIECE = 128 * KiB;
/** More than a loopback socket that is never read takes into the kernel (about 1.5 MiB): the rest stays with the seed. */
const FILE_SIZE = 4 * MiB;
const HONEST = [0, 101, 199];
const OPEN_FILES = 32;
/** Resident memory the seed may gain under the attack beyond its upload budget (sockets, heap, libuv). */
const RSS_SLACK = 64 * MiB;

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'serving-seed.js');

describe('serving within bounds: many peers, many files', function () {
  this.timeout(90_000);
  let dir = '';
  let child: ChildProcess | null = null;
  const sockets: net.Socket[] = [];
  const nodes: Node[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    child = null;
    if (dir) await cleanup(dir);
    dir = '';
  });

  /**
   * Budgets: 16 MiB of upload memory, where an honest peer is served from what the non-readers
   * leave; and 4 MiB, one peer's share, which the non-readers pin whole: the honest peer is
   * served only because, memory being short, sockets that took nothing for PRESSURE_STALL_MS
   * are closed (long before the send-stall time, 16 s there).
   */
  const cases = [
    { uploadMemory: 16 * MiB, sendStallMs: 8000 },
    { uploadMemory: 4 * MiB, sendStallMs: 16_000 },
  ];
  for (const { uploadMemory, sendStallMs } of cases) it(`${PEERS} peers ask ${FILES} files for blocks and read none (upload memory ${uploadMemory / MiB} MiB, ${OPEN_FILES} open files): both budgets hold, an honest node downloads meanwhile, the non-readers that pin memory are closed saying why`, async () => {
    const BUDGET = { uploadMemory, openFiles: OPEN_FILES };
    dir = await tempDir('shoal-serving-');
    // Sparse files (holes read as zeros, nothing on disk), but for the three an honest node fetches.
    for (let i = 0; i < FILES; i++) {
      const f = path.join(dir, 'seed', 'shared', `f${String(i).padStart(3, '0')}.bin`);
      if (HONEST.includes(i)) await randomFile(f, FILE_SIZE);
      else {
        await fsp.mkdir(path.dirname(f), { recursive: true });
        await fsp.writeFile(f, `file ${i}`);
        await fsp.truncate(f, FILE_SIZE);
      }
    }
    const c = fork(CHILD, [JSON.stringify({ dir: path.join(dir, 'seed'), pieceLength: PIECE, ...BUDGET, limits: { sendStallMs } })], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      env: { ...process.env, SHOAL_LOG: 'warn' },
    });
    child = c;
    const warnings: string[] = [];
    readline.createInterface({ input: c.stderr! }).on('line', (l) => {
      try {
        warnings.push((JSON.parse(l) as { msg: string }).msg);
      } catch {
        warnings.push(l);
      }
    });
    const [ready] = (await once(c, 'message')) as [{ type: 'ready'; port: number; files: SeedFile[] }];
    expect(ready.files).to.have.length(FILES);
    const files = ready.files.sort((a, b) => (a.name < b.name ? -1 : 1));
    const stats = async (): Promise<SeedStats> => {
      c.send('stats');
      for (;;) {
        const [msg] = (await once(c, 'message')) as [{ type: string; stats: SeedStats }];
        if (msg.type === 'stats') return msg.stats;
      }
    };
    const before = await stats();

    // Sample the seed all along.
    const samples: SeedStats[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push(await stats());
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    // The attack: connect, say interested, wait to be unchoked, ask, then never read again.
    let unchoked = 0;
    const attack = (peer: number, conn: number) =>
      new Promise<void>((resolve, reject) => {
        const f = files[peer * 4 + conn]!;
        const s = net.connect({ host: '127.0.0.1', port: ready.port, localAddress: `127.0.0.${10 + peer}` });
        sockets.push(s);
        s.on('error', () => {});
        s.on('connect', () => s.write(Buffer.concat([encodeHandshake(Buffer.from(f.infohash, 'hex'), randomBytes(20), reservedBytes({ fast: true })), INTERESTED])));
        const everyBlock = conn % 2 === 0;
        const wire = new WireDecoder((msg) => {
          if (msg.type !== 'unchoke') return;
          s.pause(); // from here on nothing is read
          unchoked++;
          const reqs: Array<{ index: number; begin: number; length: number }> = [];
          for (let i = 0; i < f.pieceCount; i++) {
            const size = Math.min(f.pieceLength, f.length - i * f.pieceLength);
            for (let b = 0; b < (everyBlock ? size : 1); b += 16 * KiB) reqs.push({ index: i, begin: b, length: Math.min(16 * KiB, size - b) });
          }
          s.write(encodeRequests(reqs));
          resolve();
        }, maxFrameFor(f.pieceCount));
        s.on('data', (d: Buffer) => {
          if (!s.isPaused()) wire.push(d);
        });
        setTimeout(() => reject(new Error(`peer ${peer} connection ${conn} was not unchoked`)), 20_000).unref();
      });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: PEERS }, (_, p) => Promise.all([0, 1, 2, 3].map((k) => attack(p, k)))));
    expect(unchoked).to.equal(PEERS * 4);

    // An honest node downloads three of the files meanwhile.
    const leech = await startNode(path.join(dir, 'leech'), { peers: [{ host: '127.0.0.1', port: ready.port }] });
    nodes.push(leech);
    const honest = HONEST.map((i) => files[i]!);
    const started = Date.now();
    const got = await Promise.all(honest.map(async (f) => leech.whenDone(await leech.download(f.infohash))));
    const honestMs = Date.now() - started;
    for (const [i, f] of honest.entries()) expect(await sha1File(got[i]!)).to.equal(await sha1File(path.join(dir, 'seed', 'shared', f.name)));
    expect(honestMs, 'the honest downloads did not wait for the send-stall time').to.be.lessThan(sendStallMs - 2000);
    const stallClosed = () => warnings.filter((w) => w === `closing peer: it read none of what we sent for ${sendStallMs} ms`).length;
    expect(stallClosed(), 'nor for the non-readers to be closed by it').to.equal(0);
    await leech.stop();
    nodes.splice(0);

    // The send-stall timer closes every non-reader, saying why; what they pinned comes back.
    // Those that asked for every block hold memory: each is closed, saying why (memory being short,
    // or after the send-stall time). Those that asked for one block of each piece hold nothing here
    // (their socket took it all), and are left to the idle timer.
    const pressureClosed = () => warnings.filter((w) => /^closing peer: it read none of what we sent for [\d.]+ s while other peers wait for upload memory$/.test(w)).length;
    await waitFor(() => stallClosed() + pressureClosed() >= PEERS * 2, sendStallMs + 10_000, 'every non-reader that holds memory closed');
    const after = await waitFor(async () => {
      const s = await stats();
      return s.serving.memory.pinned === 0 && s.connections <= PEERS * 2 ? s : null;
    }, 5000, 'the pinned memory given back');
    sampling = false;
    await sampler;

    const m = (f: (s: SeedStats) => number) => Math.max(...samples.map(f));
    const peakUsed = m((s) => s.serving.memory.used);
    const peakShared = m((s) => s.sharedFds);
    const peakRss = m((s) => s.rss);
    const last = samples[samples.length - 1]!;
    const figures = {
      attackSeconds: ((Date.now() - t0) / 1000).toFixed(1),
      honestMs,
      closed: { underPressure: pressureClosed(), afterSendStall: stallClosed() },
      memory: { budget: BUDGET.uploadMemory, peakUsed, peak: last.serving.memory.peak, waits: last.serving.memory.waits, evicted: last.serving.memory.evicted, copies: last.serving.memory.copies, blockReads: last.serving.reads.blockReads, after: after.serving.memory.used },
      files: { budget: BUDGET.openFiles, peakSharedFds: peakShared, peak: last.serving.files.peak, opens: last.serving.files.opens, waits: last.serving.files.waits },
      fds: { before: before.fds, peak: m((s) => s.fds), after: after.fds },
      rssMiB: { before: (before.rss / MiB).toFixed(1), peak: (peakRss / MiB).toFixed(1), after: (after.rss / MiB).toFixed(1) },
      connectionsPeak: m((s) => s.connections),
    };
    console.log(`      ${JSON.stringify(figures)}`);

    expect(samples.length, 'sampled all along').to.be.greaterThan(20);
    expect(peakUsed, 'upload memory in use never beyond its budget').to.be.at.most(BUDGET.uploadMemory);
    expect(last.serving.memory.peak, 'nor at any moment between samples').to.be.at.most(BUDGET.uploadMemory);
    expect(last.serving.memory.waits, 'the attack did reach the budget').to.be.greaterThan(0);
    expect(peakShared, 'descriptors on shared files (/proc/self/fd) never beyond the open-file budget').to.be.at.most(BUDGET.openFiles);
    expect(last.serving.files.peak).to.be.at.most(BUDGET.openFiles);
    expect(last.serving.files.opens, 'files were closed and opened again in turn').to.be.greaterThan(FILES);
    expect(peakRss - before.rss, 'resident memory gained under the attack').to.be.at.most(BUDGET.uploadMemory + RSS_SLACK);
  });
});
