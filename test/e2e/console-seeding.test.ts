/**
 * The console's `status` lists what the node uploads: each file, its rate, bytes sent, share
 * ratio, and the peers it goes to. node-cli runs on a real terminal (tmux, read as displayed),
 * so its interactive console is the one a person gets; a second node downloads from it meanwhile.
 */
import path from 'node:path';
import { expect } from 'chai';
import type { Node } from '../../network/index.js';
import { CLI, randomFile, startNode, tempDirPerTest, waitFor } from '../helpers.js';
import { findExecutable } from '../opentracker.js';
import { Tmux, quote } from '../tmux.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('console status: what the node uploads', function () {
  this.timeout(60_000);
  const nodes: Node[] = [];
  let tmux: Tmux | null = null;
  const fx = tempDirPerTest('shoal-console-seeding-', async () => {
    tmux?.kill();
    tmux = null;
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  before(function () {
    if (!findExecutable('tmux')) {
      console.log('      skipped: no tmux (Debian package tmux) to give the console a terminal');
      this.skip();
    }
  });

  it('lists each file sent, its rate, bytes sent, ratio and the peers it goes to', async function () {
    await randomFile(path.join(fx.dir, 'shared', 'concert.flac'), 2 * MiB);
    // 384 KiB/s: the download takes about five seconds, long enough to ask while it runs.
    const argv = [process.execPath, CLI, '0', '--no-multicast', '--shared', 'shared', '--downloads', 'downloads', '--max-upload-rate', '384k', '--log-level', 'warn'];
    const t = (tmux = new Tmux());
    t.start(argv.map(quote).join(' '), fx.dir, 200, 40);
    const screen = () => t.screen().join('\n');
    const port = Number(await waitFor(() => /listening on port (\d+)/.exec(screen())?.[1], 20_000, 'the listening line'));
    await waitFor(() => screen().includes('shoal>'), 10_000, 'the prompt');

    const c = await startNode(path.join(fx.dir, 'c'), { name: 'phone', peers: [{ host: '127.0.0.1', port }] });
    nodes.push(c);
    const h = await c.download('concert.flac');
    await waitFor(() => (c.listDownloads()[0]?.verified ?? 0) > 0, 15_000, 'a first piece at C');

    const seedingLine = () => t.screen().find((l) => /^\s*seeding\s+concert\.flac\s/.test(l));
    t.type('status');
    const during = await waitFor(seedingLine, 10_000, 'a seeding line');
    expect(during).to.match(/ up \d+(\.\d)? (B|KiB|MiB)\/s/);
    expect(during).to.match(/ sent \d+(\.\d)? (B|KiB|MiB) /);
    expect(during, during).to.match(/ ratio 0\.\d\d /);
    expect(during, during).to.match(/ to (\[::ffff:)?127\.0\.0\.1\]?:\d+ \(Shoal [^,]+, up /);

    await c.whenDone(h);
    await waitFor(() => {
      t.type('status');
      return t.screen().some((l) => /^\s*seeding\s+concert\.flac\s.* ratio 1\.00 /.test(l));
    }, 20_000, 'a ratio of 1.00');
    t.type('quit');
  });
});
