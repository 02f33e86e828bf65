/**
 * The BitTorrent peer wire codec (BEP 3, with the BEP 6 fast-extension ids recognised).
 * Pure: bytes in, messages out, no sockets. The decoder accepts input split at any byte
 * boundary and enforces a maximum frame length at parse time, before buffering a body.
 *
 * Handshake: <19><"BitTorrent protocol"><8 reserved><20 info_hash><20 peer_id> (68 bytes)
 * Message:   <uint32 length><uint8 id><payload>; length 0 is a keep-alive.
 *   0 choke, 1 unchoke, 2 interested, 3 not interested   (no payload)
 *   4 have <u32 index>          5 bitfield <bytes>
 *   6 request <u32 index><u32 begin><u32 length>
 *   7 piece <u32 index><u32 begin><block>
 *   8 cancel <u32 index><u32 begin><u32 length>
 *   9 port <u16>  13 suggest <u32>  14 have-all  15 have-none  16 reject <u32 x3>  17 allowed-fast <u32>
 *   20 extended <u8 id><payload>
 */

export const PROTOCOL = 'BitTorrent protocol';
export const HANDSHAKE_LENGTH = 68;
/** The block size every client uses for requests (BEP 3 convention). */
export const BLOCK_LENGTH = 16 * 1024;
/** Largest request we serve: some clients ask for up to 128 KiB. */
export const MAX_REQUEST_LENGTH = 128 * 1024;
/**
 * The smallest frame limit: one 16 KiB block (9 + 16384), or one 16 KiB metadata piece with
 * its bencoded header (BEP 9: 2 + up to 256 + 16384), whichever is larger.
 */
export const DEFAULT_MAX_FRAME = 2 + 256 + BLOCK_LENGTH;

export type WireMessage =
  | { type: 'handshake'; infoHash: Buffer; peerId: Buffer; reserved: Buffer }
  | { type: 'keep-alive' }
  | { type: 'choke' }
  | { type: 'unchoke' }
  | { type: 'interested' }
  | { type: 'not-interested' }
  | { type: 'have'; index: number }
  | { type: 'bitfield'; bits: Buffer }
  | { type: 'request'; index: number; begin: number; length: number }
  | { type: 'piece'; index: number; begin: number; block: Buffer }
  | { type: 'cancel'; index: number; begin: number; length: number }
  | { type: 'port'; port: number }
  | { type: 'have-all' }
  | { type: 'have-none' }
  | { type: 'suggest'; index: number }
  | { type: 'reject'; index: number; begin: number; length: number }
  | { type: 'allowed-fast'; index: number }
  | { type: 'extended'; id: number; payload: Buffer }
  | { type: 'unknown'; id: number; payload: Buffer };

export const MSG = {
  choke: 0, unchoke: 1, interested: 2, notInterested: 3, have: 4, bitfield: 5,
  request: 6, piece: 7, cancel: 8, port: 9, suggest: 13, haveAll: 14, haveNone: 15,
  reject: 16, allowedFast: 17, extended: 20,
} as const;

/** A peer sent bytes that are not a valid message: close that connection. */
export class WireError extends Error {
  override name = 'WireError';
}

const PSTR = Buffer.from(PROTOCOL, 'latin1');

const enum State {
  Handshake,
  Length,
  Body,
}

/**
 * Streaming decoder. `push` calls `emit` for every complete message in order. Byte fields
 * (a piece block, a bitfield, a payload) are views valid only during that `emit` call:
 * into the input when the message arrived in one chunk, else into a scratch buffer the
 * decoder reuses. A consumer that keeps them must copy. This keeps the receive path free
 * of per-message allocations.
 */
export class WireDecoder {
  private state: State;
  private need: number;
  private partial: Buffer | null = null;
  private filled = 0;
  private readonly lenBuf = Buffer.alloc(4);
  private scratch: Buffer | null = null;
  /** Bytes of complete messages decoded so far (for stats). */
  bytesDecoded = 0;

  constructor(
    private readonly emit: (msg: WireMessage) => void,
    private maxFrame: number = DEFAULT_MAX_FRAME,
    expectHandshake = true,
  ) {
    this.state = expectHandshake ? State.Handshake : State.Length;
    this.need = expectHandshake ? HANDSHAKE_LENGTH : 4;
  }

  /** Raise or lower the frame limit (e.g. once the torrent's bitfield size is known). */
  setMaxFrame(n: number): void {
    this.maxFrame = n;
  }

  push(chunk: Buffer): void {
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      let unit: Buffer;
      if (this.partial === null && n - off >= this.need) {
        unit = chunk.subarray(off, off + this.need);
        off += this.need;
      } else {
        if (this.partial === null) {
          this.partial = this.state === State.Length ? this.lenBuf : this.scratchFor(this.need);
          this.filled = 0;
        }
        const take = Math.min(this.need - this.filled, n - off);
        chunk.copy(this.partial, this.filled, off, off + take);
        this.filled += take;
        off += take;
        if (this.filled < this.need) return;
        unit = this.partial;
        this.partial = null;
      }
      this.unit(unit);
    }
  }

  private scratchFor(n: number): Buffer {
    if (n > DEFAULT_MAX_FRAME) return Buffer.allocUnsafe(n); // rare: a large bitfield
    this.scratch ??= Buffer.allocUnsafe(DEFAULT_MAX_FRAME);
    return this.scratch.subarray(0, n);
  }

  private unit(unit: Buffer): void {
    switch (this.state) {
      case State.Handshake:
        this.bytesDecoded += HANDSHAKE_LENGTH;
        this.state = State.Length;
        this.need = 4;
        this.emit(decodeHandshake(unit));
        return;
      case State.Length: {
        const len = unit.readUInt32BE(0);
        if (len === 0) {
          this.bytesDecoded += 4;
          this.emit({ type: 'keep-alive' });
          return;
        }
        if (len > this.maxFrame) throw new WireError(`frame of ${len} bytes exceeds the limit of ${this.maxFrame}`);
        this.state = State.Body;
        this.need = len;
        return;
      }
      case State.Body:
        this.bytesDecoded += 4 + unit.length;
        this.state = State.Length;
        this.need = 4;
        this.emit(decodeMessage(unit));
        return;
    }
  }
}

function decodeHandshake(b: Buffer): WireMessage {
  if (b[0] !== 19 || !b.subarray(1, 20).equals(PSTR)) throw new WireError('not a BitTorrent handshake');
  return {
    type: 'handshake',
    reserved: Buffer.from(b.subarray(20, 28)),
    infoHash: Buffer.from(b.subarray(28, 48)),
    peerId: Buffer.from(b.subarray(48, 68)),
  };
}

function fixed(b: Buffer, len: number, name: string): void {
  if (b.length !== len) throw new WireError(`${name} message has length ${b.length}, expected ${len}`);
}

/** Decode one message body (id + payload). */
export function decodeMessage(b: Buffer): WireMessage {
  const id = b[0]!;
  switch (id) {
    case MSG.choke: fixed(b, 1, 'choke'); return { type: 'choke' };
    case MSG.unchoke: fixed(b, 1, 'unchoke'); return { type: 'unchoke' };
    case MSG.interested: fixed(b, 1, 'interested'); return { type: 'interested' };
    case MSG.notInterested: fixed(b, 1, 'not-interested'); return { type: 'not-interested' };
    case MSG.have: fixed(b, 5, 'have'); return { type: 'have', index: b.readUInt32BE(1) };
    case MSG.bitfield: return { type: 'bitfield', bits: b.subarray(1) };
    case MSG.request:
    case MSG.cancel:
    case MSG.reject: {
      const type = id === MSG.request ? 'request' : id === MSG.cancel ? 'cancel' : 'reject';
      fixed(b, 13, type);
      return { type, index: b.readUInt32BE(1), begin: b.readUInt32BE(5), length: b.readUInt32BE(9) };
    }
    case MSG.piece:
      if (b.length < 9) throw new WireError(`piece message has length ${b.length}, expected at least 9`);
      return { type: 'piece', index: b.readUInt32BE(1), begin: b.readUInt32BE(5), block: b.subarray(9) };
    case MSG.port: fixed(b, 3, 'port'); return { type: 'port', port: b.readUInt16BE(1) };
    case MSG.suggest: fixed(b, 5, 'suggest'); return { type: 'suggest', index: b.readUInt32BE(1) };
    case MSG.allowedFast: fixed(b, 5, 'allowed-fast'); return { type: 'allowed-fast', index: b.readUInt32BE(1) };
    case MSG.haveAll: fixed(b, 1, 'have-all'); return { type: 'have-all' };
    case MSG.haveNone: fixed(b, 1, 'have-none'); return { type: 'have-none' };
    case MSG.extended:
      if (b.length < 2) throw new WireError('extended message without an extension id');
      return { type: 'extended', id: b[1]!, payload: b.subarray(2) };
    default:
      return { type: 'unknown', id, payload: b.subarray(1) };
  }
}

// ---- encoding -------------------------------------------------------------------------

export function encodeHandshake(infoHash: Buffer, peerId: Buffer, reserved: Buffer = Buffer.alloc(8)): Buffer {
  if (infoHash.length !== 20 || peerId.length !== 20 || reserved.length !== 8) throw new RangeError('bad handshake fields');
  const b = Buffer.allocUnsafe(HANDSHAKE_LENGTH);
  b[0] = 19;
  PSTR.copy(b, 1);
  reserved.copy(b, 20);
  infoHash.copy(b, 28);
  peerId.copy(b, 48);
  return b;
}

function simple(id: number): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(1, 0);
  b[4] = id;
  return b;
}

export const KEEP_ALIVE = Buffer.alloc(4);
export const CHOKE = simple(MSG.choke);
export const UNCHOKE = simple(MSG.unchoke);
export const INTERESTED = simple(MSG.interested);
export const NOT_INTERESTED = simple(MSG.notInterested);
export const HAVE_ALL = simple(MSG.haveAll);
export const HAVE_NONE = simple(MSG.haveNone);

export function encodeHave(index: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b.writeUInt32BE(5, 0);
  b[4] = MSG.have;
  b.writeUInt32BE(index, 5);
  return b;
}

function indexMessage(id: number, index: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b.writeUInt32BE(5, 0);
  b[4] = id;
  b.writeUInt32BE(index, 5);
  return b;
}

/** BEP 6: the receiver may download this piece from us even while we choke it. */
export const encodeAllowedFast = (index: number): Buffer => indexMessage(MSG.allowedFast, index);
/** BEP 6: a hint that this piece is a good one to ask us for. */
export const encodeSuggest = (index: number): Buffer => indexMessage(MSG.suggest, index);

export function encodeBitfield(bits: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + bits.length);
  b.writeUInt32BE(1 + bits.length, 0);
  b[4] = MSG.bitfield;
  b.set(bits, 5);
  return b;
}

function writeTriple(b: Buffer, o: number, id: number, index: number, begin: number, length: number): void {
  b.writeUInt32BE(13, o);
  b[o + 4] = id;
  b.writeUInt32BE(index, o + 5);
  b.writeUInt32BE(begin, o + 9);
  b.writeUInt32BE(length, o + 13);
}

function triple(id: number, index: number, begin: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(17);
  writeTriple(b, 0, id, index, begin, length);
  return b;
}

/** Many requests in one buffer, so a batch costs one socket write. */
export function encodeRequests(reqs: ReadonlyArray<{ index: number; begin: number; length: number }>): Buffer {
  const b = Buffer.allocUnsafe(17 * reqs.length);
  reqs.forEach((r, i) => writeTriple(b, 17 * i, MSG.request, r.index, r.begin, r.length));
  return b;
}

export const encodeRequest = (index: number, begin: number, length: number): Buffer => triple(MSG.request, index, begin, length);
export const encodeCancel = (index: number, begin: number, length: number): Buffer => triple(MSG.cancel, index, begin, length);
export const encodeReject = (index: number, begin: number, length: number): Buffer => triple(MSG.reject, index, begin, length);

/** The 13-byte header of a piece message; the block follows it unchanged (no copy). */
export function encodePieceHeader(index: number, begin: number, blockLength: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  b.writeUInt32BE(9 + blockLength, 0);
  b[4] = MSG.piece;
  b.writeUInt32BE(index, 5);
  b.writeUInt32BE(begin, 9);
  return b;
}

export function encodePiece(index: number, begin: number, block: Uint8Array): Buffer {
  return Buffer.concat([encodePieceHeader(index, begin, block.length), block]);
}

export function encodePort(port: number): Buffer {
  const b = Buffer.allocUnsafe(7);
  b.writeUInt32BE(3, 0);
  b[4] = MSG.port;
  b.writeUInt16BE(port, 5);
  return b;
}

export function encodeExtended(id: number, payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(6 + payload.length);
  b.writeUInt32BE(2 + payload.length, 0);
  b[4] = MSG.extended;
  b[5] = id;
  b.set(payload, 6);
  return b;
}

/** The frame limit for a torrent of `pieceCount` pieces: its bitfield or one block, whichever is larger. */
export function maxFrameFor(pieceCount: number): number {
  return Math.max(1 + Math.ceil(pieceCount / 8), DEFAULT_MAX_FRAME);
}
