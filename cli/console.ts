import readline from 'node:readline';
import cliProgress from 'cli-progress';
import type { Node, DownloadInfo } from '../network/node.js';
import { bytes, rate, eta, hostPort } from './format.js';

const HELP = `commands:
  help                 this list
  files                what this node shares
  peers                the peers this node knows
  add-peer HOST:PORT   add a peer
  search TEXT          search every known peer by name
  get WHAT             download a name, infohash, magnet link or .torrent file
  status               node totals and downloads
  cancel WHAT          cancel a download (name or infohash); removes its .part
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
          const files = node.library.files();
          if (files.length === 0) return say('no shared files');
          for (const f of files) say(`${f.metainfo.infoHashHex}  ${bytes(f.size).padStart(10)}  ${f.name}`);
          return;
        }
        case 'peers': {
          const peers = node.knownPeers();
          if (peers.length === 0) return say('no known peers (add one with add-peer HOST:PORT)');
          for (const p of peers) say(`${`${p.host}:${p.port}`.padEnd(24)} ${[...p.sources].join(',')}  seen ${Math.round((Date.now() - p.lastSeen) / 1000)}s ago`);
          return;
        }
        case 'add-peer': {
          const { host, port } = hostPort(arg);
          return say(node.addPeer(host, port) ? `added ${host}:${port}` : `not added: ${host}:${port} is this node or invalid`);
        }
        case 'search': {
          if (!arg) return say('usage: search TEXT');
          const results = await node.search(arg);
          if (results.length === 0) return say('nothing found');
          for (const r of results) say(`${r.infohash}  ${bytes(r.size).padStart(10)}  ${String(r.peers.length).padStart(2)} node(s)  ${r.name}`);
          return;
        }
        case 'get': {
          if (!arg) return say('usage: get NAME|INFOHASH|MAGNET|FILE.torrent');
          const h = await node.download(arg);
          return say(`downloading ${h}`);
        }
        case 'status': {
          const s = node.status();
          say(`node ${s.id} on port ${s.port}: ${s.files} shared files, ${s.peers} known peers, ${s.connections} connections`);
          for (const d of node.listDownloads())
            say(`  ${d.state.padEnd(11)} ${d.name}  ${((100 * d.verified) / Math.max(1, d.pieces)).toFixed(1)}%  down ${rate(d.downloadRate)}  up ${rate(d.uploadRate)}  ${d.peers} peers`);
          return;
        }
        case 'cancel':
          return say((await node.cancel(arg)) ? `cancelled ${arg}` : `no active download ${arg}`);
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
