/**
 * Compact peer lists, as trackers (BEP 23, BEP 7) and peer exchange (BEP 11) send them: each
 * peer its address bytes then its port, big-endian; 6 bytes for IPv4, 18 for IPv6.
 */

/** Peers of a compact list; a trailing partial entry is ignored. IPv6 comes in its canonical short form. */
export function decodeCompactPeers(bytes: Uint8Array, size: 6 | 18): Array<{ host: string; port: number }> {
  const out: Array<{ host: string; port: number }> = [];
  for (let i = 0; i + size <= bytes.length; i += size) {
    const port = (bytes[i + size - 2]! << 8) | bytes[i + size - 1]!;
    if (size === 6) {
      out.push({ host: `${bytes[i]}.${bytes[i + 1]}.${bytes[i + 2]}.${bytes[i + 3]}`, port });
      continue;
    }
    const groups: string[] = [];
    for (let g = 0; g < 8; g++) groups.push(((bytes[i + 2 * g]! << 8) | bytes[i + 2 * g + 1]!).toString(16));
    // Round-trip through URL to get the canonical compressed form ("::1", not "0:0:...:1").
    out.push({ host: new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1), port });
  }
  return out;
}

/** Peers as compact bytes: 6 each for IPv4 (BEP 23), 18 for IPv6 (BEP 7); the caller picks one family per list. */
export function encodeCompactPeers(peers: ReadonlyArray<{ host: string; port: number }>, size: 6 | 18): Buffer {
  const out = Buffer.allocUnsafe(peers.length * size);
  let o = 0;
  for (const { host, port } of peers) {
    if (size === 6) {
      for (const part of host.split('.')) out[o++] = Number(part);
    } else {
      o += writeIPv6(host, out, o);
    }
    out.writeUInt16BE(port, o);
    o += 2;
  }
  return out;
}

/** Write an IPv6 literal's 16 bytes (`::` compression and a trailing dotted quad included). */
function writeIPv6(host: string, out: Buffer, at: number): number {
  let text = host.split('%')[0]!;
  const tail: number[] = [];
  const quad = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    tail.push((Number(quad[2]) << 8) | Number(quad[3]), (Number(quad[4]) << 8) | Number(quad[5]));
    text = quad[1]!.endsWith('::') ? quad[1]! : quad[1]!.slice(0, -1);
  }
  const gap = text.indexOf('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const head = parse(gap < 0 ? text : text.slice(0, gap));
  const rest = gap < 0 ? [] : parse(text.slice(gap + 2));
  const zeros = gap < 0 ? 0 : 8 - head.length - rest.length - tail.length;
  const groups = [...head, ...new Array<number>(Math.max(0, zeros)).fill(0), ...rest, ...tail];
  for (let g = 0; g < 8; g++) out.writeUInt16BE(groups[g] ?? 0, at + 2 * g);
  return 16;
}
