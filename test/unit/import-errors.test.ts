/** The refusals of an upload into the shared folder: one class each, with its name and code (the web layer maps the class to a status). */
import { expect } from 'chai';
import { ImportError, BadNameError, ExistsError, NoSpaceError, TooLargeError, SizeMismatchError } from '../../network/library/import.js';

describe('import errors', () => {
  it('keep their class, name and code', () => {
    const cases: Array<[ImportError, string, string]> = [
      [new BadNameError('x'), 'BadNameError', 'EBADNAME'],
      [new ExistsError('x'), 'ExistsError', 'EEXIST'],
      [new NoSpaceError('x'), 'NoSpaceError', 'ENOSPC'],
      [new TooLargeError('x'), 'TooLargeError', 'ETOOLARGE'],
      [new SizeMismatchError('x'), 'SizeMismatchError', 'ESIZE'],
    ];
    for (const [err, name, code] of cases) {
      expect(err).to.be.instanceOf(ImportError);
      expect([err.name, err.code, err.message]).to.deep.equal([name, code, 'x']);
      expect(String(err)).to.equal(`${name}: x`);
    }
  });
});
