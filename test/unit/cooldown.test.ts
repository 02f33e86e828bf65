import { expect } from 'chai';
import { Cooldown } from '../../network/util/cooldown.js';

describe('cooldown: at most once per interval per key, bounded', function () {
  it('lets a key through once per interval, each key on its own', function () {
    const c = new Cooldown<string>(1000, 10);
    const steps: Array<[key: string, at: number, through: boolean]> = [
      ['a', 0, true],
      ['a', 1, false],
      ['b', 1, true],
      ['a', 999, false],
      ['a', 1000, true], // a full interval after its last take
      ['a', 1999, false], // the interval starts again from the take at 1000
      ['b', 1001, true],
      ['a', 2000, true],
    ];
    for (const [key, at, through] of steps) expect(c.take(key, at), `${key} at ${at}`).to.equal(through);
  });

  it('a refused take does not restart the interval', function () {
    const c = new Cooldown(100, 10);
    expect(c.take('k', 0)).to.equal(true);
    expect(c.take('k', 50)).to.equal(false);
    expect(c.take('k', 100)).to.equal(true);
  });

  it('ready() tells without taking; reset() lets a key through at once', function () {
    const c = new Cooldown(100, 10);
    expect(c.ready('k', 0)).to.equal(true);
    expect(c.ready('k', 0), 'ready() took nothing').to.equal(true);
    c.take('k', 0);
    expect(c.ready('k', 99)).to.equal(false);
    expect(c.ready('k', 100)).to.equal(true);
    c.reset('k');
    expect(c.take('k', 1)).to.equal(true);
  });

  it('an interval of 0 lets every take through', function () {
    const c = new Cooldown(0, 2);
    for (let i = 0; i < 5; i++) expect(c.take('k', 7)).to.equal(true);
  });

  it('remembers at most maxKeys, dropping the key taken longest ago (which only lets it through early)', function () {
    const c = new Cooldown<number>(1000, 3);
    c.take(1, 0);
    c.take(2, 1);
    c.take(3, 2);
    // Key 1 is taken again later than 2 and 3: now 2 is the oldest.
    c.take(1, 1000);
    expect(c.size).to.equal(3);
    c.take(4, 1001);
    expect(c.size).to.equal(3);
    expect(c.take(2, 1002), 'dropped: through again before its interval').to.equal(true);
    // Taking 2 back dropped 3, the oldest then; 1 and 4 are still remembered.
    expect(c.take(1, 1003)).to.equal(false);
    expect(c.take(4, 1004)).to.equal(false);
    expect(c.take(3, 1005), 'dropped by the take of 2').to.equal(true);
    expect(c.take(1, 1006), 'dropped by the take of 3').to.equal(true);
  });

  it('a refused take does not refresh its place in the order', function () {
    const c = new Cooldown<string>(1000, 2);
    c.take('old', 0);
    c.take('new', 1);
    expect(c.take('old', 2)).to.equal(false);
    c.take('third', 3);
    expect(c.take('old', 4), 'old stayed the oldest and was dropped').to.equal(true);
  });

  it('refuses a negative interval or a bound below one', function () {
    expect(() => new Cooldown(-1, 1)).to.throw(RangeError, 'interval must be at least 0, got -1');
    expect(() => new Cooldown(Number.NaN, 1)).to.throw(RangeError);
    expect(() => new Cooldown(1, 0)).to.throw(RangeError, 'maxKeys must be at least 1, got 0');
  });
});
