/** Naming the sender of a bad block of a piece with several sources (smart ban). */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Blame, blockDigests, MAX_SUSPECT_PIECES } from '../../network/swarm/blame.js';
import { BLOCK_LENGTH } from '../../network/wire/peer-wire.js';

describe('blame (smart ban)', () => {
  const good = randomBytes(3 * BLOCK_LENGTH + 100);

  it('digests each 16 KiB block, the last one short', () => {
    const d = blockDigests(good);
    expect(d).to.have.length(4);
    expect(d[3]!.length).to.equal(20);
  });

  it('names the peers whose blocks differ from the good copy, once each, and only them', () => {
    const bad = Buffer.from(good);
    bad[BLOCK_LENGTH + 5]! ^= 0xff; // block 1, from liar
    bad[3 * BLOCK_LENGTH]! ^= 0xff; // block 3, from liar again
    const blame = new Blame<string>();
    blame.failed(7, blockDigests(bad), ['honest', 'liar', 'other', 'liar']);
    expect(blame.has(7)).to.equal(true);
    expect(blame.passed(7, blockDigests(good))).to.deep.equal(['liar']);
    expect(blame.has(7), 'the evidence is used once').to.equal(false);
    expect(blame.passed(7, blockDigests(good))).to.deep.equal([]);
  });

  it('names nobody for a block whose sender is unknown, and keeps the evidence of the last pieces only', () => {
    const bad = Buffer.from(good);
    bad[0]! ^= 1;
    const blame = new Blame<string>();
    blame.failed(1, blockDigests(bad), [undefined, 'a', 'a', 'a']);
    expect(blame.passed(1, blockDigests(good))).to.deep.equal([]);
    for (let i = 0; i <= MAX_SUSPECT_PIECES; i++) blame.failed(100 + i, blockDigests(bad), ['x']);
    expect(blame.has(100), 'the oldest evidence went').to.equal(false);
    expect(blame.has(100 + MAX_SUSPECT_PIECES)).to.equal(true);
  });
});
