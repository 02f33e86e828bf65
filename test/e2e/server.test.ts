/**
 * The node's one TCP port: the first byte picks the BitTorrent wire or the control
 * protocol, and every hard limit of either closes the connection with its reason.
 *
 * A limit is only proven if nothing else could have closed the socket: the limit tests run
 * with handshake and idle timers of 30 s, assert that the close came within CLOSE_BOUND_MS
 * (far below them), and read the reason from the node's log (the BitTorrent side) or from
 * the ERROR line the control protocol answers with. The timers themselves are tested apart,
 * with short values.
 */
import { expect } from 'chai';
import net from 'node:net';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Node, NodeInit } from '../../network/index.js';
import { MAX_SUBSCRIBERS, MAX_SUBSCRIBERS_PER_ADDRESS } from '../../network/control/control-service.js';
import { MAX_PIPELINED } from '../../network/control/control-server.js';
import { MAX_EARLY_MESSAGES, PEER_WARNINGS_PER_MINUTE } from '../../network/peer-server.js';
import {
  encodeHandshake, encodeRequest, encodeBitfield, encodeHave, WireDecoder, maxFrameFor,
  type WireMessage, INTERESTED, DEFAULT_MAX_FRAME, MAX_REQUEST_LENGTH,
} from '../../network/wire/peer-wire.js';
import { MAX_REQUEST_LINE } from '../../network/wire/control-codec.js';
import { decodeExtendedHandshake, featuresOf, reservedBytes } from '../../network/wire/extension.js';
import { controlRequest, fetchMetainfo } from '../../network/control/control-client.js';
import { subscribe, type Subscription } from '../../network/control/subscription.js';
import { encodeTorrent, pieceSize, type Metainfo } from '../../network/metainfo/metainfo.js';
import { tempDir, randomFile, startNode, cleanup, waitFor, captureLog, type LogRecord } from '../helpers.js';
import { fakePeer, type FakePeer } from '../fake-peer.js';

/** Handshake and idle timers no limit test can run into. */
const LONG_TIMERS: Partial<NodeInit> = { timeouts: { handshakeMs: 30_000, idleMs: 30_000 }, controlIdleMs: 30_000 };
/** A limit closes the connection within this; the timers would take ten times longer. */
const CLOSE_BOUND_MS = 3_000;

interface RawClient {
  sock: net.Socket;
  data: Buffer[];
  closed: Promise<void>;
  isClosed(): boolean;
  text(): string;
}

/** A raw client socket that records what it receives and when it is closed. */
async function rawClient(port: number, localAddress?: string): Promise<RawClient> {
  const sock = net.connect({ port, host: '127.0.0.1', localAddress });
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const data: Buffer[] = [];
  let closed = false;
  sock.on('data', (d: Buffer) => data.push(d));
  sock.on('error', () => {});
  const onClose = new Promise<void>((r) => sock.once('close', () => r()));
  void onClose.then(() => (closed = true));
  return { sock, data, closed: onClose, isClosed: () => closed, text: () => Buffer.concat(data).toString('utf8') };
}

/** Fails unless the node closes `c` within `ms` from now; resolves with how long it took. */
async function closesWithin(c: RawClient, ms = CLOSE_BOUND_MS): Promise<number> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const open = new Promise<'open'>((r) => (timer = setTimeout(() => r('open'), ms)));
  const outcome = await Promise.race([c.closed.then(() => 'closed' as const), open]);
  clearTimeout(timer);
  expect(outcome, `the connection was still open ${ms} ms later`).to.equal('closed');
  return Date.now() - t0;
}

/** A BitTorrent client of `m` whose handshake the node has answered (so the torrent has it). */
async function btClient(port: number, m: Metainfo, reserved?: Buffer): Promise<RawClient & { got: WireMessage[] }> {
  const c = await rawClient(port);
  const got: WireMessage[] = [];
  // Byte fields are views valid during the callback only: keep copies.
  const keep = (msg: WireMessage): WireMessage =>
    msg.type === 'piece' ? { ...msg, block: Buffer.from(msg.block) } : msg.type === 'extended' ? { ...msg, payload: Buffer.from(msg.payload) } : msg;
  const dec = new WireDecoder((msg) => got.push(keep(msg)), 9 + MAX_REQUEST_LENGTH);
  c.sock.on('data', (d: Buffer) => {
    try {
      dec.push(d);
    } catch {
      c.sock.destroy(); // the node sent something this codec refuses: the test then fails on what it expected
    }
  });
  c.sock.write(encodeHandshake(m.infoHash, randomBytes(20), reserved));
  await waitFor(() => got.some((x) => x.type === 'handshake'), 5_000, "the node's handshake");
  return { ...c, got };
}

async function control(port: number, line: string, localAddress?: string): Promise<Record<string, unknown>> {
  const c = await rawClient(port, localAddress);
  c.sock.write(`${line}\n`);
  const text = await waitFor(() => {
    if (c.text().includes('\n')) return c.text();
    if (c.isClosed()) throw new Error('closed without an answer');
    return null;
  }, 5_000, 'control answer');
  c.sock.destroy();
  return JSON.parse(text.split('\n')[0]!) as Record<string, unknown>;
}

/** The metainfo of a file the node shares, asked over its control protocol. */
async function sharedMetainfo(port: number, name: string): Promise<Metainfo> {
  const list = await controlRequest('127.0.0.1', port, { type: 'list' });
  if (list.type !== 'LIST') throw new Error(`answered ${list.type} to list`);
  const f = list.files.find((x) => x.name === name);
  if (!f) throw new Error(`${name} is not shared`);
  return fetchMetainfo('127.0.0.1', port, f.infohash);
}

/** Whether `records` hold one at `level` whose message, or `reason` field, matches `re`. */
function logged(records: LogRecord[], level: number, re: RegExp): boolean {
  return records.some((r) => r.level === level && (re.test(r.msg) || (typeof r.reason === 'string' && re.test(r.reason))));
}

const WARN = 40;
const INFO = 30;
const DEBUG = 20;

describe('peer port: protocol dispatch and limits', function () {
  this.timeout(30_000);
  let dir: string;
  let node: Node;
  let log: ReturnType<typeof captureLog>;
  /** alpha.bin: three pieces of 512 KiB, the last one short. */
  let alpha: Metainfo;

  beforeEach(async () => {
    dir = await tempDir();
    await randomFile(path.join(dir, 'shared', 'alpha.bin'), 1_500_000);
    await randomFile(path.join(dir, 'shared', 'sub', 'Beta Song.mp3'), 70_000);
    log = captureLog();
    node = await startNode(dir, { ...LONG_TIMERS, logger: log.logger });
    alpha = await sharedMetainfo(node.port, 'alpha.bin');
  });
  afterEach(async () => {
    await node.stop();
    await cleanup(dir);
  });

  /** The same node started again with `init` (for a test of one option). */
  const restart = async (init: Partial<NodeInit>) => {
    await node.stop();
    node = await startNode(dir, { ...LONG_TIMERS, logger: log.logger, ...init });
  };
  const alive = async () => {
    const res = await control(node.port, '{"type":"list"}');
    expect(res.type, 'the node still serves').to.equal('LIST');
  };
  /** Waits briefly for the record: the log line and the close happen in the same turn, but the client hears later. */
  const expectLogged = (level: number, re: RegExp) => waitFor(() => logged(log.records, level, re), 1_000, `a log record matching ${re}`);

  describe('control protocol', () => {
    it("answers search with FOUND and each file's name, size and infohash", async () => {
      const res = await control(node.port, '{"type":"search","filename":"beta"}');
      expect(res.type).to.equal('FOUND');
      const files = res.files as Array<{ name: string; size: number; infohash: string }>;
      expect(files).to.have.length(1);
      expect(files[0]!.name).to.equal('sub/Beta Song.mp3');
      expect(files[0]!.size).to.equal(70_000);
      expect(files[0]!.infohash).to.match(/^[0-9a-f]{40}$/);
    });

    it('answers NOT_FOUND for no match, and treats the query as text', async () => {
      expect((await control(node.port, '{"type":"search","filename":"zzz"}')).type).to.equal('NOT_FOUND');
      expect((await control(node.port, '{"type":"search","filename":"../../etc/passwd"}')).type).to.equal('NOT_FOUND');
      expect((await control(node.port, '{"type":"search","filename":".*"}')).type).to.equal('NOT_FOUND');
    });

    it('lists every shared file and returns the metainfo of one', async () => {
      const list = (await control(node.port, '{"type":"list"}')).files as Array<{ name: string; infohash: string }>;
      expect(list.map((f) => f.name).sort()).to.deep.equal(['alpha.bin', 'sub/Beta Song.mp3']);
      const a = list.find((f) => f.name === 'alpha.bin')!;
      const res = await control(node.port, JSON.stringify({ type: 'metainfo', infohash: a.infohash }));
      expect(res.type).to.equal('METAINFO');
      expect(res.infohash).to.equal(a.infohash);
      expect(Buffer.from(res.torrent as string, 'base64').subarray(0, 1).toString()).to.equal('d');
      const unknown = await control(node.port, JSON.stringify({ type: 'metainfo', infohash: 'ab'.repeat(20) }));
      expect(unknown.type).to.equal('ERROR');
    });

    it('answers bad JSON, an unknown type and a field that fails its schema with an ERROR naming the fault, and closes', async () => {
      const cases: Array<[string, RegExp]> = [
        ['{not json', /^bad JSON in request/],
        ['{"type":1}', /^request has no "type" string$/],
        ['{"type":"launch-missiles"}', /^unknown request type "launch-missiles"/],
        ['{"type":"search"}', /^bad search request: field "filename"/],
        [JSON.stringify({ type: 'search', filename: 'x'.repeat(257) }), /^bad search request: field "filename"/],
        ['{"type":"metainfo","infohash":"../x"}', /^bad metainfo request: field "infohash": must be 40 hex digits$/],
      ];
      for (const [bad, reason] of cases) {
        const c = await rawClient(node.port);
        c.sock.write(`${bad}\n`);
        await closesWithin(c);
        const res = JSON.parse(c.text().split('\n')[0]!) as { type: string; error: string };
        expect(res.type, bad).to.equal('ERROR');
        expect(res.error, bad).to.match(reason);
      }
      await alive();
    });

    it(`answers a request line of exactly MAX_REQUEST_LINE (${MAX_REQUEST_LINE}) bytes; one byte more is an ERROR and the close`, async () => {
      const line = (bytes: number) => `{"type":"list"${' '.repeat(bytes - '{"type":"list"}'.length)}}`;
      expect(Buffer.byteLength(line(MAX_REQUEST_LINE))).to.equal(MAX_REQUEST_LINE);
      expect((await control(node.port, line(MAX_REQUEST_LINE))).type).to.equal('LIST');
      const c = await rawClient(node.port);
      c.sock.write(`${line(MAX_REQUEST_LINE + 1)}\n`);
      await closesWithin(c);
      expect(c.text()).to.match(new RegExp(`"error":"request line longer than ${MAX_REQUEST_LINE} bytes"`));
      await alive();
    });

    it('closes a control line longer than the limit before its end arrives', async () => {
      const c = await rawClient(node.port);
      c.sock.write(`{"type":"search","filename":"${'x'.repeat(20_000)}`);
      await closesWithin(c);
      expect(c.text()).to.match(new RegExp(`"error":"request line longer than ${MAX_REQUEST_LINE} bytes"`));
      await alive();
    });

    it(`closes a connection with more than MAX_PIPELINED (${MAX_PIPELINED}) requests waiting, and answers an honest one meanwhile`, async () => {
      const flood = await rawClient(node.port);
      flood.sock.pause(); // reads none of its answers
      flood.sock.write('{"type":"list"}\n'.repeat(20_000));
      const t0 = Date.now();
      expect((await control(node.port, '{"type":"search","filename":"beta"}')).type, 'an honest search during the flood').to.equal('FOUND');
      expect(Date.now() - t0, 'answered at once').to.be.below(CLOSE_BOUND_MS);
      await expectLogged(WARN, new RegExp(`^closing control connection: more than ${MAX_PIPELINED} requests waiting for their answers$`));
      flood.sock.resume();
      await closesWithin(flood);
    });

    it('stops reading a client that does not read its answers, under the limit: it costs nothing and others are served', async () => {
      const slow = await rawClient(node.port);
      slow.sock.pause();
      slow.sock.write('{"type":"list"}\n'.repeat(MAX_PIPELINED - 1));
      for (let i = 0; i < 3; i++) expect((await control(node.port, '{"type":"list"}')).type).to.equal('LIST');
      slow.sock.resume();
      await waitFor(() => (slow.text().match(/"LIST"/g) ?? []).length === MAX_PIPELINED - 1, 5_000, 'every answer once it reads');
      expect(slow.isClosed()).to.equal(false);
      slow.sock.destroy();
    });

    it('cuts off a subscriber that keeps sending requests (past 64 KiB of them) with an ERROR', async () => {
      const c = await rawClient(node.port);
      c.sock.write('{"type":"subscribe"}\n');
      await waitFor(() => c.text().includes('"SUBSCRIBED"'), 5_000, 'the snapshot');
      c.sock.write(`${'{"type":"list"}\n'.repeat(1024)}`); // 16 KiB: ignored
      await new Promise((r) => setTimeout(r, 200));
      expect(c.isClosed(), 'a little is ignored').to.equal(false);
      c.sock.write(`${'{"type":"list"}\n'.repeat(4096)}`); // 64 KiB more
      await closesWithin(c);
      expect(c.text()).to.match(/"error":"requests after subscribe are not allowed"/);
      expect(c.text()).to.not.match(/"LIST"/);
    });

    it(`shares MAX_SUBSCRIBERS (${MAX_SUBSCRIBERS}) slots fairly: ${MAX_SUBSCRIBERS_PER_ADDRESS} per address, and a newcomer takes one from the address holding the most`, async function () {
      const subs: Subscription[] = [];
      const open = (from: string) =>
        new Promise<{ sub: Subscription; err: Error | null }>((resolve) => {
          const sub: Subscription = subscribe('127.0.0.1', node.port, {
            snapshot: () => resolve({ sub, err: null }),
            event: () => {},
            closed: (err) => resolve({ sub, err }),
          }, { localAddress: from });
          subs.push(sub);
        });
      const ended: Error[] = [];
      try {
        // Four addresses of the loopback net fill every slot; none of these subscribers reads past its snapshot.
        const addresses = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
        const holders: Array<{ sub: Subscription; err: Error | null; ended?: Error }> = [];
        for (const a of addresses) {
          for (let i = 0; i < MAX_SUBSCRIBERS / addresses.length; i++) {
            const r = await new Promise<{ sub: Subscription; err: Error | null }>((resolve) => {
              let settled = false;
              const sub: Subscription = subscribe('127.0.0.1', node.port, {
                snapshot: () => ((settled = true), resolve({ sub, err: null })),
                event: () => {},
                closed: (err) => (settled ? err && ended.push(err) : resolve({ sub, err })),
              }, { localAddress: a });
              subs.push(sub);
            });
            holders.push(r);
          }
        }
        expect(holders.filter((r) => r.err !== null)).to.have.length(0);
        // An address at its share is refused, with the reason.
        const over = await open('127.0.0.1');
        expect(over.err, 'the subscription past the per-address share is refused').to.be.an('error');
        expect(over.err!.message).to.include(`refused the subscription: this node has no subscriber slot for you: ${MAX_SUBSCRIBERS_PER_ADDRESS} subscribers from 127.0.0.1 already`);
        // A fifth address gets a slot: the oldest subscriber of an address holding the most gives it up, told why.
        const fresh = await open('127.0.0.5');
        expect(fresh.err).to.equal(null);
        await waitFor(() => ended.length === 1, 5_000, 'one subscriber to be ended');
        expect(ended[0]!.message).to.include('ended the subscription: subscription ended: your address holds the most subscriber slots');
        await expectLogged(INFO, /^ending a subscription: its address holds the most subscriber slots, and another address needs one$/);
      } finally {
        for (const s of subs) s.close();
      }
    });
  });

  describe('BitTorrent side', () => {
    it('refuses a connection that starts with neither 0x13 nor {', async () => {
      const c = await rawClient(node.port);
      c.sock.write('GET / HTTP/1.1\r\n\r\n');
      await closesWithin(c);
      expect(c.data).to.have.length(0);
      await expectLogged(WARN, /^refusing connection: neither a BitTorrent handshake nor a control message$/);
      await alive();
    });

    it('closes a handshake for a torrent it does not share, without answering it', async () => {
      const c = await rawClient(node.port);
      c.sock.write(encodeHandshake(randomBytes(20), randomBytes(20)));
      await closesWithin(c);
      expect(c.data).to.have.length(0);
      await expectLogged(INFO, /^closing peer: asked for a torrent we do not share$/);
      await alive();
    });

    it(`closes a peer that sends more than MAX_EARLY_MESSAGES (${MAX_EARLY_MESSAGES}) messages while its torrent is looked up`, async () => {
      const c = await rawClient(node.port);
      const haves = Array.from({ length: MAX_EARLY_MESSAGES + 1 }, () => encodeHave(0));
      // One packet: every message is decoded before the lookup of the torrent can answer.
      c.sock.write(Buffer.concat([encodeHandshake(alpha.infoHash, randomBytes(20)), ...haves]));
      await closesWithin(c);
      await expectLogged(WARN, new RegExp(`^closing peer: more than ${MAX_EARLY_MESSAGES} messages before its torrent was found$`));
      const fine = await rawClient(node.port);
      fine.sock.write(Buffer.concat([encodeHandshake(alpha.infoHash, randomBytes(20)), ...haves.slice(0, MAX_EARLY_MESSAGES)]));
      await waitFor(() => fine.data.length > 0, 3_000, 'a handshake back for a peer within the bound');
      expect(fine.isClosed()).to.equal(false);
      fine.sock.destroy();
      await alive();
    });

    it('closes a peer that announces a frame longer than the largest legal one, before and after the torrent is known', async () => {
      // In the handshake's own packet: the torrent is still being looked up.
      const early = await rawClient(node.port);
      const huge = Buffer.alloc(4);
      huge.writeUInt32BE(DEFAULT_MAX_FRAME + 1);
      early.sock.write(Buffer.concat([encodeHandshake(alpha.infoHash, randomBytes(20)), huge]));
      await closesWithin(early);
      await expectLogged(DEBUG, new RegExp(`^protocol violation: frame of ${DEFAULT_MAX_FRAME + 1} bytes exceeds the limit of ${DEFAULT_MAX_FRAME}$`));

      // After the node answered the handshake: the torrent's own limit applies.
      const late = await btClient(node.port, alpha);
      const limit = maxFrameFor(alpha.pieceCount);
      huge.writeUInt32BE(limit + 1);
      late.sock.write(huge);
      await closesWithin(late);
      await expectLogged(DEBUG, new RegExp(`^protocol violation: frame of ${limit + 1} bytes exceeds the limit of ${limit}$`));
      await alive();
    });

    it('serves a verified block of 16 KiB and one of MAX_REQUEST_LENGTH (128 KiB); one byte more closes the peer', async () => {
      const c = await btClient(node.port, alpha);
      c.sock.write(INTERESTED);
      await waitFor(() => c.got.some((x) => x.type === 'unchoke'), 5_000, 'unchoke');
      expect(c.got.some((x) => x.type === 'bitfield')).to.equal(true);
      c.sock.write(encodeRequest(0, 0, 16384));
      c.sock.write(encodeRequest(1, 0, MAX_REQUEST_LENGTH));
      const pieces = await waitFor(() => {
        const p = c.got.filter((x) => x.type === 'piece');
        return p.length === 2 ? p : null;
      }, 5_000, 'two blocks');
      expect(pieces.map((p) => p.type === 'piece' && [p.index, p.block.length])).to.deep.equal([[0, 16384], [1, MAX_REQUEST_LENGTH]]);
      c.sock.write(encodeRequest(0, 0, MAX_REQUEST_LENGTH + 1));
      await closesWithin(c);
      await expectLogged(WARN, new RegExp(`^closing peer: request 0/0\\+${MAX_REQUEST_LENGTH + 1} outside the piece$`));
      await alive();
    });

    it('closes a peer that asks for a piece out of range, past the end of a piece, or zero bytes, or says it has a piece out of range', async () => {
      const last = alpha.pieceCount - 1;
      const end = pieceSize(alpha, last);
      const cases: Array<[Buffer, RegExp]> = [
        [encodeRequest(alpha.pieceCount, 0, 16384), new RegExp(`^closing peer: request for piece ${alpha.pieceCount} out of range$`)],
        [encodeRequest(last, end - 100, 16384), new RegExp(`^closing peer: request ${last}/${end - 100}\\+16384 outside the piece$`)],
        [encodeRequest(0, 0, 0), /^closing peer: request 0\/0\+0 outside the piece$/],
        [encodeHave(alpha.pieceCount + 5), new RegExp(`^closing peer: have for piece ${alpha.pieceCount + 5} out of range$`)],
      ];
      for (const [msg, reason] of cases) {
        const c = await btClient(node.port, alpha);
        c.sock.write(msg);
        await closesWithin(c);
        await expectLogged(WARN, reason);
      }
      await alive();
    });

    it('closes a peer that sends a bitfield of the wrong length, or with spare bits set', async () => {
      const bytes = Math.ceil(alpha.pieceCount / 8);
      const spare = bytes * 8 - alpha.pieceCount;
      expect(spare, 'the torrent has spare bits').to.be.above(0);
      for (const bits of [Buffer.alloc(bytes + 1), Buffer.from([...Buffer.alloc(bytes - 1), 1])]) {
        const c = await btClient(node.port, alpha);
        c.sock.write(encodeBitfield(bits));
        await closesWithin(c);
      }
      expect(log.warnings().filter((m) => m === 'closing peer: malformed bitfield')).to.have.length(2);
      await alive();
    });

    it('says what it speaks (extension protocol, fast extension, reqq 512, its metadata size) and answers a fast peer with have-all', async () => {
      const c = await btClient(node.port, alpha, reservedBytes());
      const theirs = c.got.find((x) => x.type === 'handshake');
      expect(theirs?.type === 'handshake' && featuresOf(theirs.reserved)).to.deep.include({ extensions: true, fast: true });
      const ext = await waitFor(() => c.got.find((x) => x.type === 'extended' && x.id === 0), 3_000, 'the extended handshake');
      const h = decodeExtendedHandshake(ext.type === 'extended' ? ext.payload : Buffer.alloc(0));
      expect(h.reqq).to.equal(512);
      expect(h.metadataSize).to.equal(alpha.info.length);
      expect(h.m.get('ut_metadata')).to.be.a('number');
      await waitFor(() => c.got.some((x) => x.type === 'have-all'), 3_000, 'have-all instead of a bitfield');
      expect(c.got.some((x) => x.type === 'bitfield')).to.equal(false);
      c.sock.destroy();
    });

    it('answers requests beyond its queue (maxQueuedUploads, 512) with BEP 6 rejects, and keeps the peer', async () => {
      const c = await btClient(node.port, alpha, reservedBytes());
      c.sock.write(INTERESTED);
      await waitFor(() => c.got.some((x) => x.type === 'unchoke'), 3_000, 'unchoke');
      // Valid requests (the first two pieces are whole 512 KiB ones), far more than 512, in one write.
      const burst: Buffer[] = [];
      for (let i = 0; i < 1000; i++) burst.push(encodeRequest(i % 2, (i % 32) * 16384, 16384));
      c.sock.write(Buffer.concat(burst));
      const answered = () => c.got.filter((x) => x.type === 'piece' || x.type === 'reject').length;
      await waitFor(() => answered() === 1000, 10_000, 'an answer (a block or a reject) to every request');
      const rejects = c.got.filter((x) => x.type === 'reject').length;
      expect(rejects, 'the requests beyond the queue').to.be.greaterThan(0);
      expect(1000 - rejects, 'at least a full queue served').to.be.at.least(512);
      expect(c.isClosed(), 'never closed for it').to.equal(false);
      expect(logged(log.records, WARN, /too many queued requests/)).to.equal(false);
      c.sock.destroy();
      await alive();
    });

    it('refuses connections over maxConnections at once, and keeps serving the others', async () => {
      await restart({ maxConnections: 4, maxConnectionsPerAddress: 4 });
      // Silent connections: only the cap can close the fifth before the 30 s handshake timer.
      // One per address: no address holds more than the newcomer's, so none gives way.
      const held = await Promise.all([1, 2, 3, 4].map((i) => rawClient(node.port, `127.0.0.${i}`)));
      const extra = await rawClient(node.port, '127.0.0.5');
      await closesWithin(extra);
      await expectLogged(WARN, /^refusing connection: all 4 connections taken$/);
      expect(held.filter((h) => h.isClosed()), 'the connections under the cap stay').to.have.length(0);
      for (const h of held) h.sock.destroy();
      await waitFor(async () => {
        try {
          return (await control(node.port, '{"type":"list"}')).type === 'LIST';
        } catch {
          return false;
        }
      }, 5_000, 'service after the burst');
    });

    it('refuses an address over maxConnectionsPerAddress, and serves another address meanwhile', async () => {
      await restart({ maxConnections: 16, maxConnectionsPerAddress: 3 });
      const held = await Promise.all([1, 2, 3].map(() => rawClient(node.port, '127.0.0.7')));
      const extra = await rawClient(node.port, '127.0.0.7');
      await closesWithin(extra);
      await expectLogged(WARN, /^refusing connection: 3 connections from 127\.0\.0\.7 already$/);
      expect((await control(node.port, '{"type":"list"}', '127.0.0.1')).type).to.equal('LIST');
      expect(held.filter((h) => h.isClosed())).to.have.length(0);
      for (const h of held) h.sock.destroy();
    });

    it('when every slot is held by one address, a connection from another takes the oldest of them and is served', async () => {
      await restart({ maxConnections: 4, maxConnectionsPerAddress: 4 });
      const held: RawClient[] = [];
      for (let i = 0; i < 4; i++) held.push(await rawClient(node.port, '127.0.0.8'));
      // Without fair sharing this one would be refused (the test above), or wait 30 s for a handshake timer.
      const res = await control(node.port, '{"type":"list"}', '127.0.0.1');
      expect(res.type).to.equal('LIST');
      await closesWithin(held[0]!);
      expect(held.slice(1).filter((h) => h.isClosed()), 'only the oldest gave way').to.have.length(0);
      await expectLogged(WARN, /^closing connection: its address holds the most of the slots, and another address needs one$/);
      for (const h of held) h.sock.destroy();
    });

    it(`logs at most ${PEER_WARNINGS_PER_MINUTE} warnings a minute about refused connections`, async () => {
      const before = log.records.filter((r) => r.level === WARN).length;
      const bad = await Promise.all(Array.from({ length: 100 }, () => rawClient(node.port)));
      for (const c of bad) c.sock.write('GET / HTTP/1.1\r\n\r\n');
      await Promise.all(bad.map((c) => closesWithin(c, 10_000)));
      const warned = log.records.filter((r) => r.level === WARN).length - before;
      expect(warned, 'refusals logged').to.be.within(1, PEER_WARNINGS_PER_MINUTE);
      await alive();
    });
  });

  describe('a download in progress', () => {
    let leech: Node | null = null;
    let staller: FakePeer | null = null;
    afterEach(async () => {
      await leech?.stop();
      await staller?.close();
      leech = staller = null;
    });

    it('closes a peer that asks for a piece it never announced', async () => {
      // A leech whose only source never sends a block: it has nothing, yet serves the torrent.
      staller = await fakePeer(alpha, 'stall');
      leech = await startNode(path.join(dir, 'leech'), { ...LONG_TIMERS, logger: log.logger, peers: [{ host: '127.0.0.1', port: staller.port }] });
      const torrent = path.join(dir, 'alpha.torrent');
      await fsp.writeFile(torrent, encodeTorrent(alpha));
      await leech.download(torrent);
      await waitFor(() => staller!.requests > 0, 5_000, 'the download to ask the staller');
      const c = await btClient(leech.port, alpha);
      expect(c.got.some((x) => x.type === 'bitfield'), 'it announced nothing').to.equal(false);
      c.sock.write(encodeRequest(0, 0, 16384));
      await closesWithin(c);
      await expectLogged(WARN, /^closing peer: request for piece 0, which we never announced$/);
    });
  });
});

describe('peer port: timers', function () {
  this.timeout(30_000);
  let dir: string;
  let node: Node;
  let log: ReturnType<typeof captureLog>;

  beforeEach(async () => {
    dir = await tempDir();
    await randomFile(path.join(dir, 'shared', 'alpha.bin'), 100_000);
    log = captureLog();
    node = await startNode(dir, { timeouts: { handshakeMs: 400, idleMs: 600 }, controlIdleMs: 600, logger: log.logger });
  });
  afterEach(async () => {
    await node.stop();
    await cleanup(dir);
  });

  it('closes a connection that sends nothing within the handshake timeout', async () => {
    const c = await rawClient(node.port);
    expect(await closesWithin(c)).to.be.at.least(300);
    expect(logged(log.records, WARN, /^closing connection: nothing received within 400 ms$/)).to.equal(true);
  });

  it('closes a connection whose handshake does not complete within the handshake timeout', async () => {
    const c = await rawClient(node.port);
    c.sock.write(Buffer.from([0x13, 0x42])); // the first bytes of a handshake, then nothing
    expect(await closesWithin(c)).to.be.at.least(300);
    // Held by the server until the protocol string is whole (an MSE key may start with 0x13 too).
    await waitFor(() => logged(log.records, WARN, /^closing connection: no complete handshake within 400 ms$/), 1_000, 'the reason');
  });

  it('closes a BitTorrent connection that goes idle', async () => {
    const m = await sharedMetainfo(node.port, 'alpha.bin');
    const c = await btClient(node.port, m);
    // The idle check runs once a second.
    expect(await closesWithin(c, 5_000)).to.be.at.least(400);
    await waitFor(() => logged(log.records, DEBUG, /^idle for 600 ms$/), 1_000, 'the reason');
  });

  it('closes a control connection that keeps sending bytes but never ends its line (slow loris)', async () => {
    await node.stop();
    node = await startNode(dir, { controlIdleMs: 30_000, controlLineDeadlineMs: 500, logger: log.logger });
    const c = await rawClient(node.port);
    c.sock.write('{"type":');
    // A byte every 100 ms would reset an idle timer forever; the line deadline does not care.
    const drip = setInterval(() => c.sock.writable && c.sock.write(' '), 100);
    try {
      expect(await closesWithin(c)).to.be.at.least(400);
    } finally {
      clearInterval(drip);
    }
    expect(c.text()).to.include('"error":"request line not completed within 500 ms"');
    expect(logged(log.records, WARN, /^closing control connection: request line not completed within 500 ms$/)).to.equal(true);
  });

  it('closes an idle control connection even if it sends empty lines', async () => {
    const c = await rawClient(node.port);
    c.sock.write('{"type":"list"}\n');
    const drip = setInterval(() => c.sock.writable && c.sock.write('\n'), 100);
    try {
      expect(await closesWithin(c)).to.be.at.least(400);
    } finally {
      clearInterval(drip);
    }
    expect(c.text()).to.match(/LIST/);
    await waitFor(() => logged(log.records, DEBUG, /^closing idle control connection$/), 1_000, 'the reason');
  });

  it('closes an idle control connection, answers first', async () => {
    const c = await rawClient(node.port);
    c.sock.write('{"type":"list"}\n');
    expect(await closesWithin(c)).to.be.at.least(400);
    expect(c.text()).to.match(/LIST/);
    await waitFor(() => logged(log.records, DEBUG, /^closing idle control connection$/), 1_000, 'the reason');
  });
});
