import { expect } from 'chai';
import { globMatch, checkPattern, PatternError } from '../../network/catalog/glob.js';

describe('glob patterns for watch', () => {
  const table: Array<[string, string, boolean]> = [
    ['*.iso', 'debian.iso', true],
    ['*.iso', 'sub/dir/debian.ISO', true],
    ['*.iso', 'debian.iso.part', false],
    ['deb*', 'music/debian.iso', true],
    ['music/*.mp3', 'music/a.mp3', true],
    ['music/*.mp3', 'video/a.mp3', false],
    ['?.txt', 'a.txt', true],
    ['?.txt', 'ab.txt', false],
    ['*', 'anything at all', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['[ab].txt', '[ab].txt', true],
    ['(x+)+y', '(x+)+y', true],
    ['report', 'report', true],
    ['report', 'report.pdf', false],
  ];
  for (const [pattern, name, want] of table) {
    it(`${JSON.stringify(pattern)} ${want ? 'matches' : 'does not match'} ${JSON.stringify(name)}`, () => {
      expect(globMatch(pattern, name)).to.equal(want);
    });
  }

  it('a pathological pattern against a long name is answered (no backtracking blow-up)', () => {
    const name = `${'a'.repeat(1000)}`;
    expect(globMatch('*a*a*a*a*a*a*a*a*a*a*a*a*b', name)).to.equal(false);
    expect(globMatch('*a*a*a*a*a*a*a*a*a*a*a*a*', name)).to.equal(true);
  });

  it('rejects empty, huge and control-character patterns', () => {
    expect(() => checkPattern('')).to.throw(PatternError, /empty/);
    expect(() => checkPattern('x'.repeat(257))).to.throw(PatternError, /longer/);
    expect(() => checkPattern('a\0b')).to.throw(PatternError, /control/);
    expect(checkPattern('*.mkv')).to.equal('*.mkv');
  });
});
