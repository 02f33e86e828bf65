/**
 * One client's interop file: a LAN (Shoal and the tracker on host 1, the client on host 2),
 * then every case of cases.ts in both directions, each recorded in the matrix. Bytes are
 * compared every time. A case skips, saying why, when the client is missing, when the
 * client has no such setting, or when this Shoal build lacks a feature the case needs.
 *
 *   to-shoal     the client makes the .torrent and seeds; Shoal downloads (.torrent or magnet)
 *   from-shoal   Shoal shares the data (node-cli create gives the .torrent); the client downloads
 *
 * Bytes are compared file by file as the torrent lists them. A client marked `concurrent`
 * (Transmission, whose choker and interest decisions run every 10 s) runs all cases of one
 * setting at once, each with a Shoal node on its own port; the others run one case at a time.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import bencode from 'bencode';
import { expect } from 'chai';
import { CASES, writeContent, type InteropCase, type Settings } from './cases.js';
import type { InteropClient, TorrentRef } from './client.js';
import { FOLDER_SEED_FLAG, missingFeatures } from './features.js';
import type { LanHost } from '../netns.js';
import { createInteropLan, lanMissing, type InteropLan } from './lan.js';
import { CaseError, Matrix, type CaseResult, type Direction } from './matrix.js';
import { describeFetch, linksOf, sameFiles, shoalCreate, shoalGet, startShoalSeed } from './shoal.js';

const DIRECTIONS = ['to-shoal', 'from-shoal'] as const;

/** How many cases a concurrent client runs at once (SHOAL_INTEROP_CONCURRENCY says otherwise). */
const CONCURRENCY = Number(process.env.SHOAL_INTEROP_CONCURRENCY ?? 6);

/** The cases to define: all, or those SHOAL_INTEROP_CASES names (ids, comma-separated). */
const chosen = (): InteropCase[] => {
  const ids = process.env.SHOAL_INTEROP_CASES?.split(',').map((s) => s.trim()).filter(Boolean);
  return ids ? CASES.filter((c) => ids.includes(c.id)) : CASES;
};

/** How long one transfer may take before the case fails (the data is a few MiB). */
export const TRANSFER_MS = 90_000;

/** The infohash and top-level name of a .torrent file, whoever made it. */
export async function torrentIdentity(file: string): Promise<{ infohash: string; name: string }> {
  const t = bencode.decode(await fsp.readFile(file)) as { info: { name: Uint8Array } };
  const infohash = createHash('sha1').update(bencode.encode(t.info)).digest('hex');
  return { infohash, name: Buffer.from(t.info.name).toString('utf8') };
}

export const magnetOf = (infohash: string, name: string, tracker: string): string =>
  `magnet:?xt=urn:btih:${infohash}&dn=${encodeURIComponent(name)}&tr=${encodeURIComponent(tracker)}`;

/** With SHOAL_INTEROP_DEBUG=1, each step of a case is printed with the seconds since it began. */
function stepper(): (what: string) => void {
  const t0 = Date.now();
  return process.env.SHOAL_INTEROP_DEBUG === '1' ? (what) => console.log(`        ${((Date.now() - t0) / 1000).toFixed(2)} s ${what}`) : () => {};
}

/** The data's name for a case and direction: different every time, a folder has no extension. */
const dataName = (c: InteropCase, d: Direction): string => `${c.id}.${d}${c.content.kind === 'file' ? '.bin' : ''}`;

/** What a case found worth saying, joined. */
const notes = (...parts: Array<string | undefined | void>): string | undefined => parts.filter((p): p is string => !!p).join('; ') || undefined;

/** What a client did not create of a torrent's empty files, for the matrix. */
const emptyNote = (client: InteropClient, missing: string[]): string | undefined =>
  missing.length > 0 ? `${client.name} does not create empty files (${missing.join(', ')}): its own behaviour, every other file compared` : undefined;

/** The client seeds what it made a .torrent of; Shoal (on `host`) fetches it. Resolves with a note, if any. */
async function toShoal(l: InteropLan, client: InteropClient, c: InteropCase, host: LanHost): Promise<string | undefined> {
  const step = stepper();
  const caseDir = path.join(l.dir, `${c.id}.to-shoal`);
  const dataDir = path.join(caseDir, 'data');
  const data = await writeContent(dataDir, dataName(c, 'to-shoal'), c.content);
  const torrent = path.join(caseDir, 'made-by-client.torrent');
  await client.makeTorrent(data, torrent, c.pieceLength, l.tracker.url);
  const { infohash, name } = await torrentIdentity(torrent);
  expect(name).to.equal(path.basename(data));
  await l.tracker.allow(infohash);
  const ref: TorrentRef = { infohash, name, torrent };
  step('torrent made');
  const seeding = await client.seed(l, l.clients[0]!, ref, dataDir, c.settings);
  step('client seeding');
  try {
    await l.tracker.waitSeeders(infohash).catch((err: Error) => {
      throw new Error(`${err.message}; ${seeding.describe()}`);
    });
    step('tracker lists the client');
    const target = c.magnet ? magnetOf(infohash, name, l.tracker.url) : torrent;
    const cwd = path.join(caseDir, 'shoal');
    const f = await shoalGet(l, { cwd, target, ms: TRANSFER_MS, host });
    step('Shoal done');
    expect(f.code, `${describeFetch(f, TRANSFER_MS)}; ${seeding.describe()}`).to.equal(0);
    await sameFiles(torrent, data, path.join(cwd, 'd', name));
    return notes(linksOf(f.cli.stderr), seeding.note?.());
  } finally {
    await seeding.stop();
  }
}

/** Shoal (on `host`) shares the data; the client fetches it from the .torrent `node-cli create` made, or a magnet. */
async function fromShoal(l: InteropLan, client: InteropClient, c: InteropCase, host: LanHost): Promise<string | undefined> {
  const step = stepper();
  const caseDir = path.join(l.dir, `${c.id}.from-shoal`);
  const cwd = path.join(caseDir, 'shoal');
  // A file goes in the shared folder; a folder is shared as one torrent from beside it.
  const folder = c.content.kind === 'folder';
  const data = await writeContent(path.join(cwd, folder ? 'f' : 's'), dataName(c, 'from-shoal'), c.content);
  const torrent = path.join(caseDir, 'made-by-shoal.torrent');
  await shoalCreate(data, torrent, c.pieceLength, l.tracker.url);
  const { infohash, name } = await torrentIdentity(torrent);
  await l.tracker.allow(infohash);
  step('torrent made');
  const seed = await startShoalSeed(l, { cwd, host, pieceLength: c.pieceLength, extra: folder ? [FOLDER_SEED_FLAG, data] : [] });
  step('Shoal listening');
  try {
    await l.tracker.waitSeeders(infohash).catch((err: Error) => {
      throw new Error(`${err.message}; Shoal: ${seed.stderr()}`);
    });
    step('tracker lists Shoal');
    const ref: TorrentRef = c.magnet ? { infohash, name, magnet: magnetOf(infohash, name, l.tracker.url) } : { infohash, name, torrent };
    const into = path.join(caseDir, 'client');
    await fsp.mkdir(into, { recursive: true });
    const note = await client.fetch(l, l.clients[0]!, ref, into, c.settings, TRANSFER_MS).catch((err: Error) => {
      throw new Error(`${err.message}; Shoal: ${seed.stderr()}`);
    });
    step('client done');
    const missing = await sameFiles(torrent, data, path.join(into, name), { emptyMayBeMissing: client.createsEmptyFiles === false });
    return notes(seed.links(), note ?? undefined, emptyNote(client, missing));
  } finally {
    await seed.stop();
  }
}

/** One case in one direction, timed: its result, or a CaseError with the time it took. */
async function runCase(l: InteropLan, client: InteropClient, c: InteropCase, d: Direction, host: LanHost): Promise<CaseResult> {
  const t0 = Date.now();
  try {
    const note = d === 'to-shoal' ? await toShoal(l, client, c, host) : await fromShoal(l, client, c, host);
    return { seconds: (Date.now() - t0) / 1000, ...(notes(client.remark?.(c, d), note) ? { note: notes(client.remark?.(c, d), note)! } : {}) };
  } catch (err) {
    const e = new CaseError(notes(client.remark?.(c, d), (err as Error).message)!, (Date.now() - t0) / 1000);
    e.stack = (err as Error).stack;
    throw e;
  }
}

export interface SuiteInit {
  /** Namespace prefix (letters, digits, dashes) and the LAN's subnet, distinct per file. */
  prefix: string;
  subnet: string;
  /** Test file name, for the matrix's timings. */
  file: string;
  /** Cases whose failure is a known Shoal bug: id → the bug. They skip unless SHOAL_INTEROP_ALL=1. */
  knownBugs?: Partial<Record<`${Direction}:${string}`, string>>;
}

type Outcome = { ok: true; result: CaseResult } | { ok: false; error: Error };

/** The whole matrix for one client, as one mocha describe block. */
export function describeInterop(client: InteropClient, init: SuiteInit): void {
  describe(`interop matrix: ${client.name} (real client in its own namespace, bytes compared)`, function () {
    this.timeout(4 * TRANSFER_MS);
    const matrix = new Matrix(init.file);
    let l: InteropLan | undefined;
    let unavailable: string | null = null;

    before(async function () {
      this.timeout(120_000);
      matrix.begin();
      unavailable = lanMissing() ?? (await client.missing());
      if (unavailable) return;
      matrix.client(client.name, await client.version());
      l = await createInteropLan(init.prefix, 1, init.subnet, client.concurrent ? CONCURRENCY : 1);
      await client.setUp?.(l, l.clients[0]!);
    });

    after(async function () {
      this.timeout(60_000);
      await client.tearDown?.().catch(() => {});
      await l?.destroy();
      await matrix.save();
    });

    const skipOf = async (c: InteropCase, d: Direction): Promise<string | null> => {
      const bug = init.knownBugs?.[`${d}:${c.id}`];
      return (
        unavailable ??
        client.cannot?.(c, d) ??
        (await missingFeatures([...(c.needs?.[d] ?? []), ...(client.needs?.(c, d) ?? [])])) ??
        (bug && process.env.SHOAL_INTEROP_ALL !== '1' ? `known Shoal bug, run with SHOAL_INTEROP_ALL=1: ${bug}` : null)
      );
    };

    // A concurrent client runs the cases of one setting at once, the first time one of them is
    // asked for and once the setting before it is done: CONCURRENCY at a time, each with a
    // Shoal node on a host of its own (Transmission turns away a second incoming handshake
    // from an address that has one under way).
    const groups = new Map<Settings, Promise<Map<string, Outcome>>>();
    let previous: Promise<unknown> = Promise.resolve();
    const outcomeOf = (c: InteropCase, d: Direction): Promise<Outcome | undefined> => {
      let group = groups.get(c.settings);
      if (!group) {
        group = previous.then(async () => {
          const todo: Array<[InteropCase, Direction]> = [];
          for (const gc of chosen().filter((x) => x.settings === c.settings)) for (const gd of DIRECTIONS) if ((await skipOf(gc, gd)) === null) todo.push([gc, gd]);
          const settled = new Map<string, Outcome>();
          const worker = async (host: LanHost): Promise<void> => {
            for (let next = todo.shift(); next; next = todo.shift()) {
              const [gc, gd] = next;
              settled.set(
                `${gd}:${gc.id}`,
                await runCase(l!, client, gc, gd, host).then((result) => ({ ok: true as const, result }), (error: Error) => ({ ok: false as const, error })),
              );
            }
          };
          await Promise.all(l!.shoals.map(worker));
          return settled;
        });
        groups.set(c.settings, group);
        previous = group;
      }
      return group.then((g) => g.get(`${d}:${c.id}`));
    };

    for (const c of chosen()) {
      for (const d of DIRECTIONS) {
        const arrow = d === 'to-shoal' ? `${client.name} → Shoal` : `Shoal → ${client.name}`;
        it(`${arrow}: ${c.title}`, async function () {
          await matrix.run(this, { client: client.name, direction: d, case: c.id }, await skipOf(c, d), async () => {
            const result = await (async () => {
              if (!client.concurrent) return runCase(l!, client, c, d, l!.shoal);
              const o = await outcomeOf(c, d);
              if (!o) throw new Error('the case did not run with its group');
              if (!o.ok) throw o.error;
              return o.result;
            })();
            // Issue 15's target: a magnet from libtorrent starts downloading within 1 s of connecting.
            const start = /first piece data (?:within )?(\d+) ms/.exec(result.note ?? '');
            if (c.magnet && d === 'to-shoal' && start) matrix.measure(`${client.name} → Shoal by magnet: from the connection to the first piece data (as ${client.name} saw it)`, `${start[1]} ms`);
            return result;
          });
        });
      }
    }
  });
}
