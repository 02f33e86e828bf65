/** The holders index on its own (who else has a file): its bounds and how sightings replace each other. No sockets. */
import { expect } from 'chai';
import { Holders, MAX_HOLDER_ENTRIES, HOLDER_TTL_MS } from '../../network/catalog/holders.js';
import { PeerRegistry } from '../../network/discovery/peer-registry.js';
import { createLogger } from '../../network/util/log.js';

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
