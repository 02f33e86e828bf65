import { expect } from 'chai';
import { localName, badFileName, MAX_NAME_BYTES } from '../../network/util/names.js';

describe('localName: what a remote torrent\'s file name becomes on this disk', function () {
  it('keeps a plain name as it is', function () {
    expect(localName('Holiday Video (2024).mkv')).to.deep.equal({ name: 'Holiday Video (2024).mkv', why: null });
    expect(localName('résumé.pdf').name).to.equal('résumé.pdf');
  });

  const cases: Array<[string, string, RegExp]> = [
    ['.bashrc', '_bashrc', /leading dot/],
    ['..x', '_.x', /leading dot/],
    ['movie.mkv.part', 'movie.mkv_part', /\.part/],
    ['MOVIE.PART', 'MOVIE_PART', /\.part/],
    ['COM1', '_COM1', /Windows device/],
    ['nul.txt', '_nul.txt', /Windows device/],
    ['lpt9.tar.gz', '_lpt9.tar.gz', /Windows device/],
    ['photo\u202Egnp.exe', 'photognp.exe', /reorder or hide/],
    ['a\u200Bb\uFEFF.txt', 'ab.txt', /reorder or hide/],
    ['\u202E', '_', /nothing usable/],
  ];
  for (const [remote, local, why] of cases) {
    it(`${JSON.stringify(remote)} becomes ${JSON.stringify(local)}`, function () {
      const got = localName(remote);
      expect(got.name).to.equal(local);
      expect(got.why).to.match(why);
      expect(badFileName(got.name)).to.equal(null);
    });
  }

  it('keeps a renamed name within the length limit', function () {
    const got = localName(`.${'x'.repeat(MAX_NAME_BYTES - 1)}`);
    expect(Buffer.byteLength(got.name)).to.be.at.most(MAX_NAME_BYTES);
    expect(got.name.startsWith('_x')).to.equal(true);
    const long = localName(`COM1.${'é'.repeat(125)}`);
    expect(Buffer.byteLength(long.name)).to.be.at.most(MAX_NAME_BYTES);
  });

  it('names that only look like the traps stay', function () {
    for (const n of ['COM10', 'console.log', 'a.partial', 'x.part.mkv', 'con-fig']) expect(localName(n)).to.deep.equal({ name: n, why: null });
  });
});
