/**
 * The `web` command and `node-cli --http-port` as a user meets them: they start, print the
 * dashboard URL, answer the API, stop with status 0 on SIGTERM; usage errors exit 2 with
 * one line on stderr. Everything on 127.0.0.1; children killed and folders removed in the hooks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import readline from 'node:readline';
import { expect } from 'chai';
import { StatusSchema } from '../../web/contract.js';
import { CLI, ROOT, Children, spawnCli, waitFor, exitWithin, tempDirPerTest } from '../helpers.js';
import { call } from '../web-http.js';

const WEB = path.join(ROOT, 'dist', 'cli', 'web.js');
const children = new Children();

interface Run {
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(file: string, args: string[], cwd: string): Run {
  const proc = children.track(spawn(process.execPath, [file, ...args], { cwd, env: { ...process.env, SHOAL_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const stdout: string[] = [];
  const stderr: string[] = [];
  readline.createInterface({ input: proc.stdout! }).on('line', (l) => stdout.push(l));
  readline.createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  const exited = once(proc, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return { proc, stdout, stderr, exited };
}

const common = ['--no-multicast', '--shared', 'shared', '--downloads', 'downloads', '--log-level', 'warn'];

describe('web command', function () {
  this.timeout(30_000);
  const fx = tempDirPerTest('shoal-web-cli-', () => children.killAll());
  beforeEach(() => fsp.mkdir(path.join(fx.dir, 'shared'))); // --shared must name a folder

  it('web --peer-port 0 --http-port 0 starts, prints its URL, answers /api/status, exits 0 on SIGTERM', async function () {
    const r = run(WEB, ['--peer-port', '0', '--http-port', '0', ...common], fx.dir);
    const line = await waitFor(() => r.stdout.find((l) => l.startsWith('dashboard: ')), 15_000, `the dashboard line (stderr: ${r.stderr.join(' | ')})`);
    const url = /^dashboard: (http:\/\/127\.0\.0\.1:\d+)\/$/.exec(line)?.[1];
    expect(url, line).to.be.a('string');
    const res = await call(url!, 'GET', '/api/status');
    expect(res.status).to.equal(200);
    const s = StatusSchema.parse(res.json());
    expect(s.httpUrl).to.equal(url);
    expect(s.sharedDir).to.equal(path.join(fx.dir, 'shared'));
    r.proc.kill('SIGTERM');
    expect(await exitWithin(r, 10_000)).to.deep.equal({ code: 0, signal: null });
  });

  it('with --http-token the printed URL carries the token, and the API wants it', async function () {
    const r = run(WEB, ['--peer-port', '0', '--http-port', '0', '--http-token', 'sekrit-token-1', ...common], fx.dir);
    const line = await waitFor(() => r.stdout.find((l) => l.startsWith('dashboard: ')), 15_000, 'the dashboard line');
    const m = /^dashboard: (http:\/\/127\.0\.0\.1:\d+)\/\?token=sekrit-token-1$/.exec(line);
    expect(m, line).to.not.equal(null);
    expect((await call(m![1]!, 'GET', '/api/status')).status).to.equal(401);
    expect((await call(m![1]!, 'GET', '/api/status', { headers: { Authorization: 'Bearer sekrit-token-1' } })).status).to.equal(200);
    r.proc.kill('SIGINT');
    expect((await exitWithin(r, 10_000)).code).to.equal(0);
  });

  describe('usage errors: status 2 and one line on stderr', function () {
    const cases: Array<[string, string[], RegExp]> = [
      ['no --peer-port', ['--http-port', '0'], /peer-port/],
      ['--http-port abc', ['--peer-port', '0', '--http-port', 'abc'], /--http-port/],
      ['--http-port 70000', ['--peer-port', '0', '--http-port', '70000'], /--http-port/],
      ['--peer-port -1', ['--peer-port', '-1'], /peer-port/],
      ['a short --http-token', ['--peer-port', '0', '--http-token', 'short'], /--http-token/],
      ['a stray argument', ['--peer-port', '0', 'extra'], /argument/],
    ];
    for (const [what, args, message] of cases) {
      it(what, async function () {
        const r = run(WEB, args, fx.dir);
        const { code } = await exitWithin(r, 10_000);
        expect(code).to.equal(2);
        expect(r.stderr, r.stderr.join('\n')).to.have.length(1);
        expect(r.stderr[0]).to.match(/^web: /).and.to.match(message);
      });
    }
  });

  it('web --help exits 0 and lists the dashboard options', async function () {
    const r = run(WEB, ['--help'], fx.dir);
    expect((await exitWithin(r, 10_000)).code).to.equal(0);
    const out = r.stdout.join('\n');
    for (const opt of ['--peer-port', '--http-port', '--http-host', '--http-token', '--peer-ip', '--shared', '--bootstrap', '--no-multicast']) expect(out).to.include(opt);
  });
});

describe('node-cli --http-port', function () {
  this.timeout(30_000);
  const fx = tempDirPerTest('shoal-web-cli-', () => children.killAll());
  beforeEach(() => fsp.mkdir(path.join(fx.dir, 'shared'))); // --shared must name a folder

  it('serves the same dashboard next to the node, announced as a "dashboard" event, and stops with it', async function () {
    const cli = spawnCli(['0', '--http-port', '0', ...common], fx.dir);
    children.track(cli.proc);
    const ev = await cli.waitEvent('dashboard', 15_000);
    const url = String(ev.url);
    expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ev.open).to.equal(`${url}/`);
    const listening = await cli.waitEvent('listening');
    const s = StatusSchema.parse((await call(url, 'GET', '/api/status')).json());
    expect(s.id).to.equal(listening.id);
    expect((await call(url, 'GET', '/', { headers: { Accept: 'text/html' } })).status).to.equal(200);
    cli.proc.kill('SIGTERM');
    expect(await exitWithin(cli, 10_000)).to.deep.equal({ code: 0, signal: null });
  });

  it('--http-token or --http-host without --http-port, or a bad --http-port, is a usage error', async function () {
    for (const args of [['0', '--http-token', 'abcdefgh123'], ['0', '--http-host', '127.0.0.1'], ['0', '--http-port', 'x']]) {
      const r = run(CLI, args, fx.dir);
      expect((await exitWithin(r, 10_000)).code, args.join(' ')).to.equal(2);
      expect(r.stderr).to.have.length(1);
      expect(r.stderr[0]).to.match(/^node-cli: .*--http-/);
    }
  });
});
