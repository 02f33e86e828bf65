import { expect } from 'chai';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Node } from '../../network/index.js';
import { encodeHandshake, encodeRequest, WireDecoder, type WireMessage, maxFrameFor, INTERESTED } from '../../network/wire/peer-wire.js';
import { tempDir, randomFile, startNode, cleanup, waitFor } from '../helpers.js';

/** A raw client socket that records what it receives and when it is closed. */
async function rawClient(port: number): Promise<{ sock: net.Socket; data: Buffer[]; closed: Promise<void>; text(): string }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const data: Buffer[] = [];
  sock.on('data', (d: Buffer) => data.push(d));
  sock.on('error', () => {});
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  return { sock, data, closed, text: () => Buffer.concat(data).toString('utf8') };
}

async function control(port: number, line: string): Promise<Record<string, unknown>> {
  const c = await rawClient(port);
  let closed = false;
  void c.closed.then(() => (closed = true));
  c.sock.write(`${line}\n`);
  const text = await waitFor(() => {
    if (c.text().includes('\n')) return c.text();
    if (closed) throw new Error('closed without an answer');
    return null;
  }, 5_000, 'control answer');
  c.sock.destroy();
  return JSON.parse(text.split('\n')[0]!) as Record<string, unknown>;
}

describe('peer port: protocol dispatch and limits', function () {
  this.timeout(30_000);
  let dir: string;
  let node: Node;

  beforeEach(async () => {
    dir = await tempDir();
    await randomFile(path.join(dir, 'shared', 'alpha.bin'), 1_500_000);
    await randomFile(path.join(dir, 'shared', 'sub', 'Beta Song.mp3'), 70_000);
    node = await startNode(dir, { timeouts: { handshakeMs: 400, idleMs: 600 }, controlIdleMs: 600, maxConnections: 4 });
  });
  afterEach(async () => {
    await node.stop();
    await cleanup(dir);
  });

  const alive = async () => {
    const res = await control(node.port, '{"type":"list"}');
    expect(res.type, 'the node still serves').to.equal('LIST');
  };

  describe('control protocol', () => {
    it('answers search with FOUND and each file\'s name, size and infohash', async () => {
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
      const alpha = list.find((f) => f.name === 'alpha.bin')!;
      const res = await control(node.port, JSON.stringify({ type: 'metainfo', infohash: alpha.infohash }));
      expect(res.type).to.equal('METAINFO');
      expect(res.infohash).to.equal(alpha.infohash);
      expect(Buffer.from(res.torrent as string, 'base64').subarray(0, 1).toString()).to.equal('d');
      const unknown = await control(node.port, JSON.stringify({ type: 'metainfo', infohash: 'ab'.repeat(20) }));
      expect(unknown.type).to.equal('ERROR');
    });

    it('answers malformed JSON and unknown types with ERROR and closes', async () => {
      for (const bad of ['{not json', '{"type":"launch-missiles"}', '{"type":"search"}', '{"type":"metainfo","infohash":"../x"}']) {
        const c = await rawClient(node.port);
        c.sock.write(`${bad}\n`);
        await c.closed;
        const res = JSON.parse(c.text().split('\n')[0]!) as { type: string; error: string };
        expect(res.type, bad).to.equal('ERROR');
        expect(res.error).to.be.a('string').and.not.equal('');
      }
      await alive();
    });

    it('closes a control line longer than the limit without buffering it', async () => {
      const c = await rawClient(node.port);
      c.sock.write(`{"type":"search","filename":"${'x'.repeat(20_000)}`);
      await c.closed;
      expect(c.text()).to.match(/ERROR/);
      await alive();
    });

    it('closes an idle control connection', async () => {
      const c = await rawClient(node.port);
      c.sock.write('{"type":"list"}\n');
      await c.closed; // idle limit is 600 ms here
      expect(c.text()).to.match(/LIST/);
    });
  });

  describe('BitTorrent side', () => {
    it('refuses a connection that starts with neither 0x13 nor {', async () => {
      const c = await rawClient(node.port);
      c.sock.write('GET / HTTP/1.1\r\n\r\n');
      await c.closed;
      expect(c.data).to.have.length(0);
      await alive();
    });

    it('closes a handshake for a torrent it does not share', async () => {
      const c = await rawClient(node.port);
      c.sock.write(encodeHandshake(randomBytes(20), randomBytes(20)));
      await c.closed;
      await alive();
    });

    it('closes a connection that sends nothing within the handshake timeout', async () => {
      const c = await rawClient(node.port);
      const t0 = Date.now();
      await c.closed;
      expect(Date.now() - t0).to.be.within(300, 3_000);
    });

    it('closes a peer that announces a frame longer than the largest legal one', async () => {
      const m = node.files().find((f) => f.name === 'alpha.bin')!.metainfo;
      const c = await rawClient(node.port);
      c.sock.write(encodeHandshake(m.infoHash, randomBytes(20)));
      const huge = Buffer.alloc(4);
      huge.writeUInt32BE(maxFrameFor(m.pieceCount) + 1);
      c.sock.write(huge);
      await c.closed;
      await alive();
    });

    it('serves verified blocks, and closes a peer that asks for a piece out of range', async () => {
      const m = node.files().find((f) => f.name === 'alpha.bin')!.metainfo;
      const c = await rawClient(node.port);
      const got: WireMessage[] = [];
      const dec = new WireDecoder((msg) => got.push(msg.type === 'piece' ? { ...msg, block: Buffer.from(msg.block) } : msg), maxFrameFor(m.pieceCount));
      c.sock.on('data', (d: Buffer) => dec.push(d));
      c.sock.write(encodeHandshake(m.infoHash, randomBytes(20)));
      c.sock.write(INTERESTED);
      await waitFor(() => got.some((x) => x.type === 'unchoke'), 5_000, 'unchoke');
      expect(got[0]!.type).to.equal('handshake');
      expect(got.some((x) => x.type === 'bitfield')).to.equal(true);
      c.sock.write(encodeRequest(0, 0, 16384));
      const piece = await waitFor(() => got.find((x) => x.type === 'piece'), 5_000, 'piece');
      expect(piece.type === 'piece' && piece.block.length).to.equal(16384);
      c.sock.write(encodeRequest(m.pieceCount + 5, 0, 16384));
      await c.closed;
      await alive();
    });

    it('closes a peer that asks for a block larger than 128 KiB', async () => {
      const m = node.files().find((f) => f.name === 'alpha.bin')!.metainfo;
      const c = await rawClient(node.port);
      c.sock.write(encodeHandshake(m.infoHash, randomBytes(20)));
      c.sock.write(INTERESTED);
      await new Promise((r) => setTimeout(r, 100));
      c.sock.write(encodeRequest(0, 0, 128 * 1024 + 1));
      await c.closed;
      await alive();
    });

    it('closes a peer that queues more requests than it reads (512 at most)', async () => {
      const m = node.files().find((f) => f.name === 'alpha.bin')!.metainfo;
      const c = await rawClient(node.port);
      c.sock.pause(); // read nothing: our side congests and the requests pile up
      c.sock.write(encodeHandshake(m.infoHash, randomBytes(20)));
      c.sock.write(INTERESTED);
      await new Promise((r) => setTimeout(r, 100));
      // Valid requests (the first two pieces are whole 512 KiB ones), far more than 512 of them.
      const burst: Buffer[] = [];
      for (let i = 0; i < 4000; i++) burst.push(encodeRequest(i % 2, (i % 32) * 16384, 16384));
      c.sock.write(Buffer.concat(burst));
      await c.closed;
      await alive();
    });

    it('closes a BitTorrent connection that goes idle', async () => {
      const m = node.files()[0]!.metainfo;
      const c = await rawClient(node.port);
      c.sock.write(encodeHandshake(m.infoHash, randomBytes(20)));
      const t0 = Date.now();
      await c.closed; // idle limit is 600 ms here
      expect(Date.now() - t0).to.be.within(400, 5_000);
    });
  });

  it('refuses connections over the cap and keeps serving the others', async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => rawClient(node.port)));
    await new Promise((r) => setTimeout(r, 50));
    const extra = await rawClient(node.port);
    await extra.closed;
    for (const h of held) h.sock.destroy();
    await waitFor(async () => {
      try {
        return (await control(node.port, '{"type":"list"}')).type === 'LIST';
      } catch {
        return false;
      }
    }, 5_000, 'service after the burst');
  });
});
