#!/usr/bin/env node
import { createLogger, programName, Cooldown, Node, type KnownPeer } from '../network/index.js';
import { nodeInit, parseCli, seedCommand, UsageError, type CliOptions } from './options.js';
import { seedAll } from './seeds.js';
import { startConsole } from './console.js';
import { LiveView } from './live-view.js';
import { bytes, eta, rate } from './format.js';
import { Gets, percent } from './gets.js';
import { shutdownOnSignals } from './shutdown.js';
import { startFailure } from './start-failure.js';
import { isTool, runTool } from './tools.js';
import { WebServer } from '../web/index.js';

const argv = process.argv.slice(2);
// `node-cli create FILE` and `node-cli info X.torrent` run no node.
if (isTool(argv[0])) process.exit(await runTool(argv[0], argv.slice(1), programName('node-cli')));

let opts: CliOptions;
try {
  opts = parseCli(seedCommand(argv));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`${programName('node-cli')}: ${err.message} (see ${programName('node-cli')} --help)\n`);
  process.exit(2);
}

const interactive = process.stdin.isTTY === true && !opts.json;
/** Bars and a prompt that stay in place need a terminal that moves its cursor: plain lines otherwise. */
const view = process.stdout.isTTY && !opts.json && process.env.TERM !== 'dumb' ? new LiveView(process.stdout) : null;
// On that terminal the node's log prints above the bars and the prompt too, never across them.
const logger = createLogger({ level: opts.logLevel, name: 'shoal', ...(view && process.stderr.isTTY && { lines: (text: string) => view.log(text) }) });
if (opts.secretWarning) logger.warn(opts.secretWarning);
const node = new Node(nodeInit(opts, logger));

/** One line per event for scripts: JSON with --json, plain text otherwise. */
const emit = (event: string, data: Record<string, unknown>, text: string) => {
  if (opts.json) process.stdout.write(`${JSON.stringify({ event, ...data })}\n`);
  else if (view) view.log(text);
  else process.stdout.write(`${text}\n`);
};

let web: WebServer | null = null;
const shutdown = shutdownOnSignals(
  logger,
  [
    { what: 'the progress view', stop: () => view?.stop() },
    { what: 'the dashboard', stop: () => web?.stop() },
    { what: 'the node', stop: () => node.stop() },
  ],
  // A node stopped on purpose exits 0; an --exit-when-done run cut short says what it left.
  (signal) => (opts.exitWhenDone ? gets.interrupted(signal) : 0),
);
const gets = new Gets({ node, log: logger, emit, resolveTimeoutMs: opts.resolveTimeoutMs, exitWhenDone: opts.exitWhenDone, stopping: () => shutdown.stopping, only: opts.only });

/** Without a terminal, one progress line per download a second at most. */
const progressLines = new Cooldown(1000, 10_000);
node.on('progress', (d) => {
  if (view) return view.update(d);
  if (!progressLines.take(d.infohash)) return;
  emit('progress', { infohash: d.infohash, name: d.name, verified: d.verified, pieces: d.pieces, downloaded: d.downloaded, rate: d.downloadRate, peers: d.peers, eta: d.eta },
    `progress ${d.name} ${percent(d)}% of ${bytes(d.length)} ${rate(d.downloadRate)} ${d.peers} peer${d.peers === 1 ? '' : 's'} ETA ${eta(d.eta)}`);
});
node.on('download-state', (d) => view?.update(d));
// Progress comes with each verified piece: a stalled download's bar is refreshed too (its rate falls, its ETA turns to --).
if (view) setInterval(() => node.listDownloads().forEach((d) => d.state === 'downloading' && view.update(d)), 1000).unref();
node.on('download-removed', (h) => view?.remove(h));
const peerData = (p: KnownPeer) => ({ id: p.id, name: p.name, host: p.host, port: p.port, sources: [...p.sources] });
node.on('peer-up', (p) => emit('peer-up', peerData(p), `peer up ${p.name ?? p.id ?? ''} ${p.host}:${p.port} (${[...p.sources].join(',')})`));
node.on('peer-down', (p) => emit('peer-down', peerData(p), `peer down ${p.name ?? p.id ?? ''} ${p.host}:${p.port}`));
node.on('watched', (f, pattern, infohash) => emit('watched', { name: f.name, pattern, infohash }, `watch ${pattern}: downloading ${f.name}`));
node.on('discovery-health', (source, h) => {
  if (opts.json) emit('discovery', { source, state: h.state, detail: h.detail }, '');
});
node.on('error', (err, infohash) => emit('error', { infohash, error: err.message }, `error ${infohash ?? ''}: ${err.message}`));
node.on('done', (d) => {
  view?.update(d);
  emit('done', { infohash: d.infohash, name: d.name, path: d.path, downloaded: d.downloaded, fetched: d.fetched, wasted: d.wasted, hashFailures: d.hashFailures },
    `done ${d.name} ${d.infohash} -> ${d.path}`);
});

await node.start().catch((err: unknown) => {
  view?.stop();
  const { code, line } = startFailure(err);
  process.stderr.write(`${programName('node-cli')}: ${line}\n`);
  process.exit(code);
});
emit('listening', { id: node.id, name: node.name, port: node.port, files: node.files().length, discovery: node.discovery().map((d) => d.source), swarm: node.secretFingerprint ?? 'open' },
  `Shoal node ${node.id} listening on port ${node.port}, sharing ${node.sharedDir} (${node.files().length} files)${node.isPrivate ? `; private swarm ${node.secretFingerprint!}` : ''}`);

if (opts.http) {
  web = new WebServer({ node, host: opts.http.host, port: opts.http.port, token: opts.http.token, logger });
  try {
    await web.start();
  } catch (err) {
    view?.stop();
    process.stderr.write(`${programName('node-cli')}: cannot serve the dashboard on ${opts.http.host}:${opts.http.port}: ${(err as Error).message}\n`);
    await node.stop().catch(() => {});
    process.exit(1);
  }
  const [open, ...more] = web.openUrls;
  emit('dashboard', { url: web.url, open, also: more }, `dashboard: ${[open, ...more].join('  ')}`);
}

void seedAll(node, opts.seeds, emit);
const finished = gets.run(opts.gets);
if (opts.exitWhenDone) await shutdown((await finished) ? 0 : 1);
if (interactive) startConsole(node, view, () => void shutdown(0));
