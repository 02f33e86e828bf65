import net from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  WireDecoder, encodeHandshake, encodeBitfield, encodePiece, maxFrameFor, UNCHOKE,
} from '../network/wire/peer-wire.js';
import { Bitfield } from '../network/wire/bitfield.js';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { encodeTorrent, type Metainfo } from '../network/metainfo/metainfo.js';
import type { Node } from '../network/index.js';
import { startNode } from './helpers.js';

export interface FakePeer {
  port: number;
  /** BitTorrent handshakes received so far (control-protocol queries do not count). */
  connections: number;
  /** Requests received so far. */
  requests: number;
  /** Every request and cancel received, in order (piece index and block offset). */
  log: Array<{ type: 'request' | 'cancel'; index: number; begin: number }>;
  /** BitTorrent connections the other side closed. */
  closedByPeer: number;
  close(): Promise<void>;
}

/**
 * A real peer on loopback that lies: it completes the handshake, claims every piece,
 * unchokes, and then answers each request with random bytes ('corrupt') or not at all
 * ('stall'); or ('poison') it never unchokes and keeps sending blocks nobody asked for,
 * garbage for the last block of every piece. Built from Shoal's own codec, so only its
 * behaviour is fake.
 */
export async function fakePeer(m: Metainfo, behaviour: 'corrupt' | 'stall' | 'poison'): Promise<FakePeer> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, requests: 0, closedByPeer: 0 };
  const log: FakePeer['log'] = [];
  const server = net.createServer((sock) => {
    sockets.add(sock);
    let handshook = false;
    sock.on('close', () => {
      // Only closes from the other side: ours happen in close(), after the test.
      if (handshook && sockets.has(sock)) state.closedByPeer++;
      sockets.delete(sock);
    });
    sock.on('error', () => {});
    const decoder = new WireDecoder((msg) => {
      if (msg.type === 'handshake') {
        state.connections++;
        handshook = true;
        sock.write(encodeHandshake(m.infoHash, Buffer.from(`-FK0001-${randomBytes(6).toString('hex')}`)));
        sock.write(encodeBitfield(Bitfield.full(m.pieceCount).bytes));
        if (behaviour !== 'poison') sock.write(UNCHOKE);
        else {
          let i = 0;
          const lastBlock = (index: number) => {
            const size = index === m.pieceCount - 1 ? m.length - index * m.pieceLength : m.pieceLength;
            const begin = Math.floor((size - 1) / 16384) * 16384;
            return encodePiece(index, begin, randomBytes(size - begin));
          };
          const timer = setInterval(() => {
            if (sock.destroyed) return clearInterval(timer);
            state.requests++; // counts the blocks sent here
            sock.write(lastBlock(i++ % m.pieceCount));
          }, 5);
          sock.on('close', () => clearInterval(timer));
        }
      } else if (msg.type === 'cancel') {
        log.push({ type: 'cancel', index: msg.index, begin: msg.begin });
      } else if (msg.type === 'request') {
        state.requests++;
        log.push({ type: 'request', index: msg.index, begin: msg.begin });
        if (behaviour === 'corrupt') sock.write(encodePiece(msg.index, msg.begin, randomBytes(msg.length)));
      }
    }, maxFrameFor(m.pieceCount));
    sock.on('data', (c: Buffer) => {
      try {
        decoder.push(c);
      } catch {
        sock.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    get requests() {
      return state.requests;
    },
    log,
    get closedByPeer() {
      return state.closedByPeer;
    },
    close: async () => {
      const open = [...sockets];
      sockets.clear();
      for (const s of open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A leech whose only peer is a staller for `m`: it downloads `m` (by its .torrent) and the
 * staller takes every request and answers none, so its queue stays full. The caller stops
 * both (`leech.stop()`, `staller.close()`).
 */
export async function leechFromStaller(dir: string, m: Metainfo): Promise<{ leech: Node; staller: FakePeer; infohash: string }> {
  const staller = await fakePeer(m, 'stall');
  const leech = await startNode(path.join(dir, 'leech'), { peers: [{ host: '127.0.0.1', port: staller.port }] });
  const torrent = path.join(dir, 'v.torrent');
  await fsp.writeFile(torrent, encodeTorrent(m));
  const infohash = await leech.download(torrent);
  return { leech, staller, infohash };
}
