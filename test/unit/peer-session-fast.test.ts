/**
 * A peer session's fast-extension state (BEP 6) on its own: the allowed-fast set we offer a
 * peer and what a choke keeps of its requests, and the allowed-fast pieces and suggestions it
 * offers us, each bounded. The peer is a stub that records what would go on the wire.
 */
import { expect } from 'chai';
import { PeerSession, MAX_SUGGESTED } from '../../network/swarm/peer-session.js';
import { MAX_ALLOWED_FAST } from '../../network/swarm/allowed-fast.js';
import { RateLimiter } from '../../network/swarm/rate.js';
import { UploadMemory } from '../../network/storage/upload-memory.js';
import { Bitfield } from '../../network/wire/bitfield.js';
import { BLOCK_LENGTH, WireDecoder, type WireMessage } from '../../network/wire/peer-wire.js';
import { reservedBytes } from '../../network/wire/extension.js';
import { buildMetainfo, type Metainfo } from '../../network/metainfo/metainfo.js';
import type { Peer } from '../../network/swarm/peer.js';
import type { PieceReader } from '../../network/storage/piece-reader.js';
import { createLogger } from '../../network/util/log.js';

const PIECE = 2 * BLOCK_LENGTH;

function session(pieces = 100): { s: PeerSession; sent: () => WireMessage[]; m: Metainfo } {
  const m = buildMetainfo({ name: 'f.bin', length: pieces * PIECE, pieceLength: PIECE, pieces: Buffer.alloc(20 * pieces) });
  const out: Buffer[] = [];
  const peer = {
    closed: false,
    outgoing: false,
    address: '10.1.2.3',
    port: 6881,
    label: '10.1.2.3:6881',
    socket: { remoteAddress: '10.1.2.3', writableLength: 0, cork() {}, uncork() {}, once() {} },
    send: (b: Buffer) => void out.push(Buffer.from(b)),
    sendBlock: () => {},
    close() {},
  } as unknown as Peer;
  const s = new PeerSession({
    peer,
    hello: { peerId: Buffer.alloc(20, 1), reserved: reservedBytes() },
    metainfo: m,
    reader: () => ({}) as PieceReader,
    limiter: new RateLimiter(0),
    memory: new UploadMemory(),
    log: createLogger({ level: 'silent' }),
    sent: () => {},
  });
  const sent = (): WireMessage[] => {
    const got: WireMessage[] = [];
    new WireDecoder((x) => got.push(x), 1 << 20, false).push(Buffer.concat(out.splice(0)));
    return got;
  };
  return { s, sent, m };
}

const full = (n: number) => Bitfield.full(n);

describe('peer session: the fast extension (BEP 6)', () => {
  it('offers the pieces of the set that we have and the peer lacks, once; the others as we verify them', () => {
    const { s, sent } = session();
    const have = new Bitfield(100);
    have.set(3);
    have.set(5);
    s.has(5); // the peer has 5 already
    s.offerAllowedFast([3, 5, 7], have);
    expect(s.offeredFast).to.equal(true);
    expect(sent()).to.deep.equal([{ type: 'allowed-fast', index: 3 }]);
    s.offerAllowedFast([3, 5, 7], full(100));
    expect(sent(), 'offered once per connection').to.deep.equal([]);
    s.weVerified(9);
    s.weVerified(7);
    s.weVerified(7);
    expect(sent(), 'a verified piece of the set, once; none outside it').to.deep.equal([{ type: 'allowed-fast', index: 7 }]);
  });

  it('choked, serves allowed-fast requests only, each piece at most twice over', () => {
    const { s } = session();
    s.offerAllowedFast([3], full(100));
    expect(s.takeChokedRequest(4, BLOCK_LENGTH), 'not in the set').to.equal(false);
    let served = 0;
    while (s.takeChokedRequest(3, BLOCK_LENGTH)) served++;
    expect(served * BLOCK_LENGTH).to.equal(2 * PIECE);
  });

  it('a choke drops and rejects every queued request but those of allowed-fast pieces', () => {
    const { s, sent } = session();
    s.offerAllowedFast([3], full(100));
    s.unchoke();
    sent();
    for (const index of [2, 3, 4]) s.queueUpload({ index, begin: 0, length: BLOCK_LENGTH });
    s.choke();
    expect(sent()).to.deep.equal([
      { type: 'choke' },
      { type: 'reject', index: 2, begin: 0, length: BLOCK_LENGTH },
      { type: 'reject', index: 4, begin: 0, length: BLOCK_LENGTH },
    ]);
    expect(s.queuedUploads, 'the allowed-fast request is still queued').to.equal(1);
  });

  it(`keeps at most ${MAX_ALLOWED_FAST} allowed-fast pieces from a peer, forgets one it rejected or we verified`, () => {
    const { s } = session(1000);
    for (let i = 0; i < MAX_ALLOWED_FAST; i++) expect(s.allowFast(i)).to.equal(true);
    expect(s.allowFast(MAX_ALLOWED_FAST), 'beyond the bound: ignored').to.equal(false);
    expect(s.allowFast(0), 'one it gave already').to.equal(true);
    expect(s.allowedFast.size).to.equal(MAX_ALLOWED_FAST);
    s.withdrawFast(0);
    s.weVerified(1);
    expect(s.allowsFast(0) || s.allowsFast(1)).to.equal(false);
    expect(s.allowFast(MAX_ALLOWED_FAST)).to.equal(true);
  });

  it(`keeps the pieces a peer suggests newest first, at most ${MAX_SUGGESTED}, and drops those we verify`, () => {
    const { s } = session();
    for (let i = 0; i < MAX_SUGGESTED + 4; i++) s.suggest(i);
    s.suggest(10);
    expect(s.suggested).to.have.length(MAX_SUGGESTED);
    expect(s.suggested.slice(0, 3)).to.deep.equal([10, MAX_SUGGESTED + 3, MAX_SUGGESTED + 2]);
    expect(s.suggested.filter((i) => i === 10)).to.have.length(1);
    s.weVerified(10);
    expect(s.suggested).to.not.include(10);
  });
});
