/**
 * Limits of the discovery side that no other test reached: the peer registry's share of
 * second-hand peers as sources come and go, its bound on departed ids, and a subscriber
 * that stops reading.
 */
import { expect } from 'chai';
import net from 'node:net';
import { pino } from 'pino';
import type { Logger } from '../../network/util/log.js';
import { PeerRegistry, UNREACHABLE_AFTER } from '../../network/discovery/peer-registry.js';
import { serveControl, MAX_SUBSCRIBER_BACKLOG, type Subscriber } from '../../network/control/control-server.js';
import { encodeMessage, type ControlResponse } from '../../network/wire/control-codec.js';
import { waitFor } from '../helpers.js';

function captureLog(): { logger: Logger; warnings(): string[] } {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { logger, warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
}

describe('review: peer registry bounds', () => {
  it('the second-hand share frees up whichever way a learnt peer goes', () => {
    const r = new PeerRegistry({ maxLearnt: 2, learntTtlMs: 1000 });
    const learn = (i: number) => r.see('peer', { id: `p${i}`, host: '10.3.0.1', port: 2000 + i });
    expect(learn(0)).to.not.equal(null);
    expect(learn(1)).to.not.equal(null);
    expect(learn(2), 'share full').to.equal(null);

    r.remove('10.3.0.1', 2000); // by hand
    expect(learn(2)).to.not.equal(null);
    expect(learn(3)).to.equal(null);

    for (let i = 0; i < UNREACHABLE_AFTER; i++) r.contact('10.3.0.1', 2001, false); // never answers
    expect(r.get('p1')).to.equal(undefined);
    expect(learn(3)).to.not.equal(null);
    expect(learn(4)).to.equal(null);

    // A first-hand source saw it leave: its hearsay goes, and so does its place in the share.
    r.see('multicast', { id: 'p2', host: '10.3.0.1', port: 2002 });
    r.lose('multicast', 'p2', 'goodbye');
    expect(r.get('p2')).to.equal(undefined);
    expect(learn(4)).to.not.equal(null);
    expect(learn(5)).to.equal(null);

    // Confirmed first-hand, then the hearsay fades: still listed, but no longer in the share.
    r.see('multicast', { id: 'p3', host: '10.3.0.1', port: 2003 });
    r.expire(Date.now() + 5000);
    expect(r.get('p3')!.sources).to.deep.equal(new Set(['multicast']));
    expect(r.list('peer')).to.deep.equal([]);
    expect(learn(5)).to.not.equal(null);
    expect(learn(6)).to.not.equal(null);
    expect(learn(7)).to.equal(null);
    expect(r.see('peer', { id: 'p3', host: '10.3.0.1', port: 2003 }), 'hearsay of a listed peer always counts').to.not.equal(null);
    expect(r.list('peer')).to.have.length(3);
  });

  it('remembers at most maxPeers departed ids, forgetting the oldest departure first', () => {
    const r = new PeerRegistry({ maxPeers: 3, learntTtlMs: 60_000 });
    const depart = (id: string) => {
      r.see('bootstrap', { id, host: '10.4.0.1', port: 3000 });
      r.lose('bootstrap', id, 'expired');
    };
    for (const id of ['d0', 'd1', 'd2', 'd3']) depart(id);
    depart('d3'); // leaving again moves it last without pushing another one out
    const hearsay = (id: string) => r.see('peer', { id, host: '10.4.0.2', port: 3000 });
    expect(hearsay('d1'), 'still remembered').to.equal(null);
    expect(hearsay('d2')).to.equal(null);
    expect(hearsay('d3')).to.equal(null);
    expect(hearsay('d0'), 'the oldest departure was forgotten').to.not.equal(null);
  });
});

describe('review: a subscriber that stops reading', () => {
  it('is cut off once MAX_SUBSCRIBER_BACKLOG bytes wait unread, with one warning, and unsubscribed', async () => {
    const log = captureLog();
    let sub: Subscriber | null = null;
    let unsubscribed = 0;
    const server = net.createServer((socket) => {
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
      expect(log.warnings().filter((m) => /does not read/.test(m))).to.have.length(1);
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
