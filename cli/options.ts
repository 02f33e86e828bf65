import { Command, CommanderError, Option } from 'commander';
import { parseSize, hostPort } from './format.js';

export interface CliOptions {
  listenHost?: string;
  port: number;
  shared: string;
  downloads: string;
  peers: Array<{ host: string; port: number }>;
  gets: string[];
  exitWhenDone: boolean;
  trackers: string[];
  peerIp?: string;
  pieceLength?: number;
  maxUploadRate: number;
  resolveTimeoutMs: number;
  watch: boolean;
  logLevel: string;
  json: boolean;
}

/** A usage error: printed as one line, exit status 2. */
export class UsageError extends Error {}

const collect = (v: string, acc: string[]) => [...acc, v];

/** Parse `node-cli [ip] <port> [options]`. Throws UsageError (help and version exit 0 themselves). */
export function parseCli(argv: string[]): CliOptions {
  const program = new Command('node-cli')
    .description('Run a Shoal node: share a folder, find peers, download files in verified pieces')
    .argument('[ip]', 'address to listen on (default: every interface)')
    .argument('<port>', 'TCP port for peers and the control protocol (0 picks a free one)')
    .option('--shared <dir>', 'folder to share', './shared_files')
    .option('--downloads <dir>', 'folder downloads go to (shared once complete)', './downloads')
    .option('--peer <host:port>', 'a peer to use (repeatable)', collect, [])
    .option('--get <what>', 'download a name, infohash, magnet link or .torrent file (repeatable)', collect, [])
    .option('--exit-when-done', 'exit 0 once every --get is complete and verified, non-zero if one fails', false)
    .option('--tracker <url>', 'HTTP tracker to announce shared files to (repeatable)', collect, [])
    .option('--peer-ip <ip>', 'the address other nodes should use for this node (default: detected LAN address)')
    .option('--piece-length <size>', 'piece length for shared files, a power of two from 16k to 16M (default 512k)')
    .option('--max-upload-rate <size>', 'upload limit per second, e.g. 2M (default: none)', '0')
    .option('--resolve-timeout <seconds>', 'how long --get keeps looking for peers that have the file', '30')
    .option('--no-watch', 'do not watch the shared folders for changes')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'))
    .option('--json', 'print events as JSON lines on stdout (for scripts)', false)
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
  const args = program.args;
  const o = program.opts<Record<string, unknown>>();
  const [ip, portText] = args.length >= 2 ? [args[0], args[1]] : [undefined, args[0]];
  const port = Number(portText);
  if (!/^\d+$/.test(portText ?? '') || port > 65535) throw new UsageError(`port must be a number from 0 to 65535, got ${JSON.stringify(portText)}`);
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  const peers = wrap(() => (o.peer as string[]).map(hostPort));
  const pieceLength = o.pieceLength === undefined ? undefined : wrap(() => parseSize(o.pieceLength as string));
  if (pieceLength !== undefined && (pieceLength < 16384 || pieceLength > 16 * 1024 * 1024 || (pieceLength & (pieceLength - 1)) !== 0))
    throw new UsageError('--piece-length must be a power of two from 16k to 16M');
  const resolveTimeout = Number(o.resolveTimeout);
  if (!(resolveTimeout >= 0)) throw new UsageError('--resolve-timeout must be a number of seconds');
  const gets = o.get as string[];
  if (o.exitWhenDone && gets.length === 0) throw new UsageError('--exit-when-done needs at least one --get');
  for (const url of o.tracker as string[]) if (!/^https?:\/\//.test(url)) throw new UsageError(`--tracker must be an http(s) URL, got ${url}`);
  return {
    listenHost: ip,
    port,
    shared: o.shared as string,
    downloads: o.downloads as string,
    peers,
    gets,
    exitWhenDone: Boolean(o.exitWhenDone),
    trackers: o.tracker as string[],
    peerIp: o.peerIp as string | undefined,
    pieceLength,
    maxUploadRate: wrap(() => parseSize(o.maxUploadRate as string)),
    resolveTimeoutMs: resolveTimeout * 1000,
    watch: o.watch !== false,
    logLevel: o.logLevel as string,
    json: Boolean(o.json),
  };
}
