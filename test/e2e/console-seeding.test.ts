/**
 * The console's `status` lists what the node uploads: each file, its rate, bytes sent, share
 * ratio, and the peers it goes to. node-cli runs under a real pseudo-terminal (util-linux
 * `script`), so its interactive console is the one a person gets; a second node downloads
 * from it meanwhile.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import type { Node } from '../../network/index.js';
import { CLI, Children, randomFile, startNode, tempDirPerTest, waitFor } from '../helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const children = new Children();

/** node-cli in a pty: what it printed (escape sequences and CRs removed) and a way to type. */
function consoleInPty(args: string[], cwd: string): { proc: ChildProcess; output: () => string; type: (line: string) => void } {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const proc = children.track(spawn('script', ['-qfc', command, '/dev/null'], { cwd, env: { ...process.env, SHOAL_LOG: 'warn', TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  // eslint-disable-next-line no-control-regex
  const clean = () => out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  return { proc, output: clean, type: (line) => proc.stdin!.write(`${line}\n`) };
}

describe('console status: what the node uploads', function () {
  this.timeout(60_000);
  const nodes: Node[] = [];
  const fx = tempDirPerTest('shoal-console-seeding-', async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await children.killAll();
  });

  before(function () {
    if (spawnSync('script', ['--version']).status !== 0) {
      console.log('      skipped: no util-linux script to give the console a terminal');
      this.skip();
    }
  });

  it('lists each file sent, its rate, bytes sent, ratio and the peers it goes to', async function () {
    await randomFile(path.join(fx.dir, 'shared', 'concert.flac'), 2 * MiB);
    // 384 KiB/s: the download takes about five seconds, long enough to ask while it runs.
    const cli = consoleInPty(['0', '--no-multicast', '--shared', 'shared', '--downloads', 'downloads', '--max-upload-rate', '384k', '--log-level', 'warn'], fx.dir);
    const port = Number(await waitFor(() => /listening on port (\d+)/.exec(cli.output())?.[1], 20_000, `the listening line (got ${JSON.stringify(cli.output())})`));
    await waitFor(() => cli.output().includes('shoal> '), 10_000, 'the prompt');

    const c = await startNode(path.join(fx.dir, 'c'), { name: 'phone', peers: [{ host: '127.0.0.1', port }] });
    nodes.push(c);
    const h = await c.download('concert.flac');
    await waitFor(() => (c.listDownloads()[0]?.verified ?? 0) > 0, 15_000, 'a first piece at C');

    const seedingLine = () => cli.output().split('\n').find((l) => /^\s*seeding\s+concert\.flac\s/.test(l));
    cli.type('status');
    const during = await waitFor(seedingLine, 10_000, `a seeding line (got ${JSON.stringify(cli.output().slice(-600))})`);
    expect(during).to.match(/ up \d+(\.\d)? (B|KiB|MiB)\/s/);
    expect(during).to.match(/ sent \d+(\.\d)? (B|KiB|MiB) /);
    expect(during, during).to.match(/ ratio 0\.\d\d /);
    expect(during, during).to.match(/ to (\[::ffff:)?127\.0\.0\.1\]?:\d+ \(Shoal [^,]+, up /);

    await c.whenDone(h);
    await waitFor(async () => {
      const before = cli.output().length;
      cli.type('status');
      await waitFor(() => cli.output().length > before && cli.output().endsWith('shoal> '), 5000, 'the answer');
      return /^\s*seeding\s+concert\.flac\s.* ratio 1\.00 /m.test(cli.output().slice(before));
    }, 20_000, 'a ratio of 1.00');
    cli.type('quit');
  });
});
