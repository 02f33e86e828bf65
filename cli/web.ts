#!/usr/bin/env node
/**
 * `web --peer-port 9000 [--http-port 5000] [--http-host H] [--http-token T] [node options]`:
 * a Shoal node and its dashboard in one process. Prints the URL to open (with the access
 * token when one is in use); logs go to stderr. SIGINT/SIGTERM stop both cleanly.
 * The node options are node-cli's (cli/options.ts), parsed by the same code.
 */
import { createLogger, programName, Node } from '../network/index.js';
import { nodeInit, parseWebCli, UsageError, type CliOptions, type HttpOptions } from './options.js';
import { seedAll } from './seeds.js';
import { shutdownOnSignals } from './shutdown.js';
import { startFailure } from './start-failure.js';
import { WebServer, isLoopbackHost } from '../web/index.js';

let opts: CliOptions & { http: HttpOptions };
try {
  opts = parseWebCli(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`${programName('web')}: ${err.message} (see ${programName('web')} --help)\n`);
  process.exit(2);
}

const logger = createLogger({ level: opts.logLevel, name: 'shoal' });
if (opts.secretWarning) logger.warn(opts.secretWarning);
const node = new Node(nodeInit(opts, logger));
const web = new WebServer({ node, host: opts.http.host, port: opts.http.port, token: opts.http.token, logger });

const shutdown = shutdownOnSignals(logger, [
  { what: 'the dashboard', stop: () => web.stop() },
  { what: 'the node', stop: () => node.stop() },
]);

try {
  await node.start();
} catch (err) {
  const { code, line } = startFailure(err);
  process.stderr.write(`${programName('web')}: ${line}\n`);
  process.exit(code);
}
try {
  await web.start();
} catch (err) {
  process.stderr.write(`${programName('web')}: cannot serve the dashboard on ${opts.http.host}:${opts.http.port}: ${(err as Error).message}\n`);
  await node.stop().catch(() => {});
  process.exit(1);
}

const out = process.stdout;
out.write(`Shoal node ${node.id} (${node.name}) on peer port ${node.port}, sharing ${node.sharedDir}${node.isPrivate ? `; private swarm ${node.secretFingerprint!}` : ''}\n`);
const [first, ...more] = web.openUrls;
out.write(`dashboard: ${first!}\n`);
for (const u of more) out.write(`  also at ${u}\n`);
if (!isLoopbackHost(opts.http.host)) out.write(`  (listening on ${opts.http.host}: the token is required; scripts send "Authorization: Bearer <token>")\n`);
out.write(`API: ${web.url}/api (docs at ${web.url}/api/docs)\n`);

void seedAll(node, opts.seeds, (_event, _data, text) => out.write(`${text}\n`));

/** Downloads named with --get start once the node runs; retried while peers come up. */
for (const target of opts.gets) {
  void (async () => {
    const deadline = Date.now() + opts.resolveTimeoutMs;
    for (;;) {
      try {
        await node.download(target, { only: opts.only });
        return;
      } catch (err) {
        if (shutdown.stopping) return;
        if (Date.now() >= deadline) return logger.warn({ target, err: (err as Error).message }, 'could not start --get');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
}
