/**
 * The console as a user sees it, on a real terminal: tmux runs `node-cli` in a pseudo-terminal
 * of 110x30 and `capture-pane` reads the screen, row by row, as it is displayed. While a
 * download runs its bar sits right above the prompt; command output and the node's log lines
 * scroll above the bar; every figure has its unit; when the download is done the bar goes and
 * the prompt is still there, taking the next command. Skipped, saying why, without tmux.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { CLI, randomFile, sha1File, startNode, tempDirPerTest, waitFor } from '../helpers.js';
import { findExecutable } from '../opentracker.js';
import { Tmux, quote } from '../tmux.js';
import type { Node } from '../../network/index.js';

/** The rows up to the last non-empty one (the cursor's region is at the bottom of what was drawn). */
const drawn = (rows: string[]) => {
  let end = rows.length;
  while (end > 0 && rows[end - 1] === '') end--;
  return rows.slice(0, end);
};
const BAR = /^film\.bin\s+\[[\u2588\u2591]+\]\s+\d+\.\d% of 6\.0 MiB \| +\d+(\.\d)? (B|KiB|MiB)\/s \| \d+ peers? \| ETA (--|\d+ s|\d+ min \d\d s|\d+ h \d\d min)$/;

describe('the console on a terminal (tmux)', function () {
  this.timeout(120_000);
  let seed: Node | null = null;
  let tmux: Tmux | null = null;
  const fx = tempDirPerTest('shoal-console-pty-', async () => {
    tmux?.kill();
    tmux = null;
    await seed?.stop();
    seed = null;
  });

  before(function () {
    if (!findExecutable('tmux')) {
      console.log('    tmux is not installed (Debian package tmux): skipping the terminal console tests');
      this.skip();
    }
  });

  it('keeps the bars above the prompt and the output above the bars, with units, and gives the prompt back after a get', async function () {
    // A seed that uploads at 1 MiB/s: the 6 MiB download takes seconds, so its bar can be seen.
    const seedDir = path.join(fx.dir, 'seed');
    await randomFile(path.join(seedDir, 'shared', 'film.bin'), 6 << 20);
    const want = await sha1File(path.join(seedDir, 'shared', 'film.bin'));
    seed = await startNode(seedDir, { maxUploadRate: 1 << 20 });
    const cwd = path.join(fx.dir, 'console');
    await fsp.mkdir(path.join(cwd, 's'), { recursive: true });

    tmux = new Tmux();
    const argv = [process.execPath, CLI, '127.0.0.1', '0', '--shared', 's', '--downloads', 'd', '--no-folder-watch', '--no-multicast', '--log-level', 'info', '--peer', `127.0.0.1:${seed.port}`, '--tracker', 'http://127.0.0.1:9/announce'];
    // The exit status goes to a file: tmux does not always keep a dead pane's status.
    const statusFile = path.join(cwd, 'exit-status');
    tmux.start(`env SHOAL_LOG=info ${argv.map(quote).join(' ')}; echo $? > ${quote(statusFile)}`, cwd, 110, 30);
    const t = tmux;
    const show = () => `\n--- screen ---\n${t.screen().join('\n')}\n--------------`;
    const last = () => drawn(t.screen()).at(-1) ?? '';

    await waitFor(() => last() === 'shoal>' && t.screen().some((l) => l.includes('listening on port')), 30_000, `the prompt${show()}`);

    t.type('get film.bin');
    // The bar appears right above the prompt, every figure with its unit.
    const during = await waitFor(() => {
      const rows = drawn(t.screen());
      return rows.length >= 2 && BAR.test(rows.at(-2)!) && rows.at(-1) === 'shoal>' ? rows : null;
    }, 30_000, `a progress bar right above the prompt${show()}`);
    // The command and its answer, and the node's log line about it, scrolled up above the bar.
    const barRow = during.length - 2;
    const at = (re: RegExp) => during.findIndex((l) => re.test(l));
    expect(at(/^shoal> get film\.bin$/), show()).to.be.within(0, barRow - 1);
    expect(at(/^downloading [0-9a-f]{40}$/), show()).to.be.within(0, barRow - 1);
    expect(at(/INFO.*download started/), show()).to.be.within(0, barRow - 1);

    // A command typed while the bar moves: its output goes above the bar, the prompt stays last.
    t.type('help');
    const afterHelp = await waitFor(() => {
      const rows = drawn(t.screen());
      const quit = rows.findIndex((l) => /^ {2}quit\s+stop the node cleanly$/.test(l));
      return quit >= 0 && rows.at(-1) === 'shoal>' ? { rows, quit } : null;
    }, 20_000, `help's output and the prompt${show()}`);
    if (afterHelp.rows.length >= 2 && BAR.test(afterHelp.rows.at(-2)!)) expect(afterHelp.quit, show()).to.be.below(afterHelp.rows.length - 2);

    // Done: the file is right, the bar goes, the prompt is there and takes a command.
    const target = path.join(cwd, 'd', 'film.bin');
    await waitFor(async () => (await fsp.stat(target).catch(() => null)) !== null, 60_000, `the downloaded file${show()}`);
    expect(await sha1File(target)).to.equal(want);
    await waitFor(() => t.screen().some((l) => /^done film\.bin [0-9a-f]{40} -> /.test(l)) && !t.screen().some((l) => BAR.test(l)) && last() === 'shoal>', 20_000,
      `the done line, no bar, and the prompt${show()}`);
    t.type('status');
    await waitFor(() => {
      const rows = drawn(t.screen());
      return rows.some((l) => /^ {2}done\s+film\.bin\s+100\.0% of 6\.0 MiB\s+down \d+(\.\d)? (B|KiB|MiB)\/s\s+up \d+(\.\d)? (B|KiB|MiB)\/s\s+\d+ peers?$/.test(l)) && rows.at(-1) === 'shoal>';
    }, 20_000, `status after the download, then the prompt${show()}`);

    // The magnet of what it now shares names this node (x.pe) and its tracker (tr=).
    t.type('magnet film.bin');
    await waitFor(() => {
      const rows = t.screen().join('');
      return /magnet:\?xt=urn:btih:[0-9a-f]{40}&dn=film\.bin&xl=6291456&tr=http%3A%2F%2F127\.0\.0\.1%3A9%2Fannounce&x\.pe=127\.0\.0\.1%3A\d+/.test(rows) && last() === 'shoal>';
    }, 20_000, `the magnet link${show()}`);

    // Nothing was ever drawn over something else.
    const screen = t.screen();
    for (const l of screen) {
      expect(l, show()).to.not.match(/NULL|undefined|NaN/);
      expect(l, `a line typed over by another${show()}`).to.not.match(/.shoal>|shoal>.*(INFO|\[[\u2588\u2591]|done |downloading )/);
      if (/ETA/.test(l)) expect(l, show()).to.match(/ETA (--|\d+ s|\d+ min \d\d s|\d+ h \d\d min)/);
    }

    t.type('quit');
    const status = await waitFor(() => fsp.readFile(statusFile, 'utf8').then((x) => x.trim(), () => null), 20_000, `the console to exit after quit${show()}`);
    expect(status, show()).to.equal('0');
  });
});
