/**
 * The benchmarks as a user meets them, never run for real: `--help` answers without running
 * anything, and a SIGTERM (or Ctrl-C) in the middle of a run with a tiny size leaves nothing
 * behind: no process it started (found by a marker in their environment, which every child
 * inherits), no file in its temp folder or /dev/shm, no network namespace.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { expect } from 'chai';
import { ROOT, Children, tempDirPerTest, waitFor } from '../helpers.js';
import { netnsSupport } from '../netns.js';

const BENCH = (name: string) => path.join(ROOT, 'dist', 'bench', `${name}.js`);
const children = new Children();

/** Pids of the processes whose environment holds `marker` (the bench itself included). */
function marked(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(marker)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

function describeProc(pid: number): string {
  try {
    return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ')}`;
  } catch {
    return `${pid}: gone`;
  }
}

interface Bench {
  pid: number;
  marker: string;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

function startBench(name: string, args: string[], env: Record<string, string>, tmp: string): Bench {
  const marker = `SHOAL_BENCH_TEST_MARK=${randomBytes(8).toString('hex')}`;
  const [k, v] = marker.split('=') as [string, string];
  const proc = children.track(spawn(process.execPath, [BENCH(name), ...args], { env: { ...process.env, TMPDIR: tmp, SHOAL_LOG: 'warn', ...env, [k]: v }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const output: string[] = [];
  readline.createInterface({ input: proc.stdout }).on('line', (l) => output.push(l));
  readline.createInterface({ input: proc.stderr }).on('line', (l) => output.push(`stderr: ${l}`));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  return { pid: proc.pid!, marker, output, exited, kill: (s) => proc.kill(s) };
}

/** Should a bench ignore --help again, it runs briefly and writes no results. */
const TINY = {
  BENCH_SIZE_MB: '1',
  BENCH_RUNS: '1',
  TRACKER_SECONDS: '1',
  TRACKER_WARMUP: '0',
  TRACKER_ROUNDS: '1',
  TRACKER_CONNECTIONS: '1',
  TRACKER_NO_RESULTS: '1',
  DISCOVERY_NODES: '2',
  DISCOVERY_INTERVALS: '1',
  DISCOVERY_RUNS: '1',
  DISCOVERY_NO_RESULTS: '1',
};

const shmEntries = async () => new Set(await fsp.readdir('/dev/shm').catch(() => [] as string[]));

describe('the benchmarks', function () {
  this.timeout(120_000);
  let leftovers: number[] = [];
  const fx = tempDirPerTest('shoal-bench-cli-', async () => {
    // Whatever a failed test left running is killed by its pid.
    for (const pid of leftovers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    leftovers = [];
    await children.killAll();
  });

  for (const name of ['transfer', 'tracker', 'discovery']) {
    it(`${name} --help prints its usage and runs nothing`, async function () {
      const tmp = path.join(fx.dir, 'tmp');
      await fsp.mkdir(tmp);
      const before = await shmEntries();
      const b = startBench(name, ['--help'], { BENCH_DIR: tmp, ...TINY }, tmp);
      const { code } = await b.exited;
      expect(code, b.output.join('\n')).to.equal(0);
      expect(b.output.join('\n')).to.match(/usage:/);
      expect(b.output.join('\n')).to.match(/environment/);
      expect(b.output.some((l) => /^writing a |^round \d|^run \d|^\d+ connections|^Discovery on a LAN/.test(l)), b.output.join("\n")).to.equal(false);
      expect(await fsp.readdir(tmp)).to.deep.equal([]);
      expect([...(await shmEntries())].filter((e) => !before.has(e))).to.deep.equal([]);
      expect(marked(b.marker)).to.deep.equal([]);
      const bad = startBench(name, ['--size', '1'], { BENCH_DIR: tmp, ...TINY }, tmp);
      expect((await bad.exited).code).to.equal(2);
    });
  }

  /** Start `name`, wait for `ready`, SIGTERM it, and check it left nothing. */
  async function interrupt(name: string, env: Record<string, string>, ready: (b: Bench) => boolean, extraCheck: () => Promise<void> = async () => {}): Promise<void> {
    const tmp = path.join(fx.dir, 'tmp');
    const benchDir = path.join(fx.dir, 'bench-dir');
    await fsp.mkdir(tmp);
    await fsp.mkdir(benchDir);
    const b = startBench(name, [], { BENCH_DIR: benchDir, ...env }, tmp);
    await waitFor(() => ready(b) || b.output.some((l) => /^stderr: /.test(l) && !/warn/i.test(l)) || null, 90_000, `${name} to get going (${b.output.slice(-5).join(' | ')})`);
    const running = marked(b.marker);
    leftovers = running.filter((p) => p !== b.pid);
    expect(running.length, `${name} runs children: ${b.output.join(' | ')}`).to.be.above(1);
    b.kill('SIGTERM');
    const res = await b.exited;
    expect(res, b.output.join('\n')).to.deep.equal({ code: 143, signal: null });
    // Its children are gone (a moment for the kernel to reap what was killed last).
    await waitFor(() => marked(b.marker).length === 0, 10_000, `every process ${name} started to be gone`).catch((err: Error) => {
      throw new Error(`${err.message}: ${marked(b.marker).map(describeProc).join('; ')}`);
    });
    leftovers = [];
    expect(await fsp.readdir(tmp), 'its temp folder').to.deep.equal([]);
    expect(await fsp.readdir(benchDir), 'BENCH_DIR').to.deep.equal([]);
    await extraCheck();
  }

  it('transfer, SIGTERM mid-run: exits 143 and leaves no process, no file', async function () {
    await interrupt('transfer', { BENCH_SIZE_MB: '1', BENCH_RUNS: '1' }, (b) => marked(b.marker).length >= 2 && b.output.some((l) => /writing a 1 MiB file\.\.\. done/.test(l)));
  });

  it('tracker, SIGTERM mid-run: exits 143 and leaves no process, no file', async function () {
    await interrupt('tracker', { TRACKER_SECONDS: '5', TRACKER_WARMUP: '0', TRACKER_ROUNDS: '1', TRACKER_CONNECTIONS: '2', TRACKER_NO_RESULTS: '1' }, (b) => marked(b.marker).length >= 2 && b.output.some((l) => /connections/.test(l)));
  });

  it('discovery, SIGTERM mid-run: exits 143 and leaves no process, no file, no namespace', async function () {
    const support = netnsSupport();
    if (!support.ok) {
      console.log(`    the discovery benchmark builds network namespaces and ${support.reason}: skipping`);
      this.skip();
    }
    const namespaces = () => (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith('shoal-bd-'));
    const before = new Set(namespaces());
    await interrupt(
      'discovery',
      { DISCOVERY_NODES: '3', DISCOVERY_INTERVALS: '1', DISCOVERY_RUNS: '1', DISCOVERY_NO_RESULTS: '1' },
      (b) => marked(b.marker).length >= 3 && b.output.some((l) => /Discovery on a LAN of 3 network namespaces/.test(l)),
      async () => {
        expect(namespaces().filter((n) => !before.has(n)), 'namespaces left').to.deep.equal([]);
      },
    );
  });
});
