/**
 * `npm test`: runs mocha inside a private network namespace that holds only `lo`, so the
 * multicast tests are real (several nodes, real sockets) yet nothing they send can leave
 * for the host's network. Arguments go to mocha unchanged: `node dist/test/run.js
 * dist/test/multicast.test.js --grep GOODBYE`.
 *
 * Outside (SHOAL_NETNS unset) it re-runs itself under `unshare -n` as root, which keeps
 * `ip netns add` working for LAN tests, or `unshare -rn` (a user namespace) otherwise.
 * Inside (SHOAL_NETNS=1) it brings `lo` up and runs mocha. Where no namespace can be made
 * (not Linux, no unshare or ip, user namespaces disabled) it says so in one line and runs
 * mocha on the host network; the multicast tests then skip themselves.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..', '..');
const MOCHA = path.join(ROOT, 'node_modules', '.bin', 'mocha');

function warn(message: string): void {
  process.stderr.write(`test/run: ${message}\n`);
}

/** Runs a command with our stdio, passing on SIGINT/SIGTERM; resolves its exit status. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn(command, args, { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    const done = (status: number): void => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(status);
    };
    child.on('error', (err) => {
      warn(`cannot run ${command}: ${err.message}`);
      done(127);
    });
    child.on('exit', (code, signal) => done(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
}

/**
 * Mocha adds spec files named on its command line to the `spec` of .mocharc.json, so
 * `run.js one.test.js` would still run everything. When a spec is named, hand mocha the
 * rest of .mocharc.json as flags instead, with --no-config.
 */
function mochaArgs(args: string[]): string[] {
  const rc = path.resolve('.mocharc.json');
  const isSpec = (a: string): boolean => a === '--spec' || a.startsWith('--spec=') || (!a.startsWith('-') && (/[*?]|\.[cm]?js$/.test(a) || existsSync(a)));
  const ownConfig = args.some((a) => a === '--config' || a.startsWith('--config=') || a === '--no-config');
  if (ownConfig || !args.some(isSpec) || !existsSync(rc)) return args;
  const flags: string[] = [];
  for (const [key, value] of Object.entries(JSON.parse(readFileSync(rc, 'utf8')) as Record<string, unknown>)) {
    if (key === 'spec') continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v === true) flags.push(`--${key}`);
      else if (v === false) flags.push(`--no-${key}`);
      else flags.push(`--${key}`, String(v));
    }
  }
  return ['--no-config', ...flags, ...args];
}

/** Why no namespace can be made here, or undefined if one can (tried for real, then thrown away). */
function cannotUnshare(flag: string): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  const probe = spawnSync('unshare', [flag, 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (probe.error) return `cannot run unshare: ${probe.error.message}`;
  if (probe.status !== 0) return probe.stderr.trim().split('\n').pop() || `unshare ${flag} exited with ${String(probe.status)}`;
  return undefined;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const mocha = [MOCHA, ...mochaArgs(args)];
  if (process.env.SHOAL_NETNS === '1') {
    const up = spawnSync('ip', ['link', 'set', 'lo', 'up'], { stdio: 'inherit' });
    if (up.status !== 0) {
      warn('`ip link set lo up` failed inside the private network namespace');
      return 1;
    }
    return run(process.execPath, mocha, process.env);
  }
  const root = process.getuid?.() === 0;
  const flag = root ? '-n' : '-rn';
  const why = cannotUnshare(flag);
  if (why !== undefined) {
    warn(`no private network namespace (${why}): running on the host network, multicast tests will skip`);
    const env = { ...process.env };
    delete env.SHOAL_NETNS;
    return run(process.execPath, mocha, env);
  }
  return run('unshare', [flag, process.execPath, SELF, ...args], { ...process.env, SHOAL_NETNS: '1' });
}

process.exit(await main());
