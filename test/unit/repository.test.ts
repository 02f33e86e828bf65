/** What a fresh clone promises a user: a README that links only inside the repository, a two-command quick start, and no run's data tracked by git. */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8');

describe('the repository', () => {
  it('the README links and points only to files inside the repository, and they exist', () => {
    for (const doc of ['README.md', 'docs/architecture.md']) {
      const text = read(doc);
      expect(text, `${doc} names a file outside the repository`).to.not.match(/\.\.\/shared|\]\(\.\.\//);
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)[^)]*\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue; // a URL
        expect(existsSync(path.join(ROOT, path.dirname(doc), target!)), `${doc} links ${target}`).to.equal(true);
      }
    }
  });

  it('the quick start has exactly two commands', () => {
    const quick = /## Quick start\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(read('README.md'))![1]!;
    expect(quick.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))).to.have.length(2);
  });

  it('.gitignore keeps the bootstrap server\'s data out of git', () => {
    expect(read('.gitignore').split('\n').map((l) => l.trim())).to.include('bootstrap-data/');
  });
});
