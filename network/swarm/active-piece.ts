import { BLOCK_LENGTH } from '../wire/peer-wire.js';
import type { Bitfield } from '../wire/bitfield.js';

/** What the picker needs to know of a peer: which pieces it has. The picker keeps everything else. */
export interface PickerPeer {
  readonly bitfield: Bitfield;
}

/** Size of the torrent, as far as picking is concerned. */
export interface Geometry {
  readonly pieceCount: number;
  readonly pieceLength: number;
  readonly length: number;
}

/** One block asked of one peer; `key` is index * blocksPerPiece + block. */
export interface BlockRequest {
  index: number;
  begin: number;
  length: number;
  key: number;
}

/**
 * What a received block was: the piece it completed, nothing yet (null), a duplicate, garbage
 * (does not fit the torrent), or a block nobody asked this peer for.
 */
export type Received<P extends PickerPeer = PickerPeer> = ActivePiece<P> | 'dup' | 'bad' | 'unrequested' | null;

/** A piece being fetched: its buffer fills block by block. */
export class ActivePiece<P extends PickerPeer = PickerPeer> {
  readonly blocks: number;
  readonly received: Uint8Array;
  receivedCount = 0;
  /** Outstanding requests per block (more than one only in end-game). */
  readonly requests: Uint8Array;
  /** The peer fetching this piece; null when orphaned (its owner left or stalled). */
  owner: P | null;
  readonly contributors = new Set<P>();
  /** Who sent each block: the evidence when the piece fails its hash. */
  readonly from: Array<P | undefined>;

  constructor(
    readonly index: number,
    readonly size: number,
    readonly buffer: Buffer,
    owner: P,
    /** Fetched from one peer only, so a second hash failure names the liar exactly. */
    readonly exclusive: boolean,
  ) {
    this.blocks = Math.ceil(size / BLOCK_LENGTH);
    this.received = new Uint8Array(this.blocks);
    this.requests = new Uint8Array(this.blocks);
    this.from = new Array<P | undefined>(this.blocks);
    this.owner = owner;
  }

  blockLength(b: number): number {
    return b === this.blocks - 1 ? this.size - b * BLOCK_LENGTH : BLOCK_LENGTH;
  }
}
