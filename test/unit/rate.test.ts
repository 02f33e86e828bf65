/**
 * RateMeter and RateLimiter on a clock the test moves by hand, so every figure is exact;
 * one run on the real clock checks the limiter's long-run rate.
 */
import { expect } from 'chai';
import { RateLimiter, RateMeter } from '../../network/swarm/rate.js';

/** A clock that moves only when told; starts on a whole second. */
function manualClock(start = 1_700_000_000_000) {
  const c = {
    t: start,
    now: () => c.t,
    advance(ms: number) {
      c.t += ms;
    },
  };
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How many timers `fn` sets (it runs synchronously, so nothing else sets one meanwhile). */
function countTimers(fn: () => void): number {
  const real = globalThis.setTimeout;
  let n = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    n++;
    return real(...args);
  }) as typeof setTimeout;
  try {
    fn();
  } finally {
    globalThis.setTimeout = real;
  }
  return n;
}

/** Whether `p` has settled, without waiting for it. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await sleep(0);
  return done;
}

describe('rate meter', function () {
  it('a steady flow reads as its rate, and the total counts everything', function () {
    const clock = manualClock();
    const meter = new RateMeter(clock.now);
    // 1,000 B/s as 100 bytes every 100 ms, for 10 seconds.
    for (let i = 0; i < 100; i++) {
      meter.add(100);
      clock.advance(100);
      if (i >= 50) expect(meter.rate()).to.be.closeTo(1000, 1000 * 0.1);
    }
    expect(meter.total).to.equal(10_000);
  });

  it('the window is five one-second buckets, the current one weighted by the time it has run', function () {
    const clock = manualClock();
    const meter = new RateMeter(clock.now);
    meter.add(4100);
    // 0 s into the current second counts as 0.1 s: 4100 / (4 + 0.1).
    expect(meter.rate()).to.be.closeTo(1000, 1e-3);
    clock.advance(500);
    expect(meter.rate()).to.be.closeTo(4100 / 4.5, 1e-3);
    clock.advance(1500); // two seconds on: the bytes sit in a completed bucket
    expect(meter.rate()).to.be.closeTo(4100 / 4.1, 1e-3);
    clock.advance(2900); // 4.9 s after them: still in the window
    expect(meter.rate()).to.be.closeTo(4100 / 4.9, 1e-3);
    clock.advance(100); // 5 s: out of it
    expect(meter.rate()).to.equal(0);
    expect(meter.total).to.equal(4100);
  });

  it('an idle gap longer than the window clears every bucket, whatever the gap', function () {
    const clock = manualClock();
    const meter = new RateMeter(clock.now);
    for (let s = 0; s < 5; s++) {
      meter.add(1000);
      clock.advance(1000);
    }
    expect(meter.rate()).to.be.greaterThan(0);
    clock.advance(3_600_000 + 300); // an hour: the bucket of this second is an old one's slot again
    expect(meter.rate()).to.equal(0);
    meter.add(50);
    expect(meter.rate()).to.be.closeTo(50 / 4.3, 1e-3);
  });

  it('on the real clock by default', async function () {
    const meter = new RateMeter();
    meter.add(1000);
    expect(meter.rate()).to.be.greaterThan(0);
    expect(meter.total).to.equal(1000);
  });
});

describe('rate limiter', function () {
  it('with no limit, take answers null at once and starts no timer', async function () {
    const unlimited = new RateLimiter(0);
    expect(unlimited.limited).to.equal(false);
    const timersSet = countTimers(() => {
      for (let i = 0; i < 1000; i++) expect(unlimited.take(1 << 20)).to.equal(null);
    });
    expect(timersSet).to.equal(0);
    // The count does see the limiter's timer: a limited take that must wait sets one.
    const clock = manualClock();
    const limited = new RateLimiter(1000, clock.now);
    const waits: Array<Promise<void> | null> = [];
    expect(countTimers(() => waits.push(limited.take(1000), limited.take(1)))).to.equal(1);
    expect(waits[0]).to.equal(null);
    clock.advance(1);
    await waits[1];
  });

  it('starts with one second of tokens: takes within them answer null, the next waits', async function () {
    const clock = manualClock();
    const limiter = new RateLimiter(1000, clock.now);
    expect(limiter.limited).to.equal(true);
    expect(limiter.take(600)).to.equal(null);
    expect(limiter.take(400)).to.equal(null);
    const p = limiter.take(1)!;
    expect(p).to.be.instanceOf(Promise);
    await sleep(60); // the limiter's timer runs; its clock has not moved
    expect(await settled(p)).to.equal(false);
    clock.advance(1); // 1 ms at 1000 B/s is one byte
    await p;
  });

  it('waiters are served in order: a small take waits behind a big one even when tokens would cover it', async function () {
    const clock = manualClock();
    const limiter = new RateLimiter(1000, clock.now);
    expect(limiter.take(1000)).to.equal(null);
    const served: string[] = [];
    const big = limiter.take(500)!.then(() => served.push('big'));
    clock.advance(100); // 100 tokens
    const small = limiter.take(50);
    expect(small, 'queued behind the big one').to.not.equal(null);
    void small!.then(() => served.push('small'));
    await sleep(60);
    expect(served).to.deep.equal([]);
    clock.advance(450); // 550 tokens: both, in order
    await big;
    await small;
    expect(served).to.deep.equal(['big', 'small']);
    expect(limiter.take(1), 'nothing left over').to.not.equal(null);
  });

  it('never holds more than one second of tokens, however long it was idle', async function () {
    const clock = manualClock();
    const limiter = new RateLimiter(1000, clock.now);
    expect(limiter.take(1000)).to.equal(null);
    clock.advance(60_000);
    expect(limiter.take(1000)).to.equal(null);
    const p = limiter.take(1);
    expect(p, 'a minute idle still gives a burst of one second only').to.not.equal(null);
    clock.advance(1);
    await p;
  });

  it('a take larger than a second of tokens goes once the bucket is full, and the debt is paid before the next', async function () {
    const clock = manualClock();
    const limiter = new RateLimiter(1000, clock.now);
    // 16 KiB blocks under a 1000 B/s limit used to wait forever: the bucket never holds 16 KiB.
    expect(limiter.take(16_384), 'a full bucket lets one big block go').to.equal(null);
    const next = limiter.take(1)!;
    expect(next).to.be.instanceOf(Promise);
    clock.advance(15_384); // repays the 15,384 bytes of debt: at zero, still one byte short
    await sleep(60);
    expect(await settled(next)).to.equal(false);
    clock.advance(1);
    await next;
  });

  it('setRate while uploads wait: they go on at the new rate', async function () {
    const clock = manualClock();
    const limiter = new RateLimiter(1000, clock.now);
    expect(limiter.take(1000)).to.equal(null);
    const waiting = limiter.take(500)!;
    clock.advance(100); // 100 of the 500 at the old rate
    limiter.setRate(10_000);
    expect(limiter.rate).to.equal(10_000);
    clock.advance(39); // 100 + 390 at the new rate: 10 short
    await sleep(60);
    expect(await settled(waiting)).to.equal(false);
    clock.advance(1);
    await waiting;
    // Slower again: what is saved up is capped at a second of the new rate.
    clock.advance(10_000);
    limiter.setRate(100);
    expect(limiter.take(100)).to.equal(null);
    expect(limiter.take(1), 'no more than 100 bytes saved up').to.not.equal(null);
  });

  it('setRate(0) lifts the limit: waiting uploads go at once, later ones never wait', async function () {
    const clock = manualClock();
    const limiter = new RateLimiter(1000, clock.now);
    expect(limiter.take(1000)).to.equal(null);
    const waiting = [limiter.take(400)!, limiter.take(400)!];
    limiter.setRate(0);
    expect(limiter.limited).to.equal(false);
    await Promise.all(waiting); // the clock never moved
    expect(limiter.take(1 << 20)).to.equal(null);
    // and a limit set again starts with a full second of tokens, as a new limiter does
    limiter.setRate(2000);
    expect(limiter.limited).to.equal(true);
    expect(limiter.take(2000)).to.equal(null);
    expect(limiter.take(1)).to.not.equal(null);
    expect(() => limiter.setRate(-1)).to.throw(RangeError);
  });

  it('on the real clock, the long-run rate stays at the limit', async function () {
    const limit = 200_000;
    const chunk = 2000;
    const total = 40_000; // 200 ms at the limit
    const limiter = new RateLimiter(limit);
    expect(limiter.take(limit), 'drain the first second of tokens').to.equal(null);
    const start = Date.now();
    for (let sent = 0; sent < total; sent += chunk) await limiter.take(chunk);
    const elapsed = Date.now() - start;
    // Never faster than the limit (one chunk of rounding); slower only as much as this machine is busy.
    expect(elapsed).to.be.at.least(((total - chunk) * 1000) / limit);
    expect(elapsed).to.be.below(3000);
  });
});
