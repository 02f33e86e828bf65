import { Command, CommanderError, Option } from 'commander';
import { isIPv4 } from 'node:net';
import path from 'node:path';
import { parseSize, hostPort } from './format.js';
import { statSync } from 'node:fs';
import { checkPattern, loadConfigFile, programName, readSecretFile, secretProblem, SecretError, VERSION, ConfigError, CONFIG_FILE_NAME, CONFIG_KEYS, type ConfigValues, type NodeInit, type Logger } from '../network/index.js';

export interface CliOptions {
  listenHost?: string;
  port: number;
  shared: string[];
  /** --shared was not given (nor in the config file): its default folder is made when missing. */
  sharedIsDefault: boolean;
  downloads: string;
  /** --state: node id, hash cache, resume records (default: <downloads>/.shoal). */
  state?: string;
  peers: Array<{ host: string; port: number }>;
  gets: string[];
  /** --only: the files of the --get downloads to fetch (shell patterns); every file when empty. */
  only: string[];
  /** --share-folder-as-torrent: folders shared whole, each as one multi-file torrent. */
  shareFolders: string[];
  /** .torrent files to seed from the data here (--seed, or `node-cli seed X.torrent`). */
  seeds: string[];
  exitWhenDone: boolean;
  trackers: string[];
  peerIp?: string;
  pieceLength?: number;
  maxUploadRate: number;
  encryption: 'prefer' | 'require' | 'off';
  utp: 'on' | 'prefer' | 'off';
  resolveTimeoutMs: number;
  folderWatch: boolean;
  name?: string;
  bootstrap?: string;
  multicast: false | { group: string; port: number; interfaces?: string[]; ttl: number; intervalMs: number };
  watchPatterns: string[];
  logLevel: string;
  json: boolean;
  /** Serve the web dashboard too. */
  http?: HttpOptions;
  config: ConfigLayer;
  /** A private swarm's secret (--secret, --secret-file, or `secret` / `secretFile` in the config file). */
  secret?: string;
  /** Where the secret sits is readable by other users: the program warns once it logs. */
  secretWarning?: string;
}

/** Where the options not on the command line came from (see layerConfig). */
export interface ConfigLayer {
  /** The config file read (it may not exist), where settings changed at run time are kept. */
  file: string;
  /** The state folder, when the file is the one in it (a `downloads` key does not move it). */
  stateDir?: string;
  /** Keys the command line set: they win over the file. */
  fromCommandLine: string[];
}

/** A usage error: printed as one line, exit status 2. */
export class UsageError extends Error {}

/** A repeatable option. No default given to commander: its help would print "(default: [])" after every one. */
const collect = (v: string, acc: string[] | undefined) => [...(acc ?? []), v];
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : v === undefined ? [] : [String(v)]);

/** Where the dashboard listens (`--http-port`, `--http-host`, `--http-token`). */
export interface HttpOptions {
  port: number;
  host: string;
  token?: string;
}

/** The options every command that runs a node understands (node-cli and web). */
function addNodeOptions(program: Command): Command {
  return program
    .option('--config <file>', `read options from this JSON file (default: <downloads>/.shoal/${CONFIG_FILE_NAME} when it exists)`)
    .option('--shared <dir>', 'folder to share (repeatable; default ./shared_files)', collect)
    .option('--downloads <dir>', 'folder downloads go to (shared once complete)', './downloads')
    .option('--state <dir>', "folder for the node's state: id, hash cache, resume records (default: <downloads>/.shoal)")
    .option('--peer <host:port>', 'a peer to use (repeatable)', collect)
    .option('--get <what>', 'download a name, infohash, magnet link or .torrent file (repeatable)', collect)
    .option('--only <glob>', 'with --get: download only the files of a multi-file torrent that match, e.g. "*.flac" or "disc1/*" (repeatable)', collect)
    .option('--share-folder-as-torrent <dir>', 'share this folder whole as one multi-file torrent, the infohash mktorrent gives it (repeatable)', collect)
    .option('--seed <file.torrent>', 'seed a .torrent made elsewhere from its data in the shared or download folders, under its own infohash; kept across restarts (repeatable)', collect)
    .option('--tracker <url>', 'HTTP tracker to announce shared files to (repeatable)', collect)
    .option('--peer-ip <ip>', 'the address other nodes should use for this node (default: detected LAN address)')
    .option('--piece-length <size>', 'piece length for shared files, a power of two from 16k to 16M (default 512k)')
    .option('--max-upload-rate <size>', 'upload limit per second, e.g. 2M (default: none)')
    .addOption(new Option('--encryption <mode>', 'message stream encryption (MSE/PE): prefer (offer and accept it, fall back to plain), require (RC4 or nothing), off').choices(['prefer', 'require', 'off']).default('prefer'))
    .addOption(new Option('--utp <mode>', 'uTP on the peer port number (UDP): on (accept it, dial it when TCP fails), prefer (dial it first), off').choices(['on', 'prefer', 'off']).default('on'))
    .option('--resolve-timeout <seconds>', 'how long --get keeps looking for peers that have the file, and a started download for its first peer or byte', '30')
    .option('--no-folder-watch', 'do not watch the shared folders for changes (a rescan still runs every minute)')
    .option('--name <name>', 'the name other nodes see (default: host name)')
    .option('--bootstrap <url>', 'bootstrap server to register with, search and use as tracker, e.g. http://10.0.0.1:8000')
    .option('--secret <secret>', 'join a private swarm: connections between nodes are TLS keyed from this secret, beacons and bootstrap requests prove it, and nodes without it see nothing (at least 8 characters; other users can see it in the process list: prefer --secret-file)')
    .option('--secret-file <file>', "join a private swarm whose secret is this file's first line (keep the file chmod 600)")
    .option('--no-multicast', 'no LAN discovery by multicast beacons')
    .option('--multicast-group <ip>', 'multicast group for beacons', '224.1.1.1')
    .option('--multicast-port <port>', 'UDP port for beacons', '10000')
    .option('--interface <name|ip>', 'send and listen for beacons on this interface only (repeatable; default: every usable IPv4 interface)', collect)
    .option('--multicast-ttl <n>', 'TTL of beacons (1 = this LAN only)', '1')
    .option('--beacon-interval <seconds>', 'seconds between beacons, 0.1 to 300; peers expire after 3 missed', '5')
    .option('--watch <glob>', 'download every file matching this pattern that appears on the network (repeatable), e.g. "*.iso"', collect)
    .option('--http-host <ip>', 'address the dashboard listens on; anything but loopback requires a token', '127.0.0.1')
    .option('--http-token <token>', 'access token for the dashboard (default: generated and printed when --http-host is not loopback)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'));
}

/** Run commander; its errors become UsageErrors (help and version exit 0 themselves). */
function run(program: Command, argv: string[]): void {
  program.version(VERSION, '-V, --version', 'print the version and exit').exitOverride().configureOutput({ writeErr: () => {} }).showHelpAfterError(false);
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
      throw new UsageError(err.message.replace(/^error: /, ''));
    }
    throw err;
  }
}

/**
 * The config file under the command line: every option the command line did not set takes
 * the file's value. The file is `--config FILE`, or shoal.json in the state folder of the
 * downloads folder named on the command line (or the default one); a `downloads` key in
 * that file moves the downloads but not the state folder, so the file stays where it is.
 * A bad file is a usage error naming the file and the key.
 */
function layerConfig(program: Command): { layer: ConfigLayer; values: ConfigValues } {
  const o = program.opts<Record<string, unknown>>();
  const named = o.config as string | undefined;
  const stateDir = path.resolve((o.state as string | undefined) ?? path.join(o.downloads as string, '.shoal'));
  const file = named === undefined ? path.join(stateDir, CONFIG_FILE_NAME) : path.resolve(named);
  let values: ConfigValues;
  try {
    values = loadConfigFile(file, named !== undefined);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  const given = new Set(program.options.map((opt) => opt.attributeName()).filter((k) => program.getOptionValueSource(k) === 'cli'));
  // One secret: when the command line names one, the file's (whichever key) is not used.
  const secretGiven = given.has('secret') || given.has('secretFile');
  for (const [key, value] of Object.entries(values)) {
    if (given.has(key) || !program.options.some((opt) => opt.attributeName() === key)) continue;
    if (secretGiven && (key === 'secret' || key === 'secretFile')) continue;
    // In the form commander gives: numbers as text, checked below like the command line's.
    program.setOptionValueWithSource(key, typeof value === 'number' ? String(value) : value, 'config');
  }
  const fromCommandLine = CONFIG_KEYS.filter((k) => given.has(k));
  return { layer: { file, ...(named === undefined && { stateDir }), fromCommandLine }, values };
}

/**
 * The swarm's secret from --secret, --secret-file or the config file (already layered), and a
 * warning when other users can read where it is kept (as ssh warns of a private key).
 */
function secretOptions(program: Command, layer: ConfigLayer): { secret?: string; secretWarning?: string } {
  const o = program.opts<Record<string, unknown>>();
  const text = o.secret as string | undefined;
  const file = o.secretFile as string | undefined;
  const where = (key: string) => (program.getOptionValueSource(key) === 'config' ? `"${key}" in ${layer.file}` : `--${key === 'secret' ? 'secret' : 'secret-file'}`);
  if (text !== undefined && file !== undefined) throw new UsageError(`give --secret or --secret-file, not both (${where('secret')}, ${where('secretFile')})`);
  if (text !== undefined) {
    const problem = secretProblem(text);
    if (problem) throw new UsageError(`${where('secret')}: ${problem}`);
    if (program.getOptionValueSource('secret') !== 'config') return { secret: text };
    return { secret: text, ...(readableByOthers(layer.file) && { secretWarning: `${layer.file} holds the swarm's secret and other users can read it (chmod 600 it)` }) };
  }
  if (file === undefined) return {};
  try {
    const { secret, exposed } = readSecretFile(path.resolve(file));
    return { secret, ...(exposed && { secretWarning: `the secret file ${file} can be read by other users (chmod 600 it)` }) };
  } catch (err) {
    if (err instanceof SecretError) throw new UsageError(`${where('secretFile')}: ${err.message}`);
    throw err;
  }
}

function readableByOthers(file: string): boolean {
  try {
    return process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0;
  } catch {
    return false;
  }
}

/** A TCP port from the command line, 0 to 65535. */
function portArg(text: unknown, what: string): number {
  const port = Number(text);
  if (typeof text !== 'string' || !/^\d+$/.test(text) || port > 65535) throw new UsageError(`${what} must be a number from 0 to 65535, got ${JSON.stringify(text)}`);
  return port;
}

/** `--http-host` and `--http-token` for `port` (undefined: no dashboard). */
function httpOptions(o: Record<string, unknown>, port: number | undefined, flags: string[]): HttpOptions | undefined {
  const host = (o.httpHost as string | undefined) ?? '127.0.0.1';
  const token = o.httpToken as string | undefined;
  if (port === undefined) {
    // Only complain about flags the user actually typed, not commander's defaults.
    const given = flags.filter((f) => f === '--http-host' || f === '--http-token' || f.startsWith('--http-host=') || f.startsWith('--http-token='));
    if (given.length > 0) throw new UsageError(`${given[0]!.split('=')[0]} needs --http-port`);
    return undefined;
  }
  if (host.length === 0 || !/^[A-Za-z0-9.:[\]-]+$/.test(host)) throw new UsageError(`--http-host must be an IP address or host name, got ${JSON.stringify(host)}`);
  if (token !== undefined && !/^[\x21-\x7e]{8,256}$/.test(token)) throw new UsageError('--http-token must be 8 to 256 printable characters without spaces');
  return { port, host: host.replace(/^\[|\]$/g, ''), ...(token !== undefined && { token }) };
}

/**
 * `node-cli seed A.torrent [B.torrent ...] [ip] <port> [options]` is node-cli with a `--seed`
 * for each torrent named right after `seed`; any other command line is returned as it is.
 */
export function seedCommand(argv: string[]): string[] {
  if (argv[0] !== 'seed') return argv;
  const rest = argv.slice(1);
  const end = rest.findIndex((a) => !/\.torrent$/i.test(a));
  const torrents = end < 0 ? rest : rest.slice(0, end);
  if (torrents.length === 0 && !rest.some((a) => a === '--help' || a === '-h')) throw new UsageError('seed needs a .torrent file: seed X.torrent [ip] <port> [options]');
  return [...rest.slice(torrents.length), ...torrents.flatMap((t) => ['--seed', t])];
}

/** Parse `node-cli [ip] <port> [options]`. Throws UsageError (help and version exit 0 themselves). */
export function parseCli(argv: string[]): CliOptions {
  const tools = programName('node-cli').replace(/ node$/, '');
  const program = addNodeOptions(
    new Command(programName('node-cli'))
      .description('Run a Shoal node: share a folder, find peers, download files in verified pieces')
      .argument('[ip]', 'address to listen on (default: every interface)')
      // Both optional for commander, which would otherwise give a lone `9000` to [ip]: checked below.
      .argument('[port]', 'TCP port for peers and the control protocol (0 picks a free one; required)'),
  )
    .option('--exit-when-done', 'exit 0 once every --get is complete and verified, 1 if one fails or has no source, 130/143 if interrupted')
    .option('--http-port <port>', 'also serve the web dashboard on this port (0 picks a free one)')
    .option('--json', 'print events as JSON lines on stdout (for scripts)')
    // Under the launcher the tools are `shoal create`, not `shoal node create`.
    .addHelpText('after', `\n${tools} seed X.torrent [ip] <port> [options] is ${programName('node-cli')} [ip] <port> --seed X.torrent [options].\nWithout a node: ${tools} create FILE (make a .torrent, print its magnet link), ${tools} info X.torrent.`);
  run(program, argv);
  const { layer, values } = layerConfig(program);
  const args = program.args;
  const o = program.opts<Record<string, unknown>>();
  // The positional [ip] <port>, or the config file's peerHost and peerPort.
  const [ip, portText] = args.length >= 2 ? [args[0], args[1]] : [values.peerHost, args[0] ?? values.peerPort?.toString()];
  if (portText === undefined) throw new UsageError("missing required argument 'port'");
  if (args.length >= 1) layer.fromCommandLine.push('peerPort');
  if (args.length >= 2) layer.fromCommandLine.push('peerHost');
  const port = portArg(portText, 'port');
  const httpPort = o.httpPort === undefined ? undefined : portArg(o.httpPort, '--http-port');
  const opts = nodeOptions(o, ip, port);
  if (o.exitWhenDone && opts.gets.length === 0) throw new UsageError('--exit-when-done needs at least one --get');
  return { ...opts, ...secretOptions(program, layer), exitWhenDone: Boolean(o.exitWhenDone), json: Boolean(o.json), http: httpOptions(o, httpPort, argv), config: layer };
}

/** Parse `web --peer-port <port> [--http-port 5000] [options]`: a node with its dashboard. */
export function parseWebCli(argv: string[]): CliOptions & { http: HttpOptions } {
  const program = addNodeOptions(
    new Command(programName('web')).description('Run a Shoal node with its web dashboard (pages, REST API, live updates) in one process'),
  )
    .option('--peer-port <port>', 'TCP port for peers and the control protocol (0 picks a free one; required here or in the config file)')
    .option('--peer-host <ip>', 'address the peer port listens on (default: every interface)')
    .option('--http-port <port>', 'dashboard port (0 picks a free one)', '5000');
  run(program, argv);
  if (program.args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(program.args[0])}`);
  const { layer } = layerConfig(program);
  const o = program.opts<Record<string, unknown>>();
  if (o.peerPort === undefined) throw new UsageError("required option '--peer-port <port>' not specified (nor peerPort in the config file)");
  const port = portArg(o.peerPort, '--peer-port');
  const httpPort = portArg(o.httpPort, '--http-port');
  const opts = nodeOptions(o, o.peerHost as string | undefined, port);
  return { ...opts, ...secretOptions(program, layer), exitWhenDone: false, json: false, http: httpOptions(o, httpPort, argv)!, config: layer };
}

/** Check and convert the options addNodeOptions declared. */
function nodeOptions(o: Record<string, unknown>, ip: string | undefined, port: number): Omit<CliOptions, 'exitWhenDone' | 'json' | 'http' | 'config' | 'secret' | 'secretWarning'> {
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  const peers = wrap(() => list(o.peer).map(hostPort));
  const pieceLength = o.pieceLength === undefined ? undefined : wrap(() => parseSize(o.pieceLength as string));
  if (pieceLength !== undefined && (pieceLength < 16384 || pieceLength > 16 * 1024 * 1024 || (pieceLength & (pieceLength - 1)) !== 0))
    throw new UsageError('--piece-length must be a power of two from 16k to 16M');
  const resolveTimeout = Number(o.resolveTimeout);
  if (!(resolveTimeout >= 0)) throw new UsageError('--resolve-timeout must be a number of seconds');
  const gets = list(o.get);
  const only = wrap(() => list(o.only).map(checkPattern));
  if (only.length > 0 && gets.length === 0) throw new UsageError('--only needs a --get');
  for (const url of list(o.tracker)) if (!/^https?:\/\//.test(url)) throw new UsageError(`--tracker must be an http(s) URL, got ${url}`);
  const group = o.multicastGroup as string;
  const first = Number(group.split('.')[0]);
  if (!isIPv4(group) || first < 224 || first > 239) throw new UsageError(`--multicast-group must be an IPv4 multicast address (224.0.0.0 to 239.255.255.255), got ${group}`);
  const mport = Number(o.multicastPort);
  if (!/^\d+$/.test(String(o.multicastPort)) || mport < 1 || mport > 65535) throw new UsageError(`--multicast-port must be a number from 1 to 65535, got ${String(o.multicastPort)}`);
  const ttl = Number(o.multicastTtl);
  if (!/^\d+$/.test(String(o.multicastTtl)) || ttl > 255) throw new UsageError(`--multicast-ttl must be a number from 0 to 255, got ${String(o.multicastTtl)}`);
  const interval = Number(o.beaconInterval);
  // Receivers trust a claimed interval only up to 300 s (network/discovery/multicast.ts).
  if (!(interval >= 0.1 && interval <= 300)) throw new UsageError(`--beacon-interval must be a number of seconds from 0.1 to 300, got ${String(o.beaconInterval)}`);
  const bootstrap = o.bootstrap as string | undefined;
  if (bootstrap !== undefined && !/^https?:\/\/[^/]+/.test(bootstrap)) throw new UsageError(`--bootstrap must be an http(s) URL, got ${bootstrap}`);
  const watchPatterns = wrap(() => list(o.watch).map(checkPattern));
  const ifaces = list(o.interface);
  return {
    folderWatch: o.folderWatch !== false,
    name: o.name as string | undefined,
    bootstrap: bootstrap?.replace(/\/+$/, ''),
    multicast: o.multicast === false ? false : { group, port: mport, interfaces: ifaces.length > 0 ? ifaces : undefined, ttl, intervalMs: interval * 1000 },
    watchPatterns,
    listenHost: ip,
    port,
    shared: list(o.shared).length > 0 ? list(o.shared) : ['./shared_files'],
    sharedIsDefault: list(o.shared).length === 0,
    downloads: o.downloads as string,
    state: o.state as string | undefined,
    peers,
    gets,
    only,
    shareFolders: list(o.shareFolderAsTorrent),
    seeds: list(o.seed),
    trackers: list(o.tracker),
    peerIp: o.peerIp as string | undefined,
    pieceLength,
    maxUploadRate: o.maxUploadRate === undefined ? 0 : wrap(() => parseSize(o.maxUploadRate as string)),
    encryption: o.encryption as CliOptions['encryption'],
    utp: o.utp as CliOptions['utp'],
    resolveTimeoutMs: resolveTimeout * 1000,
    logLevel: o.logLevel as string,
  };
}

/** The node that `node-cli` and `web` start from their (shared) options. */
export function nodeInit(opts: CliOptions, logger: Logger): NodeInit {
  return {
    port: opts.port,
    listenHost: opts.listenHost,
    announceHost: opts.peerIp,
    sharedDir: opts.shared,
    createSharedDir: opts.sharedIsDefault,
    downloadDir: opts.downloads,
    stateDir: opts.state ?? opts.config.stateDir,
    configFile: opts.config.file,
    fromCommandLine: opts.config.fromCommandLine,
    peers: opts.peers,
    shareFoldersAsTorrents: opts.shareFolders,
    trackers: opts.trackers,
    pieceLength: opts.pieceLength,
    maxUploadRate: opts.maxUploadRate,
    encryption: opts.encryption,
    utp: opts.utp,
    watch: opts.folderWatch,
    name: opts.name,
    bootstrap: opts.bootstrap,
    secret: opts.secret,
    multicast: opts.multicast,
    watchPatterns: opts.watchPatterns,
    logger,
  };
}
