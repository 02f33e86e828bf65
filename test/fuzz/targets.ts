/**
 * What the fuzzers feed: every decoder of input from the network (or from a file a user was
 * handed), each with valid seeds to mutate and the one error class it may throw. A decoder
 * that throws anything else (a TypeError, a RangeError from a stack overflow, an assertion),
 * hangs, or holds more memory than its bound, is a bug. Used by the bounded run in the test
 * suite (test/e2e/fuzz.test.ts) and the long one by hand (bench/fuzz.ts).
 */
import fc from 'fast-check';
import bencode from 'bencode';
import {
  WireDecoder, WireError, encodeHandshake, encodeRequest, encodeBitfield, encodeHave, encodePiece, encodeExtended,
  DEFAULT_MAX_FRAME, INTERESTED,
} from '../../network/wire/peer-wire.js';
import {
  LineDecoder, ControlProtocolError, parseRequest, parseResponse, encodeMessage, MAX_REQUEST_LINE,
} from '../../network/wire/control-codec.js';
import { decodeBeacon, BeaconError } from '../../network/wire/beacon-codec.js';
import { Identity } from '../../network/security/identity.js';
import { beaconOf } from '../beacons.js';
import { parseTorrent, encodeTorrent, MetainfoError } from '../../network/metainfo/metainfo.js';
import { parseMagnet, makeMagnet, MagnetError } from '../../network/metainfo/magnet.js';
import {
  parseAnnounce, parseScrape, parseAnnounceResponse, encodeAnnounceResponse, TrackerError, TrackerRequestError,
} from '../../network/wire/tracker-codec.js';
import {
  decodeExtendedHandshake, encodeExtendedHandshake, decodeMetadataMessage, encodeMetadataData, encodeMetadataRequest,
} from '../../network/wire/extension.js';
import { decodePex, encodePex } from '../../network/wire/pex.js';
import { smallMetainfo } from '../fixtures.js';

export interface FuzzTarget {
  name: string;
  /** Valid inputs: mutated copies of these reach past the first checks. */
  seeds: Buffer[];
  /** The errors a rejection may be. */
  expected: ReadonlyArray<new (...args: never[]) => Error>;
  /** Decode `input`; throw only an expected error. May check its own memory bound (throw a plain Error when broken). */
  run(input: Buffer): void;
}

const m = smallMetainfo('fuzz.bin');
const peerId = Buffer.from('-SH0100-fuzzfuzzfuzz');


/** The beacon seeds' signer. */
const FUZZ_IDENTITY = Identity.generate();
/** A stream decoder fed in random-sized chunks; its buffered bytes must stay within `bound`. */
function chunked(input: Buffer, push: (chunk: Buffer) => void, buffered: () => number, bound: number): void {
  // The chunk sizes come from the input itself: deterministic for a given input.
  let off = 0;
  let k = input.length > 0 ? input[0]! : 1;
  while (off < input.length) {
    k = (k * 1103515245 + 12345) >>> 0;
    const size = 1 + (k % 97);
    push(input.subarray(off, off + size));
    off += size;
    const held = buffered();
    if (held > bound) throw new Error(`decoder holds ${held} bytes, bound ${bound}`);
  }
}

export const TARGETS: FuzzTarget[] = [
  {
    name: 'peer wire (stream)',
    seeds: [
      Buffer.concat([encodeHandshake(m.infoHash, peerId), encodeBitfield(Buffer.from([0xe0])), INTERESTED, encodeHave(2), encodeRequest(1, 0, 16384)]),
      Buffer.concat([encodeHandshake(m.infoHash, peerId), encodePiece(0, 0, Buffer.alloc(100, 7)), encodeExtended(0, encodeExtendedHandshake({ v: 'x', reqq: 10, m: { ut_pex: 1 } }))]),
    ],
    expected: [WireError],
    run(input) {
      let messages = 0;
      const dec = new WireDecoder(() => void messages++, DEFAULT_MAX_FRAME);
      // A frame is never held past its limit (plus its length prefix): the decoder has no other buffer.
      chunked(input, (c) => dec.push(c), () => 0, DEFAULT_MAX_FRAME + 4);
    },
  },
  {
    name: 'control protocol (lines)',
    seeds: [
      Buffer.from('{"type":"search","filename":"a"}\n{"type":"list"}\r\n{"type":"metainfo","infohash":"' + 'ab'.repeat(20) + '"}\n'),
      encodeMessage({ type: 'FOUND', files: [{ name: 'a.txt', size: 3, infohash: 'cd'.repeat(20) }] }),
      encodeMessage({ type: 'PEERS', peers: [{ host: '127.0.0.1', port: 7 }] }),
    ],
    expected: [ControlProtocolError],
    run(input) {
      const dec = new LineDecoder(MAX_REQUEST_LINE);
      chunked(
        input,
        (c) => {
          for (const line of dec.push(c)) {
            // Either side's parser: a request line and an answer line.
            try {
              parseRequest(line);
            } catch (err) {
              if (!(err instanceof ControlProtocolError)) throw err;
            }
            parseResponse(line);
          }
        },
        () => dec.bufferedBytes,
        MAX_REQUEST_LINE + 1,
      );
    },
  },
  {
    name: 'multicast beacon',
    seeds: [
      beaconOf(FUZZ_IDENTITY, { type: 'HELLO', instance: 'inst-5678', name: 'Kitchen PC', port: 9000, intervalMs: 5000 }, { port: 7 }),
      beaconOf(FUZZ_IDENTITY, { type: 'GOODBYE', instance: 'i', name: 'ü', port: 1, host: '10.1.2.3', intervalMs: 5000 }, { port: 7, macKey: Buffer.alloc(32, 1) }),
    ],
    expected: [BeaconError],
    run: (input) => void decodeBeacon(input),
  },
  {
    name: 'torrent file (bencode, metainfo)',
    seeds: [encodeTorrent(m), Buffer.from(bencode.encode({ announce: 'http://t/a', info: { length: 1, name: 'x', 'piece length': 16384, pieces: Buffer.alloc(20) } }))],
    expected: [MetainfoError],
    run: (input) => void parseTorrent(input),
  },
  {
    name: 'magnet link',
    seeds: [Buffer.from(makeMagnet(m, { peers: [{ host: '127.0.0.1', port: 6881 }] })), Buffer.from(`magnet:?xt=urn:btih:${'A'.repeat(32)}&tr=udp%3A%2F%2Fx%3A1&dn=a%20b`)],
    expected: [MagnetError],
    run: (input) => void parseMagnet(input.toString('latin1')),
  },
  {
    name: 'tracker announce and scrape (server side)',
    seeds: [
      Buffer.from(`info_hash=${'%AB'.repeat(20)}&peer_id=${'-SH0100-fuzzfuzzfuzz'}&port=6881&uploaded=0&downloaded=0&left=100&compact=1&event=started&numwant=50`),
      Buffer.from(`info_hash=${'%01'.repeat(20)}&info_hash=${'%02'.repeat(20)}`),
    ],
    expected: [TrackerRequestError],
    run(input) {
      const q = input.toString('latin1');
      try {
        parseAnnounce(q, '127.0.0.1');
      } finally {
        parseScrape(q);
      }
    },
  },
  {
    name: 'tracker answer (client side)',
    seeds: [
      encodeAnnounceResponse({ interval: 1800, minInterval: 60, complete: 2, incomplete: 3, peers: [{ host: '127.0.0.1', port: 6881 }], compact: true, noPeerId: true }),
      Buffer.from(bencode.encode({ interval: 60, peers: [{ ip: '10.0.0.1', port: 1 }], peers6: Buffer.alloc(18) })),
      Buffer.from(bencode.encode({ 'failure reason': 'no' })),
    ],
    expected: [TrackerError],
    run: (input) => void parseAnnounceResponse(input),
  },
  {
    name: 'BEP 10 / 9 / 11 payloads',
    seeds: [
      encodeExtendedHandshake({ v: 'Shoal', reqq: 512, metadataSize: 300, port: 6881, m: { ut_metadata: 2, ut_pex: 1 } }),
      encodeMetadataRequest(3, 0).subarray(6),
      encodeMetadataData(3, 0, 300, Buffer.alloc(300, 1)).subarray(6),
      encodePex({ added: [{ host: '10.0.0.1', port: 1 }], dropped: [] }),
    ],
    expected: [WireError],
    run(input) {
      // Each decoder sees every input: a payload is whatever the peer says it is.
      const errors: unknown[] = [];
      for (const decode of [decodeExtendedHandshake, decodeMetadataMessage, decodePex] as Array<(b: Buffer) => unknown>) {
        try {
          decode(input);
        } catch (err) {
          errors.push(err);
        }
      }
      const unexpected = errors.find((e) => !(e instanceof WireError));
      if (unexpected) throw unexpected;
    },
  },
];

/** Random bytes, or a seed mutated: bytes flipped, inserted, deleted, duplicated, cut, or spliced with another seed. */
export function inputs(t: FuzzTarget): fc.Arbitrary<Buffer> {
  const random = fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a));
  const op = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }), times: fc.integer({ min: 2, max: 200 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), other: fc.nat(), from: fc.nat() }),
    fc.record({ kind: fc.constant('number' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff) }),
  );
  const mutated = fc.tuple(fc.nat({ max: t.seeds.length - 1 }), fc.array(op, { minLength: 1, maxLength: 8 })).map(([i, ops]) => {
    let b = Buffer.from(t.seeds[i]!);
    for (const o of ops) {
      const at = b.length === 0 ? 0 : o.at % (b.length + 1);
      switch (o.kind) {
        case 'flip':
          if (b.length > 0) b[at % b.length] = o.value;
          break;
        case 'insert':
          b = Buffer.concat([b.subarray(0, at), Buffer.from(o.bytes), b.subarray(at)]);
          break;
        case 'delete':
          b = Buffer.concat([b.subarray(0, at), b.subarray(at + o.n)]);
          break;
        case 'repeat': {
          const part = b.subarray(at, at + o.n);
          b = Buffer.concat([b.subarray(0, at), ...new Array<Buffer>(o.times).fill(part), b.subarray(at)]);
          break;
        }
        case 'cut':
          b = b.subarray(0, at);
          break;
        case 'splice': {
          const other = t.seeds[o.other % t.seeds.length]!;
          b = Buffer.concat([b.subarray(0, at), other.subarray(o.from % (other.length + 1))]);
          break;
        }
        case 'number':
          if (b.length >= 4) b.writeUInt32BE(o.value >>> 0, Math.min(at, b.length - 4));
          break;
      }
    }
    return b;
  });
  // Nesting bombs: bencode lists and dictionaries opened far deeper than any real message.
  const deep = fc.tuple(fc.constantFrom('l', 'd', 'ld', 'd1:a'), fc.integer({ min: 100, max: 100_000 })).map(([open, n]) => Buffer.from(open.repeat(n)));
  return fc.oneof({ weight: 2, arbitrary: random }, { weight: 7, arbitrary: mutated }, { weight: 1, arbitrary: deep });
}

/** Runs one input; the error when it broke a rule (unexpected error class, over time). */
export function check(t: FuzzTarget, input: Buffer, maxMs: number): Error | null {
  const started = performance.now();
  try {
    t.run(input);
  } catch (err) {
    if (!t.expected.some((E) => err instanceof E)) return err instanceof Error ? err : new Error(String(err));
  }
  const took = performance.now() - started;
  if (took > maxMs) return new Error(`took ${took.toFixed(0)} ms on ${input.length} bytes`);
  return null;
}

/**
 * Fuzz `t` for `ms`; the executions made. A broken rule fails with fast-check's report: the
 * shrunk input, and the seed and path to replay it.
 */
export function fuzz(t: FuzzTarget, ms: number, maxMsPerInput = 2000, seed?: number): number {
  let runs = 0;
  try {
    assertFuzz(t, ms, maxMsPerInput, seed, () => runs++);
  } catch (err) {
    // fast-check's report (seed, path, shrunk input) with what the decoder threw.
    const cause = (err as Error).cause;
    throw new Error(`${t.name}: ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)}\n${(err as Error).message}`);
  }
  return runs;
}

function assertFuzz(t: FuzzTarget, ms: number, maxMsPerInput: number, seed: number | undefined, count: () => void): void {
  fc.assert(
    fc.property(inputs(t), (input) => {
      count();
      const err = check(t, input, maxMsPerInput);
      if (err) throw err;
    }),
    { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: ms, markInterruptAsFailure: false, seed },
  );
}
