/**
 * Silent bad configuration, made loud: a shared folder that does not exist (or is a file)
 * stops node-cli and web at start with one line and exit 2, and a peer added by hand that
 * never answers is found out without any action of the user (tried at once and again), then
 * shown as unreachable, left out of the totals (the node's status, the dashboard's count) and
 * never passed on to other nodes. Real processes and real sockets on 127.0.0.1.
 */
import { expect } from 'chai';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { promises as fsp } from 'node:fs';
import { Children, ROOT, freePort, nodesPerTest, spawnCli, startNode, tempDirPerTest, waitFor } from '../helpers.js';
import { controlRequest } from '../../network/control/control-client.js';
import { WebServer } from '../../web/server.js';
import { call } from '../web-http.js';

const CLI_JS = path.join(ROOT, 'dist', 'cli', 'main.js');
const WEB = path.join(ROOT, 'dist', 'cli', 'web.js');
const children = new Children();

async function runToEnd(file: string, args: string[], cwd: string): Promise<{ code: number | null; stderr: string[] }> {
  const proc = children.track(spawn(process.execPath, [file, ...args], { cwd, env: { ...process.env, SHOAL_LOG: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] }));
  const stderr: string[] = [];
  readline.createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  const killer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(killer);
  await new Promise((r) => setImmediate(r));
  return { code, stderr };
}

describe('--shared must name a folder', function () {
  this.timeout(30_000);
  const fx = tempDirPerTest('shoal-bad-config-', () => children.killAll());

  it('a folder that does not exist, or a file: node-cli and web exit 2 with one line, and write nothing', async () => {
    const file = path.join(fx.dir, 'notes.txt');
    await fsp.writeFile(file, 'not a folder');
    const cases: Array<[string, string[], RegExp]> = [
      [CLI_JS, ['127.0.0.1', '0', '--no-multicast', '--shared', 'no-such-folder'], /^node-cli: the shared folder .*no-such-folder does not exist: name an existing folder with --shared DIR$/],
      [CLI_JS, ['127.0.0.1', '0', '--no-multicast', '--shared', file], /^node-cli: the shared folder .*notes\.txt is a file, not a folder/],
      [CLI_JS, ['127.0.0.1', '0', '--no-multicast', '--shared', path.join(file, 'sub')], /^node-cli: the shared folder .*notes\.txt\/sub is not a folder/],
      [WEB, ['--peer-port', '0', '--http-port', '0', '--no-multicast', '--shared', 'no-such-folder'], /^web: the shared folder .*no-such-folder does not exist/],
    ];
    for (const [program, args, line] of cases) {
      const r = await runToEnd(program, args, fx.dir);
      expect(r.code, `${args.join(' ')}: ${r.stderr.join(' | ')}`).to.equal(2);
      expect(r.stderr, args.join(' ')).to.have.length(1);
      expect(r.stderr[0]).to.match(line);
    }
    expect(await fsp.readdir(fx.dir), 'no downloads folder, no state, no lock').to.deep.equal(['notes.txt']);
  });

  it('without --shared, the default ./shared_files is made when missing, and the node starts', async () => {
    const c = spawnCli(['127.0.0.1', '0', '--no-multicast'], fx.dir);
    children.track(c.proc);
    await c.waitEvent('listening');
    expect((await fsp.stat(path.join(fx.dir, 'shared_files'))).isDirectory()).to.equal(true);
  });
});

describe('a peer added by hand that never answers', function () {
  this.timeout(60_000);
  const fx = nodesPerTest();
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  /** A port that takes connections and never says a word: a peer that never answers. */
  async function silent(): Promise<number> {
    const s = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => {});
      sock.on('close', () => sockets.delete(sock));
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as net.AddressInfo).port;
  }

  it('is tried without any action, then shown as unreachable, not counted (status, dashboard) and not passed on', async () => {
    const mute = await silent();
    const closed = await freePort();
    const friend = await startNode(path.join(fx.dir, 'friend'));
    fx.nodes.push(friend);
    const node = await startNode(path.join(fx.dir, 'node'), {
      queryTimeoutMs: 500,
      peers: [{ host: '127.0.0.1', port: mute }, { host: '127.0.0.1', port: closed }, { host: '127.0.0.1', port: friend.port }],
    });
    fx.nodes.push(node);
    const web = new WebServer({ node, port: 0 });
    await web.start();
    try {
      // Nothing is searched or downloaded: the node tries them of itself.
      const reach = (port: number) => node.peer(`127.0.0.1:${port}`)?.reachable;
      await waitFor(() => reach(mute) === 'no' && reach(closed) === 'no', 30_000, `both to be unreachable (now ${reach(mute)}, ${reach(closed)})`);
      await waitFor(() => reach(friend.port) === 'yes', 10_000, 'the friend to answer');

      expect(node.knownPeers().map((p) => `${p.port} ${p.reachable}`).sort(), 'still listed, marked').to.have.members([`${mute} no`, `${closed} no`, `${friend.port} yes`]);
      expect(node.peerCount()).to.deep.equal({ peers: 1, unreachable: 2 });
      expect(node.status()).to.include({ peers: 1, unreachablePeers: 2 });
      const status = (await call(web.url, 'GET', '/api/status')).json() as { totals: { peers: number } };
      expect(status.totals.peers, "the dashboard's count").to.equal(1);
      const page = (await call(web.url, 'GET', '/peers', { headers: { Accept: 'text/html' } })).text;
      expect(/<p id="peers-summary">([^<]*)<\/p>/.exec(page)?.[1], 'the Peers page says what the sidebar says').to.equal('1 known peer, 2 not answering');

      const answer = await controlRequest('127.0.0.1', node.port, { type: 'peers' });
      expect(answer.type).to.equal('PEERS');
      const passedOn = answer.type === 'PEERS' ? answer.peers.map((p) => p.port) : [];
      expect(passedOn, 'gossip passes on the one that answers only').to.deep.equal([friend.port]);
    } finally {
      await web.stop();
    }
  });

  it('one that comes up later is seen answering, again without any action', async () => {
    const port = await freePort();
    const node = await startNode(path.join(fx.dir, 'node'), { queryTimeoutMs: 500, peers: [{ host: '127.0.0.1', port }] });
    fx.nodes.push(node);
    await waitFor(() => node.peer(`127.0.0.1:${port}`)?.reachable === 'no', 30_000, 'unreachable');
    const late = await startNode(path.join(fx.dir, 'late'), { port });
    fx.nodes.push(late);
    await waitFor(() => node.peer(`127.0.0.1:${port}`)?.reachable === 'yes', 40_000, 'the late peer to be seen answering');
    expect(node.peerCount()).to.deep.equal({ peers: 1, unreachable: 0 });
  });
});
