import { expect } from 'chai';
import { BufferPool } from '../../network/storage/buffer-pool.js';

describe('buffer pool', function () {
  it('hands out at most `limit` buffers of `size`, each owning its memory', function () {
    const pool = new BufferPool(1024, 3);
    const got = [pool.acquire(), pool.acquire(), pool.acquire()];
    for (const b of got) {
      expect(b).to.be.instanceOf(Buffer);
      expect(b!.length).to.equal(1024);
      // Its own ArrayBuffer, whole: it can be transferred to a hash worker and back.
      expect(b!.byteOffset).to.equal(0);
      expect(b!.buffer.byteLength).to.equal(1024);
    }
    expect(new Set(got.map((b) => b!.buffer)).size, 'three distinct buffers').to.equal(3);
    expect(pool.buffersInUse).to.equal(3);
    expect(pool.acquire(), 'the limit reached').to.equal(null);
    expect(pool.buffersInUse).to.equal(3);
    pool.release(got[1]!);
    expect(pool.buffersInUse).to.equal(2);
    expect(pool.acquire(), 'room again: the one given back').to.equal(got[1]);
  });

  it('reuses what comes back: a thousand rounds make no more than `limit` buffers', function () {
    const pool = new BufferPool(64, 4);
    const seen = new Set<ArrayBufferLike>();
    for (let round = 0; round < 1000; round++) {
      const held = [pool.acquire()!, pool.acquire()!];
      if (round % 3 === 0) held.push(pool.acquire()!);
      for (const b of held) seen.add(b.buffer);
      for (const b of held) pool.release(b);
    }
    expect(seen.size).to.be.at.most(4);
    expect(pool.buffersInUse).to.equal(0);
  });

  it('a detached buffer (lost with a crashed hash worker) is dropped, and its slot freed', function () {
    const pool = new BufferPool(256, 1);
    const b = pool.acquire()!;
    structuredClone(b.buffer, { transfer: [b.buffer as ArrayBuffer] }); // what a transfer to a worker leaves behind
    expect(b.buffer.byteLength).to.equal(0);
    pool.release(b);
    expect(pool.buffersInUse).to.equal(0);
    const fresh = pool.acquire();
    expect(fresh, 'a new buffer, not the dead one').to.not.equal(b);
    expect(fresh!.buffer.byteLength).to.equal(256);
  });
});
