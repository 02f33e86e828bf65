/**
 * From what a user typed to a running download: parse the target, find what it means (a
 * name is searched, a magnet or infohash resolved to its metainfo), and start it, or join the
 * one already running, or record it done at once when the file is shared here already (as
 * the library's own torrent, or as data that holds every piece of this one: keeper.ts).
 */
import type { Logger } from '../util/log.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import type { SharedFile } from '../library/library.js';
import { parseTarget, pickByName, type NamedFile, type TargetOptions } from './targets.js';
import { resolveMetainfo, type ResolveInit } from './resolve.js';
import { checkPatterns, selectByPatterns } from './selection.js';
import type { Downloads } from './downloads.js';
import type { Existing } from './keeper.js';

type Endpoint = { host: string; port: number };

export interface StartDeps {
  downloads: Downloads;
  resolve: ResolveInit;
  /** Network search by name. */
  search(name: string): Promise<NamedFile[]>;
  /** A magnet's peers are known peers too. */
  magnetPeer(p: Endpoint): void;
  /** Trackers every download is announced to besides its own (the bootstrap server's). */
  extraTrackers(): string[];
  shared(infohash: string): SharedFile | undefined;
  /** Its data here: seeded at once ('seeding'), or its .part started from the pieces found ('partial'). */
  existing(m: Metainfo): Promise<Existing>;
  log: Logger;
}

/** Start downloading `text` (or the bytes of a .torrent); resolves with its infohash once it runs (see Node.download). */
export async function startDownload(text: string | Uint8Array, opts: TargetOptions, deps: StartDeps): Promise<string> {
  const only = opts.only && opts.only.length > 0 ? opts.only : null;
  if (only) checkPatterns(only); // before any peer is asked
  const t = await parseTarget(text, opts);
  let metainfo: Metainfo | null = null;
  let hint: Endpoint[] = [];
  let trackers: string[] = [];
  let infohash: string;
  switch (t.kind) {
    case 'torrent':
      metainfo = t.metainfo;
      infohash = metainfo.infoHashHex;
      break;
    case 'magnet':
      ({ infohash, peers: hint, trackers } = t);
      for (const p of t.peers) deps.magnetPeer(p);
      break;
    case 'infohash':
      infohash = t.infohash;
      break;
    case 'name':
      ({ infohash, peers: hint } = pickByName(t.name, await deps.search(t.name), t.exact));
      break;
  }
  trackers = [...trackers, ...deps.extraTrackers()];
  const { downloads } = deps;
  const opening = downloads.opened(infohash);
  if (opening) await opening;
  const known = downloads.get(infohash);
  if (known) {
    // Already downloading: `only` changes what it fetches (a finished one keeps what it has).
    if (only) await downloads.select(infohash, selectByPatterns(known.metainfo, only));
    return infohash;
  }
  const local = deps.shared(infohash);
  if (local) {
    deps.log.info({ file: local.name }, 'already shared here: nothing to download');
    await downloads.alreadyShared(local);
    return infohash;
  }
  if (!metainfo) ({ metainfo, peers: hint } = await resolveMetainfo(infohash, hint, trackers, deps.resolve));
  // A torrent made elsewhere of a file here (another piece length, extra keys): seeded, not downloaded.
  if (!metainfo.multiFile && (await deps.existing(metainfo)) === 'seeding') return infohash;
  await downloads.start(metainfo, hint, trackers, false, only ? selectByPatterns(metainfo, only) : null);
  return infohash;
}
