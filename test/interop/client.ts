/**
 * What the interop suite needs from a real BitTorrent client: make a .torrent the way its
 * users do, seed from data already on disk, download a .torrent or a magnet link, each in
 * the client's namespace and with the case's settings. One implementation per client in
 * test/interop/clients/.
 */
import type { LanHost } from '../netns.js';
import type { InteropCase, Settings } from './cases.js';
import type { Feature } from './features.js';
import type { InteropLan } from './lan.js';
import type { Direction } from './matrix.js';

export interface TorrentRef {
  infohash: string;
  /** The top-level name: the file, or the folder of a multi-file torrent. */
  name: string;
  /** The .torrent file, unless the case hands over a magnet link only. */
  torrent?: string;
  magnet?: string;
}

export interface Seeding {
  stop(): Promise<void>;
  /** What the client said last, for a failure message. */
  describe(): string;
  /** A measurement worth recording for this case (e.g. time from connection to first byte). */
  note?(): string | undefined;
}

export interface InteropClient {
  /** As shown in the matrix. */
  name: string;
  /** Why the client cannot run here (not installed...), or null. */
  missing(): Promise<string | null>;
  version(): Promise<string>;
  /** Start what runs for a whole test file on `host` (a daemon); `tearDown` stops it. */
  setUp?(l: InteropLan, host: LanHost): Promise<void>;
  tearDown?(): Promise<void>;
  /** Write a .torrent of `what` with the maker this client's users use. */
  makeTorrent(what: string, out: string, pieceLength: number, tracker: string): Promise<void>;
  /** Seed `ref` from `dataDir/<name>`; resolves once the client is seeding. */
  seed(l: InteropLan, host: LanHost, ref: TorrentRef, dataDir: string, settings: Settings): Promise<Seeding>;
  /** Download `ref` into `into/<name>`; resolves once complete, rejects after `ms`. May return a note. */
  fetch(l: InteropLan, host: LanHost, ref: TorrentRef, into: string, settings: Settings, ms: number): Promise<string | void>;
  /** Why this client cannot run `c` at all (no such setting), or null. */
  cannot?(c: InteropCase, d: Direction): string | null;
  /** Shoal features this client needs for `c` beyond what the case itself needs. */
  needs?(c: InteropCase, d: Direction): Feature[];
  /** What the matrix should say about `c` whatever happens (what the client cannot do, how it does it). */
  remark?(c: InteropCase, d: Direction): string | undefined;
  /**
   * Run the cases of one setting at once (both directions, each with its own Shoal node):
   * for a client that decides only every few seconds (Transmission's choker runs every 10 s)
   * and would otherwise spend most of the suite waiting. Its setting is one per session.
   */
  concurrent?: boolean;
  /** False when the client does not create a torrent's empty files (Transmission 3). */
  createsEmptyFiles?: boolean;
}
