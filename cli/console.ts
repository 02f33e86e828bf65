import readline from 'node:readline';
import { PEER_SOURCES, type Node, type PeerSource } from '../network/index.js';
import { bytes, rate, eta, hostPort } from './format.js';
import type { LiveView } from './live-view.js';

const HELP = `commands:
  help                 this list
  files                what this node shares
  peers [SOURCE]       the peers this node knows; SOURCE: all (default), multicast,
                       bootstrap, manual, peer (learnt from other peers), tracker
  add-peer HOST:PORT   add a peer
  search TEXT          search the whole network by name (every peer and the bootstrap index)
  get WHAT             download a name, infohash, magnet link or .torrent file (a .torrent
                       whose data is here already is seeded, or downloads what is missing)
  seed FILE.torrent    seed a .torrent made elsewhere from its data here, under its own
                       infohash, now and after restarts; never downloads
  magnet WHAT          the magnet link of a shared file or a download (name or infohash),
                       with this node and its trackers in it
  status               node totals, downloads, and what is uploaded to whom (ratio)
  cancel WHAT          cancel a download (name or infohash); removes its .part
  watch [GLOB]         download every file matching GLOB (e.g. *.iso) that appears on the
                       network; without GLOB, list the patterns watched
  unwatch GLOB         stop watching a pattern
  quit                 stop the node cleanly`;

/**
 * The interactive console on a terminal. With a live view the prompt stays at the bottom, below
 * the progress bars, and every command's output scrolls above them (commands may overlap: a
 * slow search does not hold the prompt). Without one (TERM=dumb) output is plain lines and
 * the prompt comes back when a command is done. `quit` (or end of input) calls `onQuit`.
 */
export function startConsole(node: Node, view: LiveView | null, onQuit: () => void): readline.Interface {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: 'shoal> ' });
  const say = (s: string): void => {
    if (view) view.log(s);
    else process.stdout.write(`${s}\n`);
  };
  rl.on('line', (line) => {
    if (view) {
      view.submitted(line);
      void run(line.trim());
    } else void run(line.trim()).finally(() => rl.prompt());
  });
  rl.on('close', onQuit);
  if (view) view.attach(rl);
  else rl.prompt();

  async function run(line: string): Promise<void> {
    const [cmd, ...rest] = line.split(/\s+/);
    const arg = rest.join(' ');
    try {
      switch (cmd) {
        case '':
          return;
        case 'help':
          return say(HELP);
        case 'files': {
          const files = node.files();
          if (files.length === 0) return say('no shared files');
          for (const f of files) say(`${f.metainfo.infoHashHex}  ${bytes(f.size).padStart(10)}  ${f.name}`);
          return;
        }
        case 'peers': {
          const filter = arg === '' || arg === 'all' ? undefined : arg;
          if (filter !== undefined && !(PEER_SOURCES as readonly string[]).includes(filter))
            return say(`usage: peers [all|${PEER_SOURCES.join('|')}]`);
          const peers = node.knownPeers(filter as PeerSource | undefined);
          if (peers.length === 0) return say(filter ? `no peers from ${filter}` : 'no known peers yet (add one with add-peer HOST:PORT)');
          say(`${'ADDRESS'.padEnd(22)} ${'NAME'.padEnd(16)} ${'SOURCES'.padEnd(26)} ${'SEEN'.padStart(6)}  ${'ANSWERS'.padEnd(7)}  NODE ID`);
          for (const p of peers) {
            const seen = `${Math.round((Date.now() - p.lastSeen) / 1000)}s`;
            say(`${`${p.host}:${p.port}`.padEnd(22)} ${(p.name ?? p.id ?? '-').slice(0, 16).padEnd(16)} ${[...p.sources].join(',').padEnd(26)} ${seen.padStart(6)}  ${p.reachable.padEnd(7)}  ${p.id ?? '-'}`);
          }
          return say(`${peers.length} peer(s)`);
        }
        case 'add-peer': {
          const { host, port } = hostPort(arg);
          return say(node.addPeer(host, port) ? `added ${host}:${port}` : `not added: ${host}:${port} is this node or invalid`);
        }
        case 'search': {
          if (!arg) return say('usage: search TEXT');
          const results = await node.search(arg);
          if (results.length === 0) return say('nothing found');
          for (const r of results) say(`${r.infohash}  ${bytes(r.size).padStart(10)}  ${String(r.peers.length).padStart(3)} node(s)  ${r.name}`);
          return say(`${results.length} file(s); get NAME or get INFOHASH downloads from every node that has it`);
        }
        case 'get': {
          if (!arg) return say('usage: get NAME|INFOHASH|MAGNET|FILE.torrent');
          const h = await node.download(arg);
          return say(`downloading ${h}`);
        }
        case 'seed': {
          if (!arg) return say('usage: seed FILE.torrent');
          const { infohash, path } = await node.seed(arg);
          return say(`seeding ${infohash} from ${path}`);
        }
        case 'magnet': {
          if (!arg) return say('usage: magnet NAME|INFOHASH');
          const h = findInfohash(node, arg);
          const link = h === undefined ? undefined : node.magnet(h);
          return say(link ?? `no shared file or download ${arg}`);
        }
        case 'status': {
          const s = node.status();
          say(`node ${s.name} (${s.id}) on port ${s.port}: ${s.files} shared files, ${s.peers} known peers, ${s.connections} connections`);
          say(node.isPrivate ? `  private swarm ${node.secretFingerprint!}: only nodes with its secret are heard` : '  open swarm: no secret');
          for (const d of node.discovery()) say(`  ${d.source.padEnd(10)} ${d.health.state}${d.health.detail ? `: ${d.health.detail}` : ''}`);
          const watched = node.watching().patterns;
          if (watched.length > 0) say(`  watching ${watched.join(' ')}`);
          for (const d of node.listDownloads())
            say(
              `  ${d.state.padEnd(11)} ${d.name}  ${((100 * d.verified) / Math.max(1, d.pieces)).toFixed(1)}% of ${bytes(d.length)}  down ${rate(d.downloadRate)}  up ${rate(d.uploadRate)}  ` +
                `${d.peers} peer${d.peers === 1 ? '' : 's'}${d.state === 'downloading' ? `  ETA ${eta(d.eta)}` : ''}`,
            );
          // What goes out: each file sent (or asked for), its ratio, and to whom.
          for (const u of node.seeding()) {
            const to = u.peers.length === 0 ? 'no peer now' : u.peers.map((p) => `${p.address} (${p.client}, up ${rate(p.uploadRate)})`).join(', ');
            say(`  ${(u.complete ? 'seeding' : 'uploading').padEnd(11)} ${u.name}  up ${rate(u.uploadRate)}  sent ${bytes(u.uploaded)}  ratio ${u.ratio.toFixed(2)}  to ${to}`);
          }
          return;
        }
        case 'cancel':
          return say((await node.cancel(arg)) ? `cancelled ${arg}` : `no active download ${arg}`);
        case 'watch': {
          if (!arg) {
            const list = node.watching().patterns;
            return say(list.length > 0 ? `watching: ${list.join(' ')}` : 'not watching anything; usage: watch GLOB');
          }
          node.watch(arg);
          return say(`watching ${arg}: matching files anywhere on the network will be downloaded`);
        }
        case 'unwatch':
          return say(node.unwatch(arg) ? `stopped watching ${arg}` : `not watching ${arg}`);
        case 'quit':
        case 'exit':
          rl.close();
          return;
        default:
          return say(`unknown command ${JSON.stringify(cmd)}; type help`);
      }
    } catch (err) {
      say(`error: ${(err as Error).message}`);
    }
  }
  return rl;
}

/** The infohash of a shared file or a download named `what` (its infohash, name or path in the library). */
function findInfohash(node: Node, what: string): string | undefined {
  const h = what.toLowerCase();
  if (/^[0-9a-f]{40}$/.test(h)) return h;
  const file = node.files().find((f) => f.name === what || f.metainfo.name === what);
  if (file) return file.metainfo.infoHashHex;
  return node.listDownloads().find((d) => d.name === what)?.infohash;
}
