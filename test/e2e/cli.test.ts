/**
 * `node-cli` as a user meets it: usage errors, --help, scripted downloads with --get,
 * the interactive console on a real pseudo-terminal, and Ctrl-C. Every node listens on
 * 127.0.0.1 only; every child is killed and every folder removed in the hooks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { CLI, randomFile, sha1File, waitFor, startNode, spawnCli, type CliChild, Children, exitWithin, tempDirPerTest } from '../helpers.js';
import { findExecutable } from '../opentracker.js';
import type { Node } from '../../network/index.js';

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Children of the current test, killed in afterEach whatever happened. */
const children = new Children();
const track = <T extends ChildProcess>(child: T): T => children.track(child);
const killAll = (): Promise<void> => children.killAll();

/** Run `node-cli <args>` to completion (SIGKILL after `timeoutMs`). */
function runCli(args: string[], cwd: string, timeoutMs = 15_000): Promise<Finished> {
  const child = track(spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, SHOAL_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const describeCli = (cli: CliChild) => `events ${JSON.stringify(cli.events.slice(-4))}; stderr ${cli.stderr.slice(-5).join(' | ')}`;

/** Terminal escapes (CSI, OSC, charset and keypad selections) and carriage returns. */
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\r/g;
const stripAnsi = (s: string) => s.replace(ANSI, '');

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('node-cli', function () {
  this.timeout(60_000);
  const fx = tempDirPerTest('shoal-cli-', killAll);

  describe('usage errors: status 2 and one line on stderr', function () {
    const cases: Array<[string, string[]]> = [
      ['no port', []],
      ['port "abc"', ['127.0.0.1', 'abc']],
      ['port 70000', ['127.0.0.1', '70000']],
      ['--peer nonsense', ['127.0.0.1', '0', '--peer', 'nonsense']],
      ['--exit-when-done without --get', ['127.0.0.1', '0', '--exit-when-done']],
      ['an unknown option', ['127.0.0.1', '0', '--no-such-option']],
      ['--piece-length 1000', ['127.0.0.1', '0', '--piece-length', '1000']],
      ['--multicast-group that is not multicast', ['127.0.0.1', '0', '--multicast-group', '10.0.0.1']],
      ['--multicast-port 0', ['127.0.0.1', '0', '--multicast-port', '0']],
      ['--multicast-ttl 300', ['127.0.0.1', '0', '--multicast-ttl', '300']],
      ['--beacon-interval 0', ['127.0.0.1', '0', '--beacon-interval', '0']],
      ['--bootstrap that is not http', ['127.0.0.1', '0', '--bootstrap', 'ftp://10.0.0.1']],
      ['--watch with an empty pattern', ['127.0.0.1', '0', '--watch', '']],
      ['--beacon-interval over 300', ['127.0.0.1', '0', '--beacon-interval', '301']],
      ['--secret too short', ['127.0.0.1', '0', '--secret', 'short']],
      ['--secret-file that does not exist', ['127.0.0.1', '0', '--secret-file', 'no-such-file']],
    ];
    for (const [what, args] of cases) {
      it(what, async function () {
        const res = await runCli(args, fx.dir);
        const lines = res.stderr.split('\n').filter((l) => l.trim() !== '');
        expect(res.code, `exit ${res.code ?? res.signal}; stderr: ${res.stderr}; stdout: ${res.stdout}`).to.equal(2);
        expect(lines, res.stderr).to.have.length(1);
        expect(lines[0]).to.match(/^node-cli:/);
        expect(await fsp.readdir(fx.dir), 'nothing created on a usage error').to.deep.equal([]);
      });
    }
  });

  it('--help exits 0 and lists the options', async function () {
    const res = await runCli(['--help'], fx.dir);
    expect(res.code, res.stderr).to.equal(0);
    for (const opt of ['--shared', '--downloads', '--peer', '--get', '--exit-when-done', '--tracker', '--piece-length', '--resolve-timeout', '--json', '--help'])
      expect(res.stdout, `--help mentions ${opt}`).to.include(opt);
    expect(res.stdout).to.match(/usage/i);
  });

  describe('scripted downloads from a seed', function () {
    let seed: Node | null = null;
    const files: Record<string, { size: number; sha1: string }> = {
      'alpha.bin': { size: 3 * 1024 * 1024 + 777, sha1: '' },
      'beta.bin': { size: 1024 * 1024 + 5, sha1: '' },
    };
    let cli: CliChild | null = null;

    beforeEach(async function () {
      const seedDir = path.join(fx.dir, 'seed');
      for (const [name, f] of Object.entries(files)) {
        await randomFile(path.join(seedDir, 'shared', name), f.size);
        f.sha1 = await sha1File(path.join(seedDir, 'shared', name));
      }
      seed = await startNode(seedDir);
      await fsp.mkdir(path.join(fx.dir, 'cli', 's'), { recursive: true });
    });

    afterEach(async function () {
      if (cli && cli.proc.exitCode === null && cli.proc.signalCode === null) {
        cli.proc.kill('SIGKILL');
        await cli.exited;
      }
      cli = null;
      await seed?.stop();
      seed = null;
    });

    const base = () => ['127.0.0.1', '0', '--shared', 's', '--downloads', 'd', '--no-folder-watch', '--no-multicast', '--peer', `127.0.0.1:${seed!.port}`];

    it('--get NAME --exit-when-done exits 0 with the right bytes in downloads/NAME', async function () {
      cli = spawnCli([...base(), '--get', 'alpha.bin', '--exit-when-done'], path.join(fx.dir, 'cli'));
      const { code, signal } = await exitWithin(cli, 40_000);
      expect(code, `exit ${code ?? signal}; ${describeCli(cli)}`).to.equal(0);
      const done = cli.events.find((e) => e.event === 'done');
      expect(done?.path).to.equal(path.join(fx.dir, 'cli', 'd', 'alpha.bin'));
      expect(await sha1File(path.join(fx.dir, 'cli', 'd', 'alpha.bin'))).to.equal(files['alpha.bin']!.sha1);
      const left = await fsp.readdir(path.join(fx.dir, 'cli', 'd'));
      expect(left.filter((n) => n.endsWith('.part')), 'no .part left behind').to.deep.equal([]);
    });

    it('--secret-file: a private node downloads from a private seed with the same secret over TLS, and says which swarm it is in', async function () {
      const secret = 'a secret shared by the swarm';
      await fsp.mkdir(path.join(fx.dir, 'private-seed', 'shared'), { recursive: true });
      await fsp.copyFile(path.join(fx.dir, 'seed', 'shared', 'beta.bin'), path.join(fx.dir, 'private-seed', 'shared', 'beta.bin'));
      const privateSeed = await startNode(path.join(fx.dir, 'private-seed'), { secret });
      try {
        await fsp.writeFile(path.join(fx.dir, 'cli', 'swarm.secret'), `${secret}\n`, { mode: 0o600 });
        const args = ['127.0.0.1', '0', '--shared', 's', '--downloads', 'd', '--no-folder-watch', '--no-multicast', '--peer', `127.0.0.1:${privateSeed.port}`];
        cli = spawnCli([...args, '--secret-file', 'swarm.secret', '--get', 'beta.bin', '--exit-when-done'], path.join(fx.dir, 'cli'));
        const { code, signal } = await exitWithin(cli, 40_000);
        expect(code, `exit ${code ?? signal}; ${describeCli(cli)}`).to.equal(0);
        expect(cli.events.find((e) => e.event === 'listening')?.swarm).to.equal(privateSeed.secretFingerprint);
        expect(await sha1File(path.join(fx.dir, 'cli', 'd', 'beta.bin'))).to.equal(files['beta.bin']!.sha1);
      } finally {
        await privateSeed.stop();
      }
    });

    it('two --get options both complete', async function () {
      cli = spawnCli([...base(), '--get', 'alpha.bin', '--get', 'beta.bin', '--exit-when-done'], path.join(fx.dir, 'cli'));
      const { code, signal } = await exitWithin(cli, 40_000);
      expect(code, `exit ${code ?? signal}; ${describeCli(cli)}`).to.equal(0);
      for (const [name, f] of Object.entries(files)) expect(await sha1File(path.join(fx.dir, 'cli', 'd', name)), name).to.equal(f.sha1);
      expect(cli.events.filter((e) => e.event === 'done').map((e) => e.name).sort()).to.deep.equal(['alpha.bin', 'beta.bin']);
    });

    it('--get of a name nobody shares exits non-zero with a failed event', async function () {
      cli = spawnCli([...base(), '--get', 'no-such-name', '--exit-when-done', '--resolve-timeout', '1'], path.join(fx.dir, 'cli'));
      const { code, signal } = await exitWithin(cli, 30_000);
      expect(signal, describeCli(cli)).to.equal(null);
      expect(code, describeCli(cli)).to.not.equal(0);
      const failed = cli.events.find((e) => e.event === 'failed');
      expect(failed, `a failed event; ${describeCli(cli)}`).to.not.equal(undefined);
      expect(failed!.target).to.equal('no-such-name');
      expect(failed!.error).to.be.a('string').and.not.equal('');
    });
  });

  describe('the interactive console on a terminal', function () {
    let seed: Node | null = null;
    let consolePid = 0;

    afterEach(async function () {
      // script(1) puts node-cli in a session of its own: kill it by its pid too.
      if (consolePid) {
        try {
          process.kill(consolePid, 'SIGKILL');
        } catch {
          // already gone
        }
        consolePid = 0;
      }
      await seed?.stop();
      seed = null;
    });

    it('help, add-peer, search, get, peers, status, an unknown command, quit', async function () {
      if (!findExecutable('script')) {
        console.log('    script (util-linux) is not installed: skipping the terminal console test');
        this.skip();
      }
      const seedDir = path.join(fx.dir, 'seed');
      const payload = path.join(seedDir, 'shared', 'console-payload.bin');
      await randomFile(payload, 2 * 1024 * 1024 + 99);
      const want = await sha1File(payload);
      seed = await startNode(seedDir);
      const infohash = seed.files()[0]!.metainfo.infoHashHex;
      const cwd = path.join(fx.dir, 'cli');
      await fsp.mkdir(path.join(cwd, 's'), { recursive: true });

      const command = [
        'echo CONSOLE-PID:$$;',
        'exec',
        ...[process.execPath, CLI, '127.0.0.1', '0', '--shared', 's', '--downloads', 'd', '--no-folder-watch', '--no-multicast', '--log-level', 'warn'].map(quote),
      ].join(' ');
      const term = track(
        spawn('script', ['-qfec', command, '/dev/null'], {
          cwd,
          env: { ...process.env, SHELL: '/bin/sh', TERM: 'dumb', SHOAL_LOG: 'warn' },
          stdio: ['pipe', 'pipe', 'pipe'],
        }),
      );
      let raw = '';
      term.stdout.on('data', (d: Buffer) => (raw += d.toString()));
      term.stderr.on('data', (d: Buffer) => (raw += d.toString()));
      term.stdin.on('error', () => {});
      const exited = new Promise<number | null>((resolve) => term.once('exit', (code) => resolve(code)));
      const screen = () => stripAnsi(raw);

      const pidLine = await waitFor(() => /CONSOLE-PID:(\d+)/.exec(screen()), 10_000, 'the console to start');
      consolePid = Number(pidLine[1]);
      await waitFor(() => screen().includes('shoal> '), 20_000, `the prompt (screen: ${screen().slice(-300)})`);

      /** Type a line and wait for `expected` in what the terminal shows after it. */
      const type = async (line: string, expected: RegExp, ms = 10_000) => {
        const from = screen().length;
        term.stdin.write(`${line}\r`);
        return waitFor(() => expected.exec(screen().slice(from)), ms, `${JSON.stringify(line)} to print ${expected} (screen: ${screen().slice(from).slice(-400)})`);
      };

      const help = await type('help', /quit\s+stop the node/);
      for (const cmd of ['help', 'files', 'peers', 'add-peer', 'search', 'get', 'status', 'cancel', 'watch', 'unwatch', 'quit']) expect(help.input ?? '').to.include(cmd);
      await type(`add-peer 127.0.0.1:${seed.port}`, new RegExp(`added 127\\.0\\.0\\.1:${seed.port}`));
      await type('search console-pay', new RegExp(`${infohash}.*console-payload\\.bin`));
      await type('get console-payload.bin', new RegExp(`downloading ${infohash}`), 20_000);
      const target = path.join(cwd, 'd', 'console-payload.bin');
      await waitFor(async () => (await fsp.stat(target).catch(() => null)) !== null, 30_000, 'the downloaded file');
      expect(await sha1File(target)).to.equal(want);
      await type('peers', new RegExp(`127\\.0\\.0\\.1:${seed.port}\\s+\\S+\\s+manual\\s+\\d+s\\s+yes`));
      await type('peers manual', /1 peer\(s\)/);
      await type('peers multicast', /no peers from multicast/);
      await type('peers sideways', /usage: peers \[all\|multicast\|bootstrap/);
      await type('watch *.iso', /watching \*\.iso: matching files/);
      await type('watch', /watching: \*\.iso/);
      await type('unwatch *.iso', /stopped watching \*\.iso/);
      await type('status', /console-payload\.bin\s+100\.0%/);
      await type('frobnicate', /unknown command "frobnicate"/);
      term.stdin.write('quit\r');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
      expect(code, `quit (screen: ${screen().slice(-300)})`).to.equal(0);
    });
  });

  it('Ctrl-C (SIGINT) on an idle node exits 0 within 5 s', async function () {
    await fsp.mkdir(path.join(fx.dir, 's'));
    const cli = spawnCli(['127.0.0.1', '0', '--shared', 's', '--downloads', 'd', '--no-folder-watch', '--no-multicast'], fx.dir);
    track(cli.proc);
    const listening = await cli.waitEvent('listening', 20_000);
    expect(listening.port).to.be.a('number').and.above(0);
    const t0 = Date.now();
    cli.proc.kill('SIGINT');
    const res = await Promise.race([cli.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5_000))]);
    expect(res, `exit after SIGINT; ${describeCli(cli)}`).to.deep.equal({ code: 0, signal: null });
    expect(Date.now() - t0).to.be.below(5_000);
  });

});
