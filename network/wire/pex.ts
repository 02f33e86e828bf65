/**
 * Peer exchange (BEP 11, `ut_pex`), a pure codec. One extended message, at most once a
 * minute per connection, a bencoded dictionary:
 *   added: compact IPv4 peers (6 bytes each)    added.f: one flags byte per added peer
 *   dropped: compact IPv4 peers                 added6 / added6.f / dropped6: the same for IPv6
 * Bounded: at most MAX_PEX_PEERS peers taken from each list; a bigger list is cut, not refused.
 */
import bencode from 'bencode';
import { isIP } from 'node:net';
import { WireError } from './peer-wire.js';
import { decodeCompactPeers, encodeCompactPeers } from './compact-peers.js';

/** BEP 11: no more than 50 added and 50 dropped peers in one message. */
export const MAX_PEX_PEERS = 50;
/** What we take from one message: more than the BEP allows, as some clients send more. */
const MAX_PEX_TAKEN = 200;
const MAX_PEX_BYTES = 4 * 1024;

type Endpoint = { host: string; port: number };

export interface PexMessage {
  added: Endpoint[];
  dropped: Endpoint[];
}

/** The payload of a ut_pex message (to wrap with the peer's ut_pex id); each list cut to MAX_PEX_PEERS. */
export function encodePex(m: PexMessage): Buffer {
  const added = m.added.slice(0, MAX_PEX_PEERS);
  const dropped = m.dropped.slice(0, MAX_PEX_PEERS);
  const v4 = (l: Endpoint[]) => l.filter((p) => isIP(p.host) === 4);
  const v6 = (l: Endpoint[]) => l.filter((p) => isIP(p.host) === 6);
  const dict: Record<string, Uint8Array> = {
    added: encodeCompactPeers(v4(added), 6),
    'added.f': Buffer.alloc(v4(added).length),
    dropped: encodeCompactPeers(v4(dropped), 6),
  };
  if (v6(added).length > 0) {
    dict.added6 = encodeCompactPeers(v6(added), 18);
    dict['added6.f'] = Buffer.alloc(v6(added).length);
  }
  if (v6(dropped).length > 0) dict.dropped6 = encodeCompactPeers(v6(dropped), 18);
  return Buffer.from(bencode.encode(dict));
}

/** Decode a ut_pex payload: WireError when it is not a dictionary; bad entries are skipped. */
export function decodePex(payload: Uint8Array): PexMessage {
  if (payload.length > MAX_PEX_BYTES) throw new WireError(`ut_pex message larger than ${MAX_PEX_BYTES} bytes`);
  let d: unknown;
  try {
    d = bencode.decode(payload);
  } catch (err) {
    throw new WireError(`ut_pex message is not valid bencode: ${(err as Error).message}`);
  }
  if (typeof d !== 'object' || d === null || Array.isArray(d) || d instanceof Uint8Array) throw new WireError('ut_pex message is not a dictionary');
  const dict = d as Record<string, unknown>;
  const list = (key: string, size: 6 | 18): Endpoint[] => {
    const v = dict[key];
    return v instanceof Uint8Array ? decodeCompactPeers(v.subarray(0, MAX_PEX_TAKEN * size), size).filter((p) => p.port > 0) : [];
  };
  return { added: [...list('added', 6), ...list('added6', 18)], dropped: [...list('dropped', 6), ...list('dropped6', 18)] };
}
