/** Small values several tests build the same way. Pure: no files, no sockets. */
import { randomBytes } from 'node:crypto';
import { buildMetainfo, type Metainfo } from '../network/metainfo/metainfo.js';

/** An infohash nobody shares. */
export const SOME_INFOHASH = 'ab'.repeat(20);

/** The metainfo of a 40000-byte file in 16 KiB pieces (random digests: it exists nowhere). */
export function smallMetainfo(name: string): Metainfo {
  const pieceLength = 16384;
  const length = 40000;
  return buildMetainfo({ name, length, pieceLength, pieces: randomBytes(20 * Math.ceil(length / pieceLength)) });
}
