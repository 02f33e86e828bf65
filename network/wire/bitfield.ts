/**
 * A piece bitfield as BEP 3 lays it out: bit 7 of byte 0 is piece 0. Spare bits in the
 * last byte must be zero on the wire; `fromWire` checks that.
 */
export class Bitfield {
  readonly bytes: Uint8Array;
  private ones = 0;

  constructor(readonly length: number, bytes?: Uint8Array) {
    this.bytes = bytes ?? new Uint8Array(Math.ceil(length / 8));
    if (bytes) for (let i = 0; i < length; i++) if (this.get(i)) this.ones++;
  }

  /** Validate a bitfield received from a peer for a torrent of `length` pieces; null if malformed. */
  static fromWire(length: number, payload: Uint8Array): Bitfield | null {
    if (payload.length !== Math.ceil(length / 8)) return null;
    const spare = payload.length * 8 - length;
    if (spare > 0 && (payload[payload.length - 1]! & ((1 << spare) - 1)) !== 0) return null;
    return new Bitfield(length, Uint8Array.from(payload));
  }

  static full(length: number): Bitfield {
    const b = new Bitfield(length);
    for (let i = 0; i < length; i++) b.set(i);
    return b;
  }

  get(i: number): boolean {
    return (this.bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0;
  }

  /** Set bit i; returns true if it changed. */
  set(i: number): boolean {
    if (i < 0 || i >= this.length || this.get(i)) return false;
    this.bytes[i >> 3]! |= 0x80 >> (i & 7);
    this.ones++;
    return true;
  }

  clear(i: number): boolean {
    if (i < 0 || i >= this.length || !this.get(i)) return false;
    this.bytes[i >> 3]! &= ~(0x80 >> (i & 7));
    this.ones--;
    return true;
  }

  count(): number {
    return this.ones;
  }

  complete(): boolean {
    return this.ones === this.length;
  }

  /** Indices of set bits. */
  *indices(): IterableIterator<number> {
    for (let i = 0; i < this.length; i++) if (this.get(i)) yield i;
  }
}
