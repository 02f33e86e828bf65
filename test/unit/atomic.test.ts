import { expect } from 'chai';
import path from 'node:path';
import os from 'node:os';
import { promises as fsp } from 'node:fs';
import { writeFileAtomic, STALE_TEMP_MS } from '../../network/util/atomic.js';

describe('writeFileAtomic', function () {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'shoal-atomic-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('replaces the file whole and leaves no temporary sibling', async () => {
    const file = path.join(dir, 'state.json');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two');
    expect(await fsp.readFile(file, 'utf8')).to.equal('two');
    expect(await fsp.readdir(dir)).to.deep.equal(['state.json']);
  });

  it('writes a secret with mode 0600 from the start', async () => {
    const file = path.join(dir, 'token');
    await writeFileAtomic(file, 'secret', { mode: 0o600 });
    expect((await fsp.stat(file)).mode & 0o777).to.equal(0o600);
  });

  it('the first write into a folder removes temporary files a killed process left there, old ones only', async () => {
    const sub = path.join(dir, 'state');
    await fsp.mkdir(sub);
    const old = path.join(sub, 'torrents.json.tmp-0badc0de');
    const fresh = path.join(sub, 'torrents.json.tmp-12345678');
    const unrelated = path.join(sub, 'notes.tmp-old');
    for (const f of [old, fresh, unrelated]) await fsp.writeFile(f, 'partial');
    const past = new Date(Date.now() - STALE_TEMP_MS - 5000);
    await fsp.utimes(old, past, past);
    await fsp.utimes(unrelated, past, past);
    await writeFileAtomic(path.join(sub, 'torrents.json'), '{}');
    expect((await fsp.readdir(sub)).sort()).to.deep.equal(['notes.tmp-old', 'torrents.json', 'torrents.json.tmp-12345678']);
  });
});
