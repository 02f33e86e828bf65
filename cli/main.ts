#!/usr/bin/env node
import {
  createLogger, Cooldown, Node, AmbiguousTargetError, BadTargetError, MagnetError, MetainfoError, type DownloadInfo, type KnownPeer,
} from '../network/index.js';
import { nodeInit, parseCli, UsageError, type CliOptions } from './options.js';
import { ProgressView, startConsole } from './console.js';
import { rate } from './format.js';
import { shutdownOnSignals } from './shutdown.js';
import { startFailure } from './start-failure.js';
import { WebServer } from '../web/index.js';

let opts: CliOptions;
try {
  opts = parseCli(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`node-cli: ${err.message} (see node-cli --help)\n`);
  process.exit(2);
}

const logger = createLogger({ level: opts.logLevel, name: 'shoal' });
const node = new Node(nodeInit(opts, logger));

const interactive = process.stdin.isTTY === true && !opts.json;
const view = process.stdout.isTTY && !opts.json ? new ProgressView() : null;
/** One line per event for scripts: JSON with --json, plain text otherwise. */
const emit = (event: string, data: Record<string, unknown>, text: string) => {
  if (opts.json) process.stdout.write(`${JSON.stringify({ event, ...data })}\n`);
  else if (view) view.log(text);
  else process.stdout.write(`${text}\n`);
};
const pct = (d: DownloadInfo) => ((100 * d.verified) / Math.max(1, d.pieces)).toFixed(1);

let web: WebServer | null = null;
const shutdown = shutdownOnSignals(logger, [
  { what: 'the dashboard', stop: () => web?.stop() },
  { what: 'the node', stop: () => node.stop() },
  { what: 'the progress view', stop: () => view?.stop() },
]);

/** Without a terminal, one progress line per download a second at most. */
const progressLines = new Cooldown(1000, 10_000);
node.on('progress', (d) => {
  if (view) return view.update(d);
  if (!progressLines.take(d.infohash)) return;
  emit('progress', { infohash: d.infohash, name: d.name, verified: d.verified, pieces: d.pieces, downloaded: d.downloaded, rate: d.downloadRate, peers: d.peers },
    `progress ${d.name} ${pct(d)}% ${rate(d.downloadRate)} ${d.peers} peers`);
});
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
  const { code, line } = startFailure(err);
  process.stderr.write(`node-cli: ${line}\n`);
  process.exit(code);
});
emit('listening', { id: node.id, name: node.name, port: node.port, files: node.files().length, discovery: node.discovery().map((d) => d.source) },
  `Shoal node ${node.id} listening on port ${node.port}, sharing ${node.sharedDir} (${node.files().length} files)`);

if (opts.http) {
  web = new WebServer({ node, host: opts.http.host, port: opts.http.port, token: opts.http.token, logger });
  try {
    await web.start();
  } catch (err) {
    process.stderr.write(`node-cli: cannot serve the dashboard on ${opts.http.host}:${opts.http.port}: ${(err as Error).message}\n`);
    await node.stop().catch(() => {});
    process.exit(1);
  }
  const [open, ...more] = web.openUrls;
  emit('dashboard', { url: web.url, open, also: more }, `dashboard: ${[open, ...more].join('  ')}`);
}

/** Resolve a --get target, retrying while peers come up, then wait for the verified file. */
async function get(target: string): Promise<void> {
  const deadline = Date.now() + opts.resolveTimeoutMs;
  for (;;) {
    try {
      const infohash = await node.download(target);
      await node.whenDone(infohash);
      return;
    } catch (err) {
      if (shutdown.stopping) return;
      // A target that can never work is final; anything else (nobody has it yet, a peer did not answer) may change.
      const final = err instanceof BadTargetError || err instanceof MagnetError || err instanceof MetainfoError || err instanceof AmbiguousTargetError;
      if (final || Date.now() >= deadline) throw err;
      logger.debug({ target, err: (err as Error).message }, 'not resolvable yet; retrying');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

const gets = opts.gets.map((t) =>
  get(t).then(
    () => true,
    (err: Error) => {
      emit('failed', { target: t, error: err.message }, `failed ${t}: ${err.message}`);
      return false;
    },
  ),
);
if (opts.exitWhenDone) {
  const ok = (await Promise.all(gets)).every(Boolean);
  await shutdown(ok ? 0 : 1);
}
if (interactive) startConsole(node, view ?? new ProgressView(), () => void shutdown(0));
