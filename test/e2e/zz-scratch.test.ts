import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { createInteropLan } from '../interop/lan.js';
import { libtorrent } from '../interop/clients/libtorrent.js';
import { transmission } from '../interop/clients/transmission.js';
import { aria2c } from '../interop/clients/aria2c.js';
import { writeContent } from '../interop/cases.js';
import { torrentIdentity } from '../interop/suite.js';

describe('scratch', function () {
  this.timeout(300_000);
  it.skip('transmission from libtorrent and aria2c', async () => {
    const l = await createInteropLan('shoal-zz', 2, '10.89.0.0/24');
    try {
      await transmission.setUp!(l, l.clients[1]!);
      for (const seeder of [libtorrent, aria2c]) {
        const dataDir = path.join(l.dir, seeder.name, 'data');
        const data = await writeContent(dataDir, `x-${seeder.name}.bin`, { kind: 'file', size: 1 });
        const torrent = path.join(l.dir, seeder.name, 't.torrent');
        await seeder.makeTorrent(data, torrent, 256 * 1024, l.tracker.url);
        const { infohash, name } = await torrentIdentity(torrent);
        await l.tracker.allow(infohash);
        const s = await seeder.seed(l, l.clients[0]!, { infohash, name, torrent }, dataDir, 'plain');
        await l.tracker.waitSeeders(infohash);
        const t0 = Date.now();
        const into = path.join(l.dir, seeder.name, 'into');
        await fsp.mkdir(into, { recursive: true });
        await transmission.fetch(l, l.clients[1]!, { infohash, name, torrent }, into, 'plain', 60_000);
        console.log(`transmission from ${seeder.name}: ${(Date.now() - t0) / 1000} s`);
        await s.stop();
      }
    } finally {
      await transmission.tearDown!();
      await l.destroy();
    }
  });
  it('libtorrent and aria2c from transmission', async () => {
    const l = await createInteropLan('shoal-zz', 2, '10.89.0.0/24');
    try {
      await transmission.setUp!(l, l.clients[1]!);
      for (const getter of [libtorrent, aria2c]) {
        const dataDir = path.join(l.dir, getter.name, 'data');
        const data = await writeContent(dataDir, `x-${getter.name}.bin`, { kind: 'file', size: 1 });
        const torrent = path.join(l.dir, getter.name, 't.torrent');
        await transmission.makeTorrent(data, torrent, 256 * 1024, l.tracker.url);
        const { infohash, name } = await torrentIdentity(torrent);
        await l.tracker.allow(infohash);
        const s = await transmission.seed(l, l.clients[1]!, { infohash, name, torrent }, dataDir, 'plain');
        await l.tracker.waitSeeders(infohash);
        const t0 = Date.now();
        const into = path.join(l.dir, getter.name, 'into');
        await fsp.mkdir(into, { recursive: true });
        await getter.fetch(l, l.clients[0]!, { infohash, name, torrent }, into, 'plain', 60_000);
        console.log(`${getter.name} from transmission: ${(Date.now() - t0) / 1000} s`);
        await s.stop();
      }
    } finally {
      await transmission.tearDown!();
      await l.destroy();
    }
  });
});
