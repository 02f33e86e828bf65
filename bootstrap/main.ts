#!/usr/bin/env node
/**
 * `bootstrap [--port 8000] [--host 0.0.0.0] [--data-dir ./bootstrap-data] [--monitor-token T] [--secret-file F] ...`:
 * runs the bootstrap server. Prints its URL and the monitor's (with the token a visitor from
 * another machine needs), then the node table whenever it changes (at most once a
 * second; redrawn in place on a terminal, appended as plain lines otherwise). Logs go to
 * stderr. SIGINT/SIGTERM save the registry and exit 0.
 */
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { createLogger } from '../network/util/log.js';
import { isLoopbackAddress, lanIPv4Addresses } from '../network/util/addresses.js';
import { programName, VERSION } from '../network/util/program.js';
import type { NodeView } from '../network/wire/bootstrap-api.js';
import { BootstrapServer, DEFAULT_PORT } from './server.js';
import { formatBytes } from './monitor.js';
import { MONITOR_TOKEN_FILE, MONITOR_TOKEN_PATTERN, MonitorTokenError } from './monitor-token.js';
import { readSecretFile, secretProblem, SecretError } from '../network/security/secret.js';

/** A usage error: printed as one line, exit status 2. */
class UsageError extends Error {}

interface BootstrapOptions {
  port: number;
  host: string;
  dataDir: string;
  monitorToken?: string;
  heartbeatMs: number;
  ttlMs: number;
  announceIntervalS: number;
  reportThreshold: number;
  logLevel: string;
  /** A private swarm's secret (from --secret or --secret-file). */
  secret?: string;
  /** The secret file is readable by others: worth a warning. */
  secretExposed?: boolean;
}

function parseArgs(argv: string[]): BootstrapOptions {
  const program = new Command(programName('bootstrap'))
    .version(VERSION, '-V, --version', 'print the version and exit')
    .description('Run the Shoal bootstrap server: node registry, search index, BitTorrent tracker and live monitor page')
    .option('--port <port>', 'HTTP port (0 picks a free one)', String(DEFAULT_PORT))
    .option('--host <ip>', 'address to listen on', '0.0.0.0')
    .option('--data-dir <dir>', 'where the registry is kept across restarts', './bootstrap-data')
    .option('--monitor-token <token>', `what a visitor from another machine needs to see the monitor page (default: generated once, kept in <data-dir>/${MONITOR_TOKEN_FILE})`)
    .option('--heartbeat <seconds>', 'how often nodes should check in', '30')
    .option('--ttl <seconds>', 'forget a node after this long without a heartbeat (default: 3 heartbeats)')
    .option('--announce-interval <seconds>', 'the tracker interval BitTorrent clients are given', '60')
    .option('--report-threshold <n>', 'distinct reporters needed to drop an unreachable node (more when many nodes know it)', '3')
    .option('--secret <secret>', "serve a private swarm: nodes, searches and tracker announces need this secret (visible to other users in the process list: prefer --secret-file)")
    .option('--secret-file <file>', "serve a private swarm, its secret on this file's first line")
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'))
    .exitOverride()
    .configureOutput({ writeErr: () => {} })
    .showHelpAfterError(false);
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
      throw new UsageError(err.message.replace(/^error: /, ''));
    }
    throw err;
  }
  const o = program.opts<Record<string, string | undefined>>();
  const port = Number(o.port);
  if (!/^\d+$/.test(o.port ?? '') || port > 65535) throw new UsageError(`--port must be a number from 0 to 65535, got ${JSON.stringify(o.port)}`);
  const seconds = (name: string, value: string | undefined, min: number, max: number): number => {
    const n = Number(value);
    if (!(n >= min && n <= max)) throw new UsageError(`--${name} must be a number of seconds from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return n;
  };
  const heartbeat = seconds('heartbeat', o.heartbeat, 0.1, 3600);
  const ttl = o.ttl === undefined ? 3 * heartbeat : seconds('ttl', o.ttl, 0.1, 86_400);
  if (ttl <= heartbeat) throw new UsageError('--ttl must be longer than --heartbeat');
  const threshold = Number(o.reportThreshold);
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > 100) throw new UsageError('--report-threshold must be a whole number from 1 to 100');
  const monitorToken = o.monitorToken;
  if (monitorToken !== undefined && !MONITOR_TOKEN_PATTERN.test(monitorToken)) throw new UsageError('--monitor-token must be 8 to 256 printable characters without spaces');
  if (o.secret !== undefined && o.secretFile !== undefined) throw new UsageError('give --secret or --secret-file, not both');
  let secret = o.secret;
  let secretExposed = false;
  if (secret !== undefined) {
    const problem = secretProblem(secret);
    if (problem) throw new UsageError(`--secret: ${problem}`);
  } else if (o.secretFile !== undefined) {
    try {
      ({ secret, exposed: secretExposed } = readSecretFile(o.secretFile));
    } catch (err) {
      if (err instanceof SecretError) throw new UsageError(`--secret-file: ${err.message}`);
      throw err;
    }
  }
  return {
    secret,
    secretExposed,
    port,
    monitorToken,
    host: o.host ?? '0.0.0.0',
    dataDir: o.dataDir ?? './bootstrap-data',
    heartbeatMs: Math.round(heartbeat * 1000),
    ttlMs: Math.round(ttl * 1000),
    announceIntervalS: Math.round(seconds('announce-interval', o.announceInterval, 1, 86_400)),
    reportThreshold: threshold,
    logLevel: o.logLevel ?? 'info',
  };
}

/** The console's node table: one header line and one line per node. */
function formatNodeTable(nodes: NodeView[]): string[] {
  const rows = nodes.map((n) => [
    n.id.slice(0, 8), // a short id, as git shows commits: the monitor page and GET /api/nodes have it whole
    clip(n.name || '-', 20),
    n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`,
    n.role,
    String(n.files),
    n.downloads.length === 0 ? '-' : clip(n.downloads.map((d) => `${clip(d.name, 24)} ${d.percent.toFixed(1)}%`).join(', '), 60),
  ]);
  const header = ['ID', 'NAME', 'ADDRESS', 'ROLE', 'FILES', 'DOWNLOADS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)];
}

function clip(s: string, max: number): string {
  const flat = s.replace(/[\u0000-\u001f\u007f]/g, '?'); // names come from remote nodes: no terminal escapes
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** Where nodes elsewhere can reach a server listening on every interface. */
function lanUrls(port: number): string[] {
  return lanIPv4Addresses().map((a) => `http://${a}:${port}`);
}

async function main(): Promise<void> {
  let opts: BootstrapOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${programName('bootstrap')}: ${err.message} (see ${programName('bootstrap')} --help)\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: opts.logLevel, name: 'bootstrap' });
  if (opts.secretExposed) logger.warn('the secret file can be read by other users of this machine (chmod 600 it)');
  const server = new BootstrapServer({ ...opts, logger });
  try {
    await server.start();
  } catch (err) {
    if (err instanceof MonitorTokenError) {
      process.stderr.write(`${programName('bootstrap')}: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`${programName('bootstrap')}: cannot listen on ${opts.host}:${opts.port}: ${(err as Error).message}\n`);
    process.exit(1);
  }
  // Before the first line is printed: whoever reads it may stop us at once.
  let drawTimer: NodeJS.Timeout | null = null;
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1); // a second Ctrl-C: do not wait
    stopping = true;
    logger.info({ signal }, 'stopping: saving the registry');
    if (drawTimer) clearTimeout(drawTimer);
    server.stop().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ err: err.message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  const out = process.stdout;
  // Open without a token on this machine; from elsewhere the token is needed once.
  const everywhere = opts.host === '0.0.0.0' || opts.host === '::';
  const bound = new URL(server.url).hostname.replace(/^\[|\]$/g, '');
  const remote = everywhere ? lanUrls(server.port) : isLoopbackAddress(bound) ? [] : [server.url];
  const kept = opts.monitorToken === undefined ? ` (kept in ${path.join(opts.dataDir, MONITOR_TOKEN_FILE)})` : '';
  const intro = [
    `bootstrap server listening on ${server.url}`,
    ...(everywhere ? remote.map((u) => `  reachable at ${u} (node-cli --bootstrap ${u})`) : []),
    `monitor page: ${server.url}/   tracker: ${server.url}/announce`,
    ...(server.isPrivate ? ['  private swarm: nodes, searches and announces need the secret; the monitor asks for it'] : []),
    ...remote.map((u) => `  from another machine: ${u}/?token=${encodeURIComponent(server.monitorToken)}`),
    `  monitor token${kept}: ${server.monitorToken}`,
  ];
  out.write(`${intro.join('\n')}\n`);

  let lastDraw = 0;
  const draw = () => {
    drawTimer = null;
    lastDraw = Date.now();
    const { nodes, totals } = server.monitorPayload();
    const lines = formatNodeTable(nodes);
    const summary = `${totals.nodes} node${totals.nodes === 1 ? '' : 's'}, ${totals.files} file${totals.files === 1 ? '' : 's'} (${formatBytes(totals.bytes)})`;
    // On a terminal the screen is redrawn whole, so the addresses and the token stay on it.
    if (out.isTTY) out.write(`\x1b[H\x1b[2J${intro.join('\n')}\n\n${summary}\n${lines.join('\n')}\n`);
    else out.write(`--- ${new Date().toISOString()} ${summary}\n${lines.join('\n')}\n`);
  };
  server.registry.on('change', () => {
    if (!drawTimer) drawTimer = setTimeout(draw, Math.max(0, lastDraw + 1000 - Date.now()));
  });
  draw();
}

await main();
