import readline from 'node:readline';
import cliProgress from 'cli-progress';
import { PEER_SOURCES, type Node, type DownloadInfo, type PeerSource } from '../network/index.js';
import { bytes, rate, eta, hostPort } from './format.js';

const HELP = `commands:
  help                 this list
  files                what this node shares
  peers [SOURCE]       the peers this node knows; SOURCE: all (default), multicast,
                       bootstrap, manual, peer (learnt from other peers), tracker
  add-peer HOST:PORT   add a peer
  search TEXT          search the whole network by name (every peer and the bootstrap index)
  get WHAT             download a name, infohash, magnet link or .torrent file
  status               node totals, downloads, and what is uploaded to whom (ratio)
  cancel WHAT          cancel a download (name or infohash); removes its .part
  watch [GLOB]         download every file matching GLOB (e.g. *.iso) that appears on the
                       network; without GLOB, list the patterns watched
  unwatch GLOB         stop watching a pattern
  quit                 stop the node cleanly`;

/**
 * Progress bars for active downloads (percent, speed, peers, ETA), on a terminal only.
 * Bars are created on first progress and stopped when the download ends.
 */
export class ProgressView {
  private readonly multi = new cliProgress.MultiBar(
    {
      format: ' {name} [{bar}] {percentage}% | {speed} | {peers} peers | ETA {eta}',
      hideCursor: false,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
      barsize: 24,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  private readonly bars = new Map<string, cliProgress.SingleBar>();

  update(d: DownloadInfo): void {
    const payload = {
      name: d.name.length > 24 ? `${d.name.slice(0, 21)}...` : d.name,
      speed: rate(d.downloadRate),
      peers: d.peers,
      eta: eta((d.length - (d.verified / Math.max(1, d.pieces)) * d.length) / Math.max(1, d.downloadRate)),
    };
    let bar = this.bars.get(d.infohash);
    if (!bar) {
      bar = this.multi.create(d.pieces, d.verified, payload);
      this.bars.set(d.infohash, bar);
    }
    bar.update(d.verified, payload);
  }

  log(line: string): void {
    if (this.bars.size === 0) console.log(line);
    else this.multi.log(`${line}\n`);
  }

  stop(): void {
    this.multi.stop();
  }
}

/** The interactive console on a terminal. `quit` (or end of input) calls `onQuit`. */
export function startConsole(node: Node, view: ProgressView, onQuit: () => void): readline.Interface {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: 'shoal> ' });
  const say = (s: string) => view.log(s);
  rl.on('line', (line) => {
    void run(line.trim()).finally(() => rl.prompt());
  });
  rl.on('close', onQuit);
  rl.prompt();

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
          say(`${'ADDRESS'.padEnd(22)} ${'NAME'.padEnd(16)} ${'SOURCES'.padEnd(26)} ${'SEEN'.padStart(6)}  ANSWERS`);
          for (const p of peers) {
            const seen = `${Math.round((Date.now() - p.lastSeen) / 1000)}s`;
            say(`${`${p.host}:${p.port}`.padEnd(22)} ${(p.name ?? p.id ?? '-').slice(0, 16).padEnd(16)} ${[...p.sources].join(',').padEnd(26)} ${seen.padStart(6)}  ${p.reachable}`);
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
        case 'status': {
          const s = node.status();
          say(`node ${s.name} (${s.id}) on port ${s.port}: ${s.files} shared files, ${s.peers} known peers, ${s.connections} connections`);
          for (const d of node.discovery()) say(`  ${d.source.padEnd(10)} ${d.health.state}${d.health.detail ? `: ${d.health.detail}` : ''}`);
          const watched = node.watching().patterns;
          if (watched.length > 0) say(`  watching ${watched.join(' ')}`);
          for (const d of node.listDownloads())
            say(`  ${d.state.padEnd(11)} ${d.name}  ${((100 * d.verified) / Math.max(1, d.pieces)).toFixed(1)}%  down ${rate(d.downloadRate)}  up ${rate(d.uploadRate)}  ${d.peers} peers`);
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
