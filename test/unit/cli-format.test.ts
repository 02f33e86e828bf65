/** What the console prints of figures: every one with its unit, and a bar line that fits its terminal. */
import { expect } from 'chai';
import { eta, progressLine, rate, bytes, type BarInfo } from '../../cli/format.js';

describe('console formatting', () => {
  it('eta: a unit on every figure, -- when unknown', () => {
    const cases: Array<[number | null | undefined, string]> = [
      [0, '0 s'],
      [36, '36 s'],
      [36.4, '36 s'],
      [59.6, '1 min 00 s'],
      [125, '2 min 05 s'],
      [3599, '59 min 59 s'],
      [3600, '1 h 00 min'],
      [3 * 3600 + 7 * 60 + 5, '3 h 07 min'],
      [500 * 3600, '20 d'],
      [null, '--'],
      [undefined, '--'],
      [Infinity, '--'],
      [NaN, '--'],
      [-1, '--'],
    ];
    for (const [s, want] of cases) expect(eta(s), String(s)).to.equal(want);
  });

  it('bytes and rate carry their unit', () => {
    expect(bytes(0)).to.equal('0 B');
    expect(bytes(1536)).to.equal('1.5 KiB');
    expect(rate(3 * 1024 * 1024)).to.equal('3.0 MiB/s');
  });

  const d: BarInfo = { name: 'ubuntu-24.04-desktop-amd64.iso', length: 6 * 1024 ** 3, pieces: 1000, verified: 452, downloadRate: 1.5 * 1024 * 1024, peers: 3, state: 'downloading', eta: 36 };

  it('a bar line: name, bar, percent of the size, speed, peers, ETA with units', () => {
    const line = progressLine(d, 120);
    expect(line).to.match(/^ubuntu-24\.04-desktop-amd64\.iso +\[\u2588+\u2591+\] +45\.2% of 6\.0 GiB \| +1\.5 MiB\/s \| 3 peers \| ETA 36 s$/);
    expect(line.length).to.be.below(120);
  });

  it('never wider than the terminal: the name gives way, then the bar', () => {
    for (const columns of [120, 100, 80, 70, 60, 40, 20]) {
      const line = progressLine(d, columns);
      expect(line.length, `${columns} columns: ${line}`).to.be.at.most(Math.max(20, columns) - 1);
    }
    expect(progressLine(d, 80)).to.include('ETA 36 s');
    expect(progressLine(d, 80)).to.match(/^ubuntu.*\u2026 \[/);
  });

  it('no rate yet, one peer, paused, done', () => {
    expect(progressLine({ ...d, eta: null, downloadRate: 0, peers: 1 }, 120)).to.match(/0 B\/s \| 1 peer \| ETA --$/);
    expect(progressLine({ ...d, state: 'paused' }, 120)).to.match(/45\.2% of 6\.0 GiB \| paused$/);
    expect(progressLine({ ...d, state: 'done', verified: 1000 }, 120)).to.match(/\[\u2588+\] 100\.0% of 6\.0 GiB \| done$/);
  });
});
