declare module 'bencode' {
  /** A decoded bencode value: byte strings stay bytes (Uint8Array), integers are numbers. */
  export type BencodeValue = number | Uint8Array | BencodeValue[] | { [key: string]: BencodeValue };
  interface Bencode {
    encode(data: unknown): Uint8Array;
    decode: {
      (data: Uint8Array, start?: number, end?: number, encoding?: string): unknown;
      /** Where the last decode stopped: the end of the first value (trailing bytes are ignored). */
      position: number;
    };
    encodingLength(data: unknown): number;
  }
  const bencode: Bencode;
  export default bencode;
}
