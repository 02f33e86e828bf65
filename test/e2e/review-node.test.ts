import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { MAX_SUBSCRIBERS } from '../../network/control/control-service.js';
import { Holders, MAX_HOLDER_ENTRIES, HOLDER_TTL_MS } from '../../network/catalog/holders.js';
import { PeerRegistry } from '../../network/discovery/peer-registry.js';
import { ImportError, BadNameError, ExistsError, NoSpaceError, TooLargeError, SizeMismatchError } from '../../network/library/import.js';
import { PREEMPT_AHEAD_BLOCKS } from '../../network/swarm/streaming.js';
import { BLOCK_LENGTH } from '../../network/wire/peer-wire.js';
import { encodeTorrent } from '../../network/metainfo/metainfo.js';
import { subscribe, type Subscription } from '../../network/control/subscription.js';
import { createLogger } from '../../network/util/log.js';
import { randomFile, startNode, waitFor, rejection, nodesPerTest } from '../helpers.js';
import { fakePeer } from '../fake-peer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('review: limits of the node, the swarm and the holders index', function () {
  this.timeout(60_000);

  describe('holders index', () => {
    const holders = (init: { maxEntries?: number } = {}) =>
      new Holders({ registry: new PeerRegistry(), logger: createLogger({ level: 'silent' }), timeoutMs: 1000, ...init });

    it('beyond maxEntries drops the least recently touched file, and says its count is 0', () => {
      const h = holders({ maxEntries: 3 });
      const events: Array<[string, number]> = [];
      h.on('change', (x, n) => events.push([x, n]));
      h.saw('a', 'n1');
      h.saw('b', 'n1');
      h.saw('c', 'n1');
      h.saw('a', 'n2'); // a is touched again: b is now the least recently touched
      expect([h.count('a'), h.count('b'), h.count('c')]).to.deep.equal([2, 0, 1]);
      expect(events.at(-1)).to.deep.equal(['b', 0]);
    });

    it(`holds at most MAX_HOLDER_ENTRIES (${MAX_HOLDER_ENTRIES}) node-file pairs`, () => {
      const h = holders();
      for (let i = 0; i <= MAX_HOLDER_ENTRIES + 100; i++) h.saw(`f${i}`, 'n1');
      expect(h.count('f0')).to.equal(0);
      expect(h.count('f100')).to.equal(0);
      expect(h.count('f101')).to.equal(1);
      expect(h.count(`f${MAX_HOLDER_ENTRIES + 100}`)).to.equal(1);
    });

    it('a full list replaces what a node shares; a truncated one (MAX_FILES long) only adds; old sightings do not count', () => {
      const h = holders();
      h.replace('n1', ['a', 'b']);
      h.replace('n1', ['c'], false);
      expect([h.count('a'), h.count('b'), h.count('c')]).to.deep.equal([1, 1, 1]);
      h.replace('n1', ['c']);
      expect([h.count('a'), h.count('b'), h.count('c')]).to.deep.equal([0, 0, 1]);
      h.saw('old', 'n2', Date.now() - HOLDER_TTL_MS - 1);
      expect(h.count('old')).to.equal(0);
    });
  });

  it('import errors keep their class, name, code and status', () => {
    const cases: Array<[ImportError, string, string, number]> = [
      [new BadNameError('x'), 'BadNameError', 'EBADNAME', 400],
      [new ExistsError('x'), 'ExistsError', 'EEXIST', 409],
      [new NoSpaceError('x'), 'NoSpaceError', 'ENOSPC', 507],
      [new TooLargeError('x'), 'TooLargeError', 'ETOOLARGE', 413],
      [new SizeMismatchError('x'), 'SizeMismatchError', 'ESIZE', 400],
    ];
    for (const [err, name, code, status] of cases) {
      expect(err).to.be.instanceOf(ImportError);
      expect([err.name, err.code, err.message]).to.deep.equal([name, code, 'x']);
      void status;
      expect(String(err)).to.equal(`${name}: x`);
    }
  });

  describe('on loopback', () => {
    const fx = nodesPerTest();
    const { nodes, fakes } = fx;

    it(`takes a queue back only when more than PREEMPT_AHEAD_BLOCKS (${PREEMPT_AHEAD_BLOCKS}) blocks stand before the wanted piece`, async () => {
      const L = 256 * 1024;
      expect(L / BLOCK_LENGTH, 'one piece is exactly the bound').to.equal(PREEMPT_AHEAD_BLOCKS);
      await randomFile(path.join(fx.dir, 'seed', 'shared', 'video.bin'), 16 * L);
      const seed = await startNode(path.join(fx.dir, 'seed'), { pieceLength: L });
      nodes.push(seed);
      const m = seed.files()[0]!.metainfo;
      const staller = await fakePeer(m, 'stall');
      fakes.push(staller);
      const leech = await startNode(path.join(fx.dir, 'leech'), { peers: [{ host: '127.0.0.1', port: staller.port }] });
      nodes.push(leech);
      const torrent = path.join(fx.dir, 'v.torrent');
      await fsp.writeFile(torrent, encodeTorrent(m));
      const h = await leech.download(torrent);
      await waitFor(() => staller.requests >= 3 * PREEMPT_AHEAD_BLOCKS, 10_000, 'a queue of requests at the staller');
      await sleep(200);
      const order = [...new Set(staller.log.map((e) => e.index))];
      expect(staller.log.slice(0, 2 * PREEMPT_AHEAD_BLOCKS).map((e) => e.index)).to.deep.equal([
        ...Array<number>(PREEMPT_AHEAD_BLOCKS).fill(order[0]!),
        ...Array<number>(PREEMPT_AHEAD_BLOCKS).fill(order[1]!),
      ]);

      // The second piece asked for has exactly PREEMPT_AHEAD_BLOCKS before it: left alone.
      await rejection(leech.readContent(h, order[1]! * L, order[1]! * L + 10, { waitMs: 200 }));
      expect(staller.log.filter((e) => e.type === 'cancel'), 'no cancel at the bound').to.have.length(0);

      // The third has one piece more before it: the queue is taken back, that piece asked first.
      const mark = staller.log.length;
      await rejection(leech.readContent(h, order[2]! * L, order[2]! * L + 10, { waitMs: 300 }));
      const after = staller.log.slice(mark);
      const cancels = after.filter((e) => e.type === 'cancel').length;
      expect(cancels, 'cancels beyond the bound').to.be.greaterThan(2 * PREEMPT_AHEAD_BLOCKS - 1);
      expect(after[cancels]).to.deep.include({ type: 'request', index: order[2] });
    });

    it(`refuses a subscriber beyond MAX_SUBSCRIBERS (${MAX_SUBSCRIBERS}) and takes one again once a slot is free`, async () => {
      const node = await startNode(path.join(fx.dir, 'n'));
      nodes.push(node);
      const subs: Subscription[] = [];
      const open = () =>
        new Promise<{ sub: Subscription; err: Error | null }>((resolve) => {
          const sub: Subscription = subscribe('127.0.0.1', node.port, {
            snapshot: () => resolve({ sub, err: null }),
            event: () => {},
            closed: (err) => resolve({ sub, err }),
          });
          subs.push(sub);
        });
      try {
        const first = await Promise.all(Array.from({ length: MAX_SUBSCRIBERS }, open));
        expect(first.filter((r) => r.err !== null)).to.have.length(0);
        const over = await open();
        expect(over.err?.message).to.include(`refused the subscription: this node already has ${MAX_SUBSCRIBERS} subscribers`);
        first[0]!.sub.close();
        const again = await waitFor(async () => {
          const r = await open();
          return r.err === null ? r : null;
        }, 5_000, 'a free slot after one subscriber left');
        expect(again.err).to.equal(null);
      } finally {
        for (const s of subs) s.close();
      }
    });
  });
});
