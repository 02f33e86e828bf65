/**
 * `create` and `info`: the two commands that need no running node. `create FILE|DIR` hashes a
 * file, or a folder as one multi-file torrent, into a .torrent (the infohash mktorrent gives)
 * and prints its magnet link; `info X.torrent` prints what a torrent holds (its files too). Reached as `node-cli create|info ...` and
 * `shoal create|info ...`. Usage errors exit 2, failures 1, each with one line on stderr.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { createTorrent, encodeTorrent, makeMagnet, parseTorrent, MAX_TORRENT_BYTES, VERSION, type Metainfo } from '../network/index.js';
import { bytes, parseSize } from './format.js';
import { UsageError } from './options.js';

export const TOOLS = ['create', 'info'] as const;
export type Tool = (typeof TOOLS)[number];

export const isTool = (word: string | undefined): word is Tool => (TOOLS as readonly string[]).includes(word ?? '');

/** Run `create` or `info` with the arguments after it; resolves with the exit status. */
export async function runTool(tool: Tool, argv: string[], prog: string): Promise<number> {
  const name = `${prog} ${tool}`;
  try {
    return tool === 'create' ? await create(argv, name) : await info(argv, name);
  } catch (err) {
    const usage = err instanceof UsageError;
    process.stderr.write(`${name}: ${(err as Error).message}${usage ? ` (see ${name} --help)` : ''}\n`);
    return usage ? 2 : 1;
  }
}

const collect = (v: string, acc: string[] | undefined) => [...(acc ?? []), v];

/** Parse with commander; its errors become UsageErrors, --help and --version answer 0. */
function parse(program: Command, argv: string[]): Command | null {
  program.version(VERSION, '-V, --version', 'print the version and exit').exitOverride().configureOutput({ writeErr: () => {} }).showHelpAfterError(false);
  try {
    program.parse(argv, { from: 'user' });
    return program;
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return null;
    throw new UsageError(err.message.replace(/^error: /, ''));
  }
}

async function create(argv: string[], name: string): Promise<number> {
  const program = parse(
    new Command(name)
      .description('Make a .torrent of a file, or of a folder as one multi-file torrent (the infohash mktorrent gives for the same piece length), and print its magnet link')
      .argument('<file|dir>', 'the file or folder to make a torrent of (dot-files, symlinks and .part files in a folder are left out)')
      .option('--tracker <url>', 'a tracker to put in the torrent, the first as announce (repeatable)', collect)
      .option('--piece-length <size>', 'piece length, a power of two from 16k to 16M (default: 512k)')
      .option('-o, --output <file>', "where to write the .torrent (default: the file's name + .torrent, in this folder)")
      .option('--force', 'replace the output file if it exists'),
    argv,
  );
  if (!program) return 0;
  const o = program.opts<{ tracker?: string[]; pieceLength?: string; output?: string; force?: boolean }>();
  const file = program.args[0]!;
  const trackers = o.tracker ?? [];
  for (const url of trackers) if (!/^https?:\/\/[^/]+/i.test(url) || !URL.canParse(url)) throw new UsageError(`--tracker must be an http(s) URL, got ${url}`);
  let pieceLength: number | undefined;
  if (o.pieceLength !== undefined) {
    try {
      pieceLength = parseSize(o.pieceLength);
    } catch (err) {
      throw new UsageError(`--piece-length: ${(err as Error).message}`);
    }
    if (pieceLength < 16384 || pieceLength > 16 * 1024 * 1024 || (pieceLength & (pieceLength - 1)) !== 0) throw new UsageError('--piece-length must be a power of two from 16k to 16M');
  }
  const out = o.output ?? `${path.basename(file)}.torrent`;
  // Refuse before hashing, not after minutes of it.
  if (!o.force && (await fsp.lstat(out).catch(() => null))) throw new Error(`${out} exists: name another with -o, or replace it with --force`);
  let m: Metainfo;
  let left: Array<{ path: string; why: string }> = [];
  try {
    m = await createTorrent(file, { pieceLength, trackers, skipped: (list) => (left = list) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code ? `cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}` : e.message);
  }
  await fsp.writeFile(out, encodeTorrent(m), { flag: o.force ? 'w' : 'wx' }).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot write ${out}: ${err.code === 'ENOENT' ? 'no such folder' : err.code === 'EEXIST' ? 'it exists (--force replaces it)' : err.message}`);
  });
  const files = m.multiFile ? ` (${m.files.length} file${m.files.length === 1 ? '' : 's'})` : '';
  process.stdout.write(`wrote ${out}: ${m.name}${files}, ${bytes(m.length)} in ${m.pieceCount} piece${m.pieceCount === 1 ? '' : 's'} of ${bytes(m.pieceLength)}, infohash ${m.infoHashHex}\n`);
  // Said, so that an infohash that differs from mktorrent's (which takes everything) is explained.
  for (const s of left.slice(0, 20)) process.stderr.write(`left out ${printable(s.path)}: ${s.why}\n`);
  if (left.length > 20) process.stderr.write(`left out ${left.length - 20} more\n`);
  process.stdout.write(`${makeMagnet(m)}\n`);
  return 0;
}

async function info(argv: string[], name: string): Promise<number> {
  const program = parse(
    new Command(name)
      .description('Print what a .torrent holds: name, size, pieces, infohash, trackers and its magnet link')
      .argument('<torrent>', 'the .torrent file')
      .option('--json', 'print it as one JSON object'),
    argv,
  );
  if (!program) return 0;
  const file = program.args[0]!;
  const st = await fsp.stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  if (!st.isFile()) throw new Error(`${file} is not a file`);
  if (st.size > MAX_TORRENT_BYTES) throw new Error(`${file} is too large for a torrent (${bytes(st.size)})`);
  const m = parseTorrent(await fsp.readFile(file));
  const magnet = makeMagnet(m);
  if (program.opts<{ json?: boolean }>().json) {
    const o = {
      name: m.name, size: m.length, pieceLength: m.pieceLength, pieces: m.pieceCount, infohash: m.infoHashHex, private: m.private, trackers: m.announce, magnet,
      ...(m.multiFile && { files: m.files.filter((f) => !f.pad).map((f) => ({ path: f.name, size: f.length })) }),
    };
    process.stdout.write(`${JSON.stringify(o)}\n`);
    return 0;
  }
  const rows: Array<[string, string]> = [
    ['name', m.name],
    ['size', `${bytes(m.length)} (${m.length} bytes)`],
    ['piece length', bytes(m.pieceLength)],
    ['pieces', String(m.pieceCount)],
    ['infohash', m.infoHashHex],
    ['private', m.private ? 'yes' : 'no'],
    ...(m.announce.length === 0 ? [['trackers', 'none'] as [string, string]] : m.announce.map((u, i) => [i === 0 ? 'trackers' : '', u] as [string, string])),
    ['magnet', magnet],
    ...(m.multiFile ? m.files.filter((f) => !f.pad).map((f, i) => [i === 0 ? 'files' : '', `${f.name} (${bytes(f.length)})`] as [string, string]) : []),
  ];
  // A tracker URL or a path is whatever the torrent's author wrote: no terminal escapes reach the screen.
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(13)} ${printable(v)}\n`);
  return 0;
}

const printable = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
