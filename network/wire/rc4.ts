/**
 * RC4, the stream cipher of BitTorrent's message stream encryption (MSE/PE), in TypeScript:
 * Node 20's OpenSSL 3 keeps RC4 in its legacy provider, which a process only gets with
 * `--openssl-legacy-provider`, and OpenSSL's RC4 is no faster than this anyway (both about
 * 260 MB/s a core byte by byte here; this one XORs a 32-bit word at a time and reaches about
 * twice that). RC4 is weak; MSE uses it to obfuscate, not to protect, and so do we.
 */
import os from 'node:os';

/** MSE discards the first 1024 bytes of each key stream (the weakest part of RC4's output). */
export const MSE_DISCARD = 1024;

const LITTLE_ENDIAN = os.endianness() === 'LE';

export class Rc4 {
  /** The permutation, in 32-bit cells: V8 loads them faster than bytes in the loop below. */
  private readonly s = new Int32Array(256);
  private i = 0;
  private j = 0;

  constructor(key: Uint8Array, discard = 0) {
    if (key.length === 0 || key.length > 256) throw new RangeError('an RC4 key has 1 to 256 bytes');
    const s = this.s;
    for (let i = 0; i < 256; i++) s[i] = i;
    for (let i = 0, j = 0; i < 256; i++) {
      j = (j + s[i]! + key[i % key.length]!) & 255;
      const t = s[i]!;
      s[i] = s[j]!;
      s[j] = t;
    }
    if (discard > 0) this.process(Buffer.alloc(discard));
  }

  /** Encrypt or decrypt `buf` in place (the same operation); returns it. */
  process(buf: Uint8Array): Uint8Array {
    let k = 0;
    const n = buf.length;
    if (LITTLE_ENDIAN) {
      // Bytes up to a 4-byte boundary, then whole words, then the tail.
      for (; k < n && (buf.byteOffset + k) % 4 !== 0; k++) buf[k] = buf[k]! ^ this.next();
      const words = (n - k) >> 2;
      if (words > 0) {
        this.xorWords(new Int32Array(buf.buffer, buf.byteOffset + k, words));
        k += words * 4;
      }
    }
    for (; k < n; k++) buf[k] = buf[k]! ^ this.next();
    return buf;
  }

  private next(): number {
    const s = this.s;
    this.i = (this.i + 1) & 255;
    const si = s[this.i]!;
    this.j = (this.j + si) & 255;
    const sj = s[this.j]!;
    s[this.i] = sj;
    s[this.j] = si;
    return s[(si + sj) & 255]!;
  }

  /** Four key-stream bytes per word, little-endian: byte k of the stream lands on byte k of the buffer. */
  private xorWords(w: Int32Array): void {
    const s = this.s;
    let i = this.i;
    let j = this.j;
    let si: number, sj: number, ks: number;
    for (let k = 0; k < w.length; k++) {
      i = (i + 1) & 255; si = s[i]!; j = (j + si) & 255; sj = s[j]!; s[i] = sj; s[j] = si; ks = s[(si + sj) & 255]!;
      i = (i + 1) & 255; si = s[i]!; j = (j + si) & 255; sj = s[j]!; s[i] = sj; s[j] = si; ks |= s[(si + sj) & 255]! << 8;
      i = (i + 1) & 255; si = s[i]!; j = (j + si) & 255; sj = s[j]!; s[i] = sj; s[j] = si; ks |= s[(si + sj) & 255]! << 16;
      i = (i + 1) & 255; si = s[i]!; j = (j + si) & 255; sj = s[j]!; s[i] = sj; s[j] = si; ks |= s[(si + sj) & 255]! << 24;
      w[k] = w[k]! ^ ks;
    }
    this.i = i;
    this.j = j;
  }
}
