/**
 * The control protocol's two ends over real sockets on loopback: the asking side
 * (controlRequest, fetchMetainfo) against small servers that answer well or badly, and the
 * serving side's cut-off of a subscriber that stops reading. The node's own answers and
 * limits are in server.test.ts.
 */
import { expect } from 'chai';
import net from 'node:net';
import {
  LineDecoder, LineTooLongError, ControlProtocolError, MAX_REQUEST_LINE, MAX_RESPONSE_LINE,
  parseRequest, parseResponse, encodeMessage, type ControlResponse,
} from '../../network/wire/control-codec.js';
import { controlRequest, fetchMetainfo } from '../../network/control/control-client.js';
import { TimeoutError, ClosedError } from '../../network/util/errors.js';
import { encodeTorrent } from '../../network/metainfo/metainfo.js';
import { SOME_INFOHASH, smallMetainfo } from '../fixtures.js';
import { serveControl, MAX_SUBSCRIBER_BACKLOG, type Subscriber } from '../../network/control/control-server.js';
import { rejection, waitFor, captureLog } from '../helpers.js';

const HASH = SOME_INFOHASH;
const makeMetainfo = smallMetainfo;

// ---- client against small real servers -------------------------------------------------

interface TestServer {
  port: number;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1:0 that calls `onLine` for each request line it receives. */
async function serve(onLine: (socket: net.Socket, line: string) => void): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const decoder = new LineDecoder(MAX_REQUEST_LINE);
    socket.on('data', (chunk: Buffer) => {
      for (const line of decoder.push(chunk)) onLine(socket, line);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('control client', function () {
  this.timeout(15_000);
  let server: TestServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  it('sends one request line and resolves with the validated answer', async () => {
    let seen: unknown;
    server = await serve((socket, line) => {
      seen = parseRequest(line);
      socket.write(encodeMessage({ type: 'FOUND', files: [{ name: 'a.txt', size: 3, infohash: HASH.toUpperCase() }] }));
    });
    const res = await controlRequest('127.0.0.1', server.port, { type: 'search', filename: 'a' });
    expect(seen).to.deep.equal({ type: 'search', filename: 'a' });
    expect(res).to.deep.equal({ type: 'FOUND', files: [{ name: 'a.txt', size: 3, infohash: HASH }] });
  });

  it('accepts an answer split across writes, with CRLF', async () => {
    server = await serve((socket) => {
      const bytes = Buffer.from('{"type":"PEERS","peers":[{"host":"€.example","port":7}]}\r\n');
      socket.write(bytes.subarray(0, 30));
      setTimeout(() => socket.write(bytes.subarray(30)), 20);
    });
    expect(await controlRequest('127.0.0.1', server.port, { type: 'peers' })).to.deep.equal({
      type: 'PEERS',
      peers: [{ host: '€.example', port: 7 }],
    });
  });

  it('rejects a garbage answer with ControlProtocolError', async () => {
    server = await serve((socket) => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const err = await rejection(controlRequest('127.0.0.1', server.port, { type: 'list' }));
    expect(err).to.be.instanceOf(ControlProtocolError);
    expect(err.message).to.match(/bad JSON/);
  });

  it('rejects a well-formed answer that breaks the schema', async () => {
    server = await serve((socket) => socket.write('{"type":"PEERS","peers":[{"host":"h","port":0}]}\n'));
    const err = await rejection(controlRequest('127.0.0.1', server.port, { type: 'peers' }));
    expect(err).to.be.instanceOf(ControlProtocolError);
    expect(err.message).to.match(/peers\.0\.port/);
  });

  it('rejects an answer longer than MAX_RESPONSE_LINE without waiting for its end', async function () {
    this.timeout(40_000);
    // The line never ends and the connection stays open: only the cap can end the wait before the 30 s timeout.
    server = await serve((socket) => {
      socket.write(Buffer.alloc(MAX_RESPONSE_LINE + 1024 * 1024, 0x61));
    });
    const started = Date.now();
    const err = await rejection(controlRequest('127.0.0.1', server.port, { type: 'list' }, { timeoutMs: 30_000 }));
    expect(err.name).to.equal('LineTooLongError');
    expect(err.message).to.match(new RegExp(`line longer than ${MAX_RESPONSE_LINE} bytes`));
    expect(Date.now() - started).to.be.below(10_000);
  });

  it('fails a stalled peer with TimeoutError', async () => {
    server = await serve(() => {});
    const started = Date.now();
    const err = await rejection(controlRequest('127.0.0.1', server.port, { type: 'list' }, { timeoutMs: 200 }));
    expect(err).to.be.instanceOf(TimeoutError);
    expect(err.name).to.equal('TimeoutError');
    expect(Date.now() - started).to.be.within(150, 3000);
  });

  it('fails with ClosedError when the peer closes before answering', async () => {
    server = await serve((socket) => socket.end());
    const err = await rejection(controlRequest('127.0.0.1', server.port, { type: 'list' }));
    expect(err).to.be.instanceOf(ClosedError);
    expect(err.name).to.equal('ClosedError');
  });

  it('fails with ClosedError when the peer closes in the middle of its answer line', async () => {
    server = await serve((socket) => socket.end('{"type":"LIST","files":['));
    expect(await rejection(controlRequest('127.0.0.1', server.port, { type: 'list' }))).to.be.instanceOf(ClosedError);
  });

  it('propagates connection refused', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const err = await rejection(controlRequest('127.0.0.1', port, { type: 'list' }));
    expect((err as NodeJS.ErrnoException).code).to.equal('ECONNREFUSED');
  });

  it('can be aborted with a signal', async () => {
    server = await serve(() => {});
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await rejection(controlRequest('127.0.0.1', server.port, { type: 'list' }, { signal: ac.signal, timeoutMs: 5000 }));
    expect(err.name).to.equal('AbortError');
  });

  it('fetchMetainfo returns the parsed torrent of the requested infohash', async () => {
    const m = makeMetainfo('movie.mkv');
    server = await serve((socket, line) => {
      const req = parseRequest(line);
      if (req.type === 'metainfo' && req.infohash === m.infoHashHex) {
        socket.write(encodeMessage({ type: 'METAINFO', infohash: m.infoHashHex, torrent: encodeTorrent(m).toString('base64') }));
      } else socket.write(encodeMessage({ type: 'ERROR', error: 'unknown infohash' }));
    });
    const got = await fetchMetainfo('127.0.0.1', server.port, m.infoHashHex.toUpperCase());
    expect(got.infoHashHex).to.equal(m.infoHashHex);
    expect(got.name).to.equal('movie.mkv');
    expect(got.pieces.equals(m.pieces)).to.equal(true);
    const err = await rejection(fetchMetainfo('127.0.0.1', server.port, HASH));
    expect(err.message).to.match(/unknown infohash/);
  });

  it('fetchMetainfo rejects a peer that sends another torrent under the requested infohash', async () => {
    const wanted = makeMetainfo('wanted.bin');
    const other = makeMetainfo('malware.bin');
    server = await serve((socket) => {
      socket.write(encodeMessage({ type: 'METAINFO', infohash: wanted.infoHashHex, torrent: encodeTorrent(other).toString('base64') }));
    });
    const err = await rejection(fetchMetainfo('127.0.0.1', server.port, wanted.infoHashHex));
    expect(err).to.be.instanceOf(ControlProtocolError);
    expect(err.message).to.contain(other.infoHashHex).and.contain(wanted.infoHashHex);
  });

  it('fetchMetainfo rejects bytes that are not a torrent, and a wrong answer type', async () => {
    server = await serve((socket, line) => {
      if (parseRequest(line).type === 'metainfo')
        socket.write(encodeMessage({ type: 'METAINFO', infohash: HASH, torrent: Buffer.from('hello').toString('base64') }));
    });
    expect((await rejection(fetchMetainfo('127.0.0.1', server.port, HASH))).message).to.match(/bad torrent/);
    await server.close();
    server = await serve((socket) => socket.write(encodeMessage({ type: 'LIST', files: [] })));
    expect((await rejection(fetchMetainfo('127.0.0.1', server.port, HASH))).message).to.match(/answered LIST/);
    expect((await rejection(fetchMetainfo('127.0.0.1', server.port, 'nothex'))).name).to.equal('TypeError');
  });
});

describe('control server: a subscriber that stops reading', function () {
  this.timeout(15_000);

  it('is cut off once MAX_SUBSCRIBER_BACKLOG bytes wait unread, with one warning, and unsubscribed', async () => {
    const log = captureLog();
    let sub: Subscriber | null = null;
    let unsubscribed = 0;
    const server = net.createServer((socket) => {
      socket.on('error', () => {}); // as the peer server does: a client's reset is no crash
      socket.once('data', (first: Buffer) =>
        serveControl(socket, first, {
          handle: async () => ({ type: 'ERROR', error: 'not here' }),
          subscribe: (s) => {
            sub = s;
            return { snapshot: { type: 'SUBSCRIBED', files: [] }, unsubscribe: () => unsubscribed++ };
          },
        }, { idleMs: 60_000 }, log.logger),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    client.on('error', () => {}); // the server resets it: that is the point
    try {
      await new Promise<void>((resolve) => client.once('connect', resolve));
      client.write(encodeMessage({ type: 'subscribe' }));
      client.pause(); // and never read again
      const s = await waitFor(() => sub, 2000, 'the subscription');
      const event: ControlResponse = { type: 'EVENT', event: 'file-added', file: { name: 'x'.repeat(1000), size: 1, infohash: 'ab'.repeat(20) } };
      const line = encodeMessage(event).length;
      // The kernel's buffers fill first; past them the backlog grows in the process, up to the cap.
      let sent = 0;
      for (; sent < (64 * 1024 * 1024) / line && unsubscribed === 0; sent++) {
        s.send(event);
        if (sent % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await waitFor(() => unsubscribed === 1, 2000, 'the unsubscribe');
      expect(sent * line, 'cut off well before 64 MiB').to.be.below(64 * 1024 * 1024);
      expect(sent * line).to.be.above(MAX_SUBSCRIBER_BACKLOG);
      for (let i = 0; i < 100; i++) s.send(event); // the node may still push a few
      expect(log.warnings().filter((m) => m === 'dropping a subscriber that does not read its events')).to.have.length(1);
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
