/** The refusals of an upload into the shared folder: one class each, with the code and HTTP status the web layer answers with. */
import { expect } from 'chai';
import { ImportError, BadNameError, ExistsError, NoSpaceError, TooLargeError, SizeMismatchError } from '../../network/library/import.js';

describe('import errors', () => {
  it('keep their class, name, code and status', () => {
    const cases: Array<[ImportError, string, string, number]> = [
      [new BadNameError('x'), 'BadNameError', 'EBADNAME', 400],
      [new ExistsError('x'), 'ExistsError', 'EEXIST', 409],
      [new NoSpaceError('x'), 'NoSpaceError', 'ENOSPC', 507],
      [new TooLargeError('x'), 'TooLargeError', 'ETOOLARGE', 413],
      [new SizeMismatchError('x'), 'SizeMismatchError', 'ESIZE', 400],
    ];
    for (const [err, name, code, status] of cases) {
      expect(err).to.be.instanceOf(ImportError);
      expect([err.name, err.code, err.status, err.message]).to.deep.equal([name, code, status, 'x']);
      expect(String(err)).to.equal(`${name}: x`);
    }
  });
});
