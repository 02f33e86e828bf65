/**
 * What this node uploads: every torrent that sent bytes since the node started or has a peer
 * that wants something from it now, with the peers it serves (address, client, bytes sent,
 * rate) and its share ratio. Counters are this run's: a torrent's counters live as long as it
 * runs (a shared file's torrent opens when a peer first asks for it).
 */
import { clientName } from './client-name.js';
import type { Torrent } from './torrent.js';
import type { Encryption, TransportKind } from './peer.js';

/** One peer we upload to (or that waits for us to). */
export interface SeedingPeer {
  /** host:port of the connection (an incoming peer's port is its ephemeral one). */
  address: string;
  /** Decoded from its peer id: "Shoal 0.1.0", "aria2 1.37.0", or its printable prefix. */
  client: string;
  /** Payload bytes sent to it, and the rate now. */
  uploaded: number;
  uploadRate: number;
  /** Share of the pieces it has, 0 to 1. */
  has: number;
  /** It wants pieces of us; we let it ask (unchoked). */
  interested: boolean;
  unchoked: boolean;
  outgoing: boolean;
  /** TCP or uTP; plain BitTorrent, or MSE with a plaintext or an RC4 stream. */
  transport: TransportKind;
  encryption: Encryption;
}

export interface SeedingEntry {
  infohash: string;
  name: string;
  size: number;
  /** Every piece is here (seeding), or it is still downloading while it uploads. */
  complete: boolean;
  /** Payload bytes sent since the node started, and the rate now. */
  uploaded: number;
  uploadRate: number;
  /** uploaded / size. */
  ratio: number;
  peers: SeedingPeer[];
}

/** The torrents that upload or are asked to, busiest first; each one's peers that matter, busiest first. */
export function seedingReport(torrents: Iterable<Torrent>): SeedingEntry[] {
  const out: SeedingEntry[] = [];
  for (const t of torrents) {
    const s = t.info();
    const m = t.metainfo;
    const peers: SeedingPeer[] = [];
    for (const p of t.peers) {
      if (p.closed) continue;
      const uploaded = p.up.total;
      if (uploaded === 0 && !p.peerInterested) continue;
      peers.push({
        address: p.label,
        client: clientName(p.peerId),
        uploaded,
        uploadRate: p.uploadRate(),
        has: m.pieceCount > 0 ? Math.min(1, p.bitfield.count() / m.pieceCount) : 0,
        interested: p.peerInterested,
        unchoked: !p.amChoking,
        outgoing: p.outgoing,
        transport: p.peer.transport,
        encryption: p.peer.encryption,
      });
    }
    if (s.uploaded === 0 && peers.length === 0) continue;
    peers.sort((a, b) => b.uploadRate - a.uploadRate || b.uploaded - a.uploaded);
    out.push({
      infohash: s.infohash,
      name: s.name,
      size: s.length,
      complete: s.seeding,
      uploaded: s.uploaded,
      uploadRate: s.uploadRate,
      ratio: s.length > 0 ? s.uploaded / s.length : 0,
      peers,
    });
  }
  return out.sort((a, b) => b.uploadRate - a.uploadRate || b.uploaded - a.uploaded);
}
