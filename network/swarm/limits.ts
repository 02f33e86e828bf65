import { DEFAULT_ALLOWED_FAST } from './allowed-fast.js';

/** What one torrent allows its peers and itself: the swarm's hard limits and timers. */
export interface SwarmLimits {
  /** Connections per torrent. */
  maxPeers: number;
  /** Peers we upload to at once. */
  uploadSlots: number;
  /** A peer with requests outstanding that sends no block for this long has stalled. */
  requestTimeoutMs: number;
  /** Stalls before we drop a peer. */
  maxStalls: number;
  /** Hash failures of pieces a peer alone sent before we drop and ban it. */
  maxStrikes: number;
  /** Requests a peer may queue with us; more is abuse and closes the connection. */
  maxQueuedUploads: number;
  connectTimeoutMs: number;
  /** Most requests kept in flight to one peer. */
  maxQueueDepth: number;
  /** How often each peer hears of the others (peer exchange, BEP 11). */
  pexIntervalMs: number;
  /** Pieces of the allowed-fast set (BEP 6) each peer may download while we choke it; 0 grants none. */
  allowedFast: number;
  /** A peer whose socket holds blocks we sent and reads none of them for this long is closed (it pins memory). */
  sendStallMs: number;
}

export const DEFAULT_SWARM_LIMITS: SwarmLimits = {
  maxPeers: 50,
  uploadSlots: 16,
  requestTimeoutMs: 10_000,
  maxStalls: 3,
  maxStrikes: 2,
  maxQueuedUploads: 512,
  connectTimeoutMs: 5_000,
  maxQueueDepth: 256,
  pexIntervalMs: 60_000,
  sendStallMs: 30_000,
  allowedFast: DEFAULT_ALLOWED_FAST,
};

/** Accepted connections beyond `maxPeers` (dials stop at the limit; a few incoming may still come in). */
export const INCOMING_SLACK = 10;
