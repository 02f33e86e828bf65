import { clientName } from './client-name.js';
import type { Bitfield } from '../wire/bitfield.js';
import { countBoth } from '../storage/layout.js';
import type { PeerSession } from './peer-session.js';
import type { Encryption, TransportKind } from './peer.js';

/** One connected peer as the dashboard shows it. */
export interface PeerStat {
  /** host:port ([v6]:port) of the connection (an incoming peer's port is its ephemeral one). */
  address: string;
  /** Decoded from the peer id: "Shoal 0.1.0", "aria2 1.37.0", or its printable prefix. */
  client: string;
  /** Payload bytes this peer sent us (verified or not), and we sent it. */
  downloaded: number;
  uploaded: number;
  downloadRate: number;
  uploadRate: number;
  /** Share of the pieces it has, 0 to 1. */
  has: number;
  outgoing: boolean;
  /** TCP or uTP; plain BitTorrent, or MSE with a plaintext or an RC4 stream. */
  transport: TransportKind;
  encryption: Encryption;
}

/** A torrent's counters: what `status`, the dashboard and the bootstrap monitor show. */
export interface TorrentStats {
  infohash: string;
  name: string;
  length: number;
  /** Pieces to have: every piece, or those of the selected files (a download of some files). */
  pieces: number;
  /** Of those, the verified ones. */
  verified: number;
  /** Payload bytes received, including duplicates and data that failed its hash. */
  downloaded: number;
  uploaded: number;
  /** Bytes of verified pieces fetched by this run (excludes what a resume recovered). */
  fetched: number;
  wasted: number;
  hashFailures: number;
  downloadRate: number;
  uploadRate: number;
  peers: number;
  seeding: boolean;
}

export function peerStat(p: PeerSession, pieceCount: number): PeerStat {
  return {
    address: p.label,
    client: clientName(p.peerId),
    downloaded: p.down.total,
    uploaded: p.up.total,
    downloadRate: p.downloadRate(),
    uploadRate: p.uploadRate(),
    has: pieceCount > 0 ? p.bitfield.count() / pieceCount : 0,
    outgoing: p.outgoing,
    transport: p.peer.transport,
    encryption: p.peer.encryption,
  };
}

/** Pieces to have and how many of them are verified: the wanted ones when a store has a selection. */
export function wantedCounts(store: { have: Bitfield; wanted?: Bitfield }, pieceCount: number): { pieces: number; verified: number } {
  const { have, wanted } = store;
  return wanted ? { pieces: wanted.count(), verified: countBoth(have, wanted) } : { pieces: pieceCount, verified: have.count() };
}
