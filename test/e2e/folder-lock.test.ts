/**
 * Two nodes in one folder, as the README's own example puts them (a `web` and a `node-cli`
 * in one checkout, both on ./downloads): the second is refused at start with one line naming
 * the process that holds the folder and how to point this one elsewhere, exit 2, and nothing
 * of the first is touched. A lock left by a node that was killed is taken over, with a line in
 * the log. Real node-cli and web processes on 127.0.0.1; no multicast.
 */
import { expect } from 'chai';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { promises as fsp } from 'node:fs';
import { Children, ROOT, exitWithin, randomFile, spawnCli, tempDirPerTest, waitFor } from '../helpers.js';

const WEB = path.join(ROOT, 'dist', 'cli', 'web.js');
const CLI_JS = path.join(ROOT, 'dist', 'cli', 'main.js');
const children = new Children();

/** A program run to its end: its exit status and every stderr line. */
async function runToEnd(file: string, args: string[], cwd: string): Promise<{ code: number | null; stderr: string[]; stdout: string[] }> {
  const proc = children.track(spawn(process.execPath, [file, ...args], { cwd, env: { ...process.env, SHOAL_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const stderr: string[] = [];
  const stdout: string[] = [];
  readline.createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  readline.createInterface({ input: proc.stdout! }).on('line', (l) => stdout.push(l));
  const killer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(killer);
  await new Promise((r) => setImmediate(r)); // the last lines
  return { code, stderr, stdout };
}

describe('one node per folder: a lock on the download and state folders', function () {
  this.timeout(60_000);
  const fx = tempDirPerTest('shoal-lock-', () => children.killAll());

  /** A node-cli on the checkout's default folders (./shared_files, ./downloads), as a user starts it. */
  async function first(extra: string[] = []) {
    const c = spawnCli(['127.0.0.1', '0', '--no-multicast', '--no-folder-watch', ...extra], fx.dir);
    children.track(c.proc);
    const l = await c.waitEvent('listening');
    return Object.assign(c, { port: l.port as number });
  }

  it("the README's example: a second node (node-cli, then web) in the same folder exits 2 with one line naming the first; the first carries on", async () => {
    await randomFile(path.join(fx.dir, 'downloads', 'movie.bin.part'), 4096); // the first node's work
    const a = await first();
    const second = await runToEnd(CLI_JS, ['127.0.0.1', '0', '--no-multicast'], fx.dir);
    expect(second.code, second.stderr.join('\n')).to.equal(2);
    expect(second.stderr, 'one line').to.have.length(1);
    const line = second.stderr[0]!;
    expect(line).to.match(/^node-cli: .*downloads is in use by another Shoal node \(pid \d+, port \d+, since [^)]+\); .*--downloads DIR --state DIR$/);
    expect(line).to.contain(`pid ${a.proc.pid}, port ${a.port},`);
    const lock = JSON.parse(await fsp.readFile(path.join(fx.dir, 'downloads', '.shoal.lock'), 'utf8')) as Record<string, unknown>;
    expect(lock, 'the lock names its holder').to.include({ pid: a.proc.pid, port: a.port, host: os.hostname() });

    const web = await runToEnd(WEB, ['--peer-port', '0', '--http-port', '0', '--no-multicast'], fx.dir);
    expect(web.code, web.stderr.join('\n')).to.equal(2);
    expect(web.stderr).to.have.length(1);
    expect(web.stderr[0]).to.match(new RegExp(`^web: .*downloads is in use by another Shoal node \\(pid ${a.proc.pid}, port ${a.port},`));

    // The state folder is locked too: another download folder with the first one's state is refused.
    const state = await runToEnd(CLI_JS, ['127.0.0.1', '0', '--no-multicast', '--downloads', 'other', '--state', 'downloads/.shoal'], fx.dir);
    expect(state.code, state.stderr.join('\n')).to.equal(2);
    expect(state.stderr[0]).to.match(/\.shoal is in use by another Shoal node/);

    expect(a.proc.exitCode, 'the first node still runs').to.equal(null);
    expect((await fsp.stat(path.join(fx.dir, 'downloads', 'movie.bin.part'))).size, "the first node's .part untouched").to.equal(4096);

    // Folders of its own, as the line says: it starts.
    const b = spawnCli(['127.0.0.1', '0', '--no-multicast', '--downloads', 'd2', '--state', 'state2'], fx.dir);
    children.track(b.proc);
    await b.waitEvent('listening');

    // A clean stop gives the folder back.
    a.proc.kill('SIGTERM');
    expect((await exitWithin(a, 10_000)).code).to.equal(0);
    await fsp.access(path.join(fx.dir, 'downloads', '.shoal.lock')).then(
      () => expect.fail('the lock is still there after a clean stop'),
      () => {},
    );
    const c = spawnCli(['127.0.0.1', '0', '--no-multicast'], fx.dir);
    children.track(c.proc);
    await c.waitEvent('listening');
  });

  it('a node that cannot listen (port taken) exits 1 and leaves no lock behind', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const r = await runToEnd(CLI_JS, ['127.0.0.1', String(port), '--no-multicast'], fx.dir);
      expect(r.code, r.stderr.join('\n')).to.equal(1);
      expect(r.stderr.join('\n')).to.match(/cannot start: .*EADDRINUSE/);
      expect(await fsp.readdir(path.join(fx.dir, 'downloads')), 'no lock left to be taken over later').to.not.include('.shoal.lock');
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  it('a lock left by a node killed with SIGKILL is taken over at the next start, with a line in the log', async () => {
    const a = await first();
    a.proc.kill('SIGKILL');
    await exitWithin(a, 10_000);
    const file = path.join(fx.dir, 'downloads', '.shoal.lock');
    expect(JSON.parse(await fsp.readFile(file, 'utf8'))).to.include({ pid: a.proc.pid }); // left behind
    const b = spawnCli(['127.0.0.1', '0', '--no-multicast'], fx.dir);
    children.track(b.proc);
    const l = await b.waitEvent('listening');
    const warning = await waitFor(() => b.stderr.find((s) => s.includes('taking over a stale lock')), 5000, 'the takeover line');
    expect(warning).to.contain(`pid ${a.proc.pid}, port ${a.port}) is no longer running`);
    expect(JSON.parse(await fsp.readFile(file, 'utf8'))).to.include({ pid: b.proc.pid, port: l.port });
  });
});
