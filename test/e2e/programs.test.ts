/**
 * Every program Shoal installs, as a user first meets it: `--version`, `--help` (each default
 * said once), and the `shoal` launcher, whose subcommands are the other programs run as they
 * are. Everything on 127.0.0.1; children killed and folders removed in the hooks.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { expect } from 'chai';
import { ROOT, Children, tempDirPerTest, waitFor } from '../helpers.js';

const PROGRAMS = {
  'node-cli': path.join(ROOT, 'dist', 'cli', 'main.js'),
  web: path.join(ROOT, 'dist', 'cli', 'web.js'),
  bootstrap: path.join(ROOT, 'dist', 'bootstrap', 'main.js'),
  shoal: path.join(ROOT, 'dist', 'cli', 'shoal.js'),
} as const;
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const children = new Children();

interface Running {
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

function start(program: keyof typeof PROGRAMS, args: string[], cwd: string): Running {
  const proc = children.track(spawn(process.execPath, [PROGRAMS[program], ...args], { cwd, env: { ...process.env, SHOAL_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const stdout: string[] = [];
  const stderr: string[] = [];
  readline.createInterface({ input: proc.stdout }).on('line', (l) => stdout.push(l));
  readline.createInterface({ input: proc.stderr }).on('line', (l) => stderr.push(l));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  return { stdout, stderr, exited, kill: (s) => proc.kill(s) };
}

async function finish(program: keyof typeof PROGRAMS, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = start(program, args, cwd);
  const { code } = await r.exited;
  return { code, stdout: r.stdout.join('\n'), stderr: r.stderr.join('\n') };
}

/** The options of a commander help text, one entry per option with its wrapped description joined. */
function helpEntries(help: string): string[] {
  const entries: string[] = [];
  let inOptions = false;
  for (const line of help.split('\n')) {
    if (/^(Options|Arguments|Commands):/.test(line)) {
      inOptions = line.startsWith('Options');
      continue;
    }
    if (!inOptions) continue;
    if (/^ {2}-/.test(line)) entries.push(line.trim());
    else if (/^ {3,}\S/.test(line) && entries.length > 0) entries[entries.length - 1] += ` ${line.trim()}`;
  }
  return entries;
}

describe('the programs', function () {
  this.timeout(60_000);
  const fx = tempDirPerTest('shoal-programs-', () => children.killAll());

  const versions: Array<[keyof typeof PROGRAMS, string[]]> = [
    ['node-cli', ['--version']],
    ['node-cli', ['-V']],
    ['web', ['--version']],
    ['bootstrap', ['--version']],
    ['shoal', ['--version']],
    ['shoal', ['node', '--version']],
    ['shoal', ['web', '--version']],
    ['shoal', ['bootstrap', '--version']],
    ['shoal', ['create', '--version']],
    ['node-cli', ['info', '--version']],
  ];
  for (const [program, args] of versions) {
    it(`${program} ${args.join(' ')} prints ${VERSION} and exits 0`, async function () {
      const res = await finish(program, args, fx.dir);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.equal(VERSION);
      expect(await fsp.readdir(fx.dir), 'nothing created').to.deep.equal([]);
    });
  }

  const helps: Array<[keyof typeof PROGRAMS, string[], string[]]> = [
    ['node-cli', ['--help'], ['--shared', '--max-upload-rate', '--interface', '--exit-when-done', '--json', '--version']],
    ['web', ['--help'], ['--peer-port', '--http-port', '--version']],
    ['bootstrap', ['--help'], ['--port', '--data-dir', '--ttl', '--version']],
    ['shoal', ['--help'], ['--version']],
    ['shoal', ['node', '--help'], ['--shared', '--get']],
    ['shoal', ['web', '--help'], ['--peer-port']],
    ['shoal', ['bootstrap', '--help'], ['--port']],
    ['shoal', ['create', '--help'], ['--tracker', '--piece-length', '--output', '--force']],
    ['node-cli', ['info', '--help'], ['--json']],
  ];
  for (const [program, args, mentions] of helps) {
    it(`${program} ${args.join(' ')}: exits 0, and no option says its default twice`, async function () {
      const res = await finish(program, args, fx.dir);
      expect(res.code, res.stderr).to.equal(0);
      for (const m of mentions) expect(res.stdout, `mentions ${m}`).to.include(m);
      const entries = helpEntries(res.stdout);
      expect(entries.length, res.stdout).to.be.above(1);
      for (const e of entries) {
        expect((e.match(/default/gi) ?? []).length, e).to.be.at.most(1);
        expect(e, 'an empty list is no default worth printing').to.not.include('(default: [])');
        expect(e).to.not.include('(default: false)');
      }
    });
  }

  it('the shoal commands are listed, a bare shoal or an unknown command is a usage error', async function () {
    const help = await finish('shoal', ['--help'], fx.dir);
    for (const c of ['node', 'web', 'bootstrap', 'create', 'info']) expect(help.stdout).to.match(new RegExp(`^ {2}${c} `, 'm'));
    const bare = await finish('shoal', [], fx.dir);
    expect(bare.code).to.equal(2);
    expect(bare.stdout).to.include('Commands:');
    const unknown = await finish('shoal', ['frobnicate'], fx.dir);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr.split('\n')).to.have.length(1);
    expect(unknown.stderr).to.match(/^shoal: unknown command 'frobnicate'/);
    const missing = await finish('shoal', ['node'], fx.dir);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.equal("shoal node: missing required argument 'port' (see shoal node --help)");
  });

  it('shoal node runs a node (as node-cli does) and stops with status 0 on SIGTERM', async function () {
    await fsp.mkdir(path.join(fx.dir, 's'));
    const r = start('shoal', ['node', '127.0.0.1', '0', '--shared', 's', '--downloads', 'd', '--no-multicast', '--no-folder-watch', '--json'], fx.dir);
    const listening = await waitFor(() => r.stdout.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.event === 'listening'), 30_000, `listening (${r.stderr.join(' | ')})`);
    expect(listening.port).to.be.a('number').and.above(0);
    r.kill('SIGTERM');
    expect(await r.exited).to.deep.equal({ code: 0, signal: null });
  });

  it('shoal web serves the dashboard and shoal bootstrap the server, each stopping with status 0', async function () {
    await fsp.mkdir(path.join(fx.dir, 'shared'));
    const web = start('shoal', ['web', '--peer-port', '0', '--peer-host', '127.0.0.1', '--http-port', '0', '--no-multicast', '--shared', 'shared', '--downloads', 'downloads'], fx.dir);
    const url = await waitFor(() => web.stdout.map((l) => /^dashboard: (http:\/\/\S+)/.exec(l)?.[1]).find(Boolean), 30_000, `the dashboard URL (${web.stderr.join(' | ')})`);
    const status = await fetch(new URL('/api/status', url));
    expect(status.status).to.equal(200);
    const boot = start('shoal', ['bootstrap', '--port', '0', '--host', '127.0.0.1', '--data-dir', 'bd'], fx.dir);
    await waitFor(() => boot.stdout.some((l) => /^bootstrap server listening on http:\/\/127\.0\.0\.1:\d+/.test(l)), 30_000, `the bootstrap server (${boot.stderr.join(' | ')})`);
    web.kill('SIGTERM');
    boot.kill('SIGTERM');
    expect(await web.exited).to.deep.equal({ code: 0, signal: null });
    expect(await boot.exited).to.deep.equal({ code: 0, signal: null });
  });
});
