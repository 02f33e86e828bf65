/**
 * UploadMemory under pressure: while an upload waits for memory, sockets that hold memory and
 * have taken none of it for PRESSURE_STALL_MS are closed (the others are left alone); with
 * nobody waiting, none is; waiters are woken once per turn of the event loop, not once per
 * release; a reader prefetches nothing while memory is short.
 */
import { expect } from 'chai';
import { UploadMemory, PRESSURE_STALL_MS, type MemoryHolder } from '../../network/storage/upload-memory.js';

function holder(stalledMs: number): MemoryHolder & { evicted: string[] } {
  const evicted: string[] = [];
  return { evicted, stalledFor: () => stalledMs, evict: (why) => void evicted.push(why) };
}

describe('upload memory under pressure', function () {
  it('closes the holders that took nothing for PRESSURE_STALL_MS, only while an upload waits', async function () {
    const mem = new UploadMemory(1024, 512);
    const stuck = holder(PRESSURE_STALL_MS + 500);
    const reading = holder(200);
    mem.holding(stuck, true);
    mem.holding(reading, true);
    expect(mem.short()).to.equal(false);
    expect(mem.relieve(), 'nobody waits: nobody is closed').to.equal(0);
    expect(mem.reserve(1024)).to.equal(true);
    mem.whenFree(() => {});
    expect(mem.short()).to.equal(true);
    expect(mem.relieve()).to.equal(1);
    expect(stuck.evicted).to.deep.equal([`it read none of what we sent for ${((PRESSURE_STALL_MS + 500) / 1000).toFixed(1)} s while other peers wait for upload memory`]);
    expect(reading.evicted, 'a socket that takes what it is sent stays').to.deep.equal([]);
    expect(mem.stats.evicted).to.equal(1);
    expect(mem.relieve(), 'closed once').to.equal(0);
  });

  it('wakes its waiters once per turn of the event loop, however many releases', async function () {
    const mem = new UploadMemory(1024, 512);
    expect(mem.reserve(1024)).to.equal(true);
    let woken = 0;
    for (let i = 0; i < 10; i++) mem.whenFree(() => woken++);
    for (let i = 0; i < 8; i++) mem.release(128);
    expect(woken, 'not at once').to.equal(0);
    await new Promise((r) => setImmediate(r));
    expect(woken, 'each waiter once').to.equal(10);
  });
});
