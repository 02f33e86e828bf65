/**
 * Private swarms over TCP: every connection between nodes is TLS 1.3 with a key derived from
 * the swarm's secret. Real nodes on loopback, real sockets; what an outsider tries (plain
 * control lines, a plain BitTorrent handshake, TLS with the wrong secret) is refused with a
 * logged reason and learns nothing, and the members search, list and download as usual.
 */
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import type { Node } from '../../network/index.js';
import { controlRequest } from '../../network/control/control-client.js';
import { subscribe } from '../../network/control/subscription.js';
import { SwarmSecret } from '../../network/security/secret.js';
import { connectPrivate, PrivateLinkError, PRIVATE_CIPHERS } from '../../network/security/tls.js';
import { PeerRegistry } from '../../network/discovery/peer-registry.js';
import { Gossip } from '../../network/catalog/gossip.js';
import { PEER_WARNINGS_PER_MINUTE } from '../../network/peer-server.js';
import { encodeHandshake } from '../../network/wire/peer-wire.js';
import { captureLog, randomFile, sha1File, startNode, tempDirPerTest, waitFor } from '../helpers.js';

const SECRET = 'correct horse battery staple';
const OTHER = 'another swarm entirely';

/** Connect, send `bytes`, and collect what comes back until the peer closes (or 5 s pass). */
function rawExchange(port: number, bytes: Buffer | string): Promise<{ got: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(bytes));
    const done = (closed: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ got: Buffer.concat(chunks), closed });
    };
    const timer = setTimeout(() => done(false), 5000);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => done(true));
  });
}

describe('private swarms (TLS 1.3 with the secret\'s key)', function () {
  this.timeout(60_000);
  const nodes: Node[] = [];
  const fx = tempDirPerTest('shoal-private-swarm-', async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });
  const node = async (name: string, init: Parameters<typeof startNode>[1] = {}, files: Record<string, number> = {}) => {
    for (const [f, size] of Object.entries(files)) await randomFile(path.join(fx.dir, name, 'shared', f), size);
    const n = await startNode(path.join(fx.dir, name), init);
    nodes.push(n);
    return n;
  };

  it('members search, list, subscribe and download inside TLS; the cipher is TLS 1.3 AES-GCM with no certificate', async function () {
    const a = await node('a', { secret: SECRET }, { 'plans.pdf': 3 * 1024 * 1024 + 17 });
    const b = await node('b', { secret: SECRET, peers: [{ host: '127.0.0.1', port: a.port }] });
    await waitFor(() => b.knownPeers().some((p) => p.id === a.id), 10_000, 'b to learn a\'s id over TLS');
    expect(b.knownPeers().find((p) => p.id === a.id)!.name, 'and its name').to.equal(a.name);
    const found = await b.search('plans');
    expect(found.map((r) => r.name)).to.include('plans.pdf');
    const h = found.find((r) => r.name === 'plans.pdf')!.infohash;
    await b.download(h);
    const final = await b.whenDone(h);
    expect(await sha1File(final)).to.equal(await sha1File(path.join(a.sharedDir, 'plans.pdf')));

    const psk = SwarmSecret.from(SECRET).tlsPsk;
    const list = await controlRequest('127.0.0.1', a.port, { type: 'list' }, { psk });
    expect(list.type === 'LIST' && list.files.map((f) => f.name)).to.deep.equal(['plans.pdf']);
    const snapshot = await new Promise<string[]>((resolve, reject) => {
      const sub = subscribe('127.0.0.1', a.port, { snapshot: (files) => (sub.close(), resolve(files.map((f) => f.name))), event: () => {}, closed: (err) => err && reject(err) }, { psk });
    });
    expect(snapshot).to.deep.equal(['plans.pdf']);
    const t = connectPrivate('127.0.0.1', a.port, psk);
    await new Promise<void>((resolve, reject) => t.once('secureConnect', resolve).once('error', reject));
    expect(t.getProtocol()).to.equal('TLSv1.3');
    expect(PRIVATE_CIPHERS.split(':')).to.include(t.getCipher().standardName);
    expect(t.getPeerCertificate()).to.deep.equal({});
    t.destroy();
  });

  it('an outsider learns nothing: plain control lines, a plain BitTorrent handshake and TLS with another secret are refused, each with its reason in the log', async function () {
    const log = captureLog('info');
    const a = await node('a', { secret: SECRET, logger: log.logger }, { 'plans.pdf': 300_000 });
    const h = a.files()[0]!.metainfo.infoHash;

    const control = await rawExchange(a.port, '{"type":"list"}\n');
    expect(control.closed).to.equal(true);
    expect(control.got.includes(Buffer.from('plans'))).to.equal(false);
    expect(control.got.includes(Buffer.from('LIST'))).to.equal(false);
    const bt = await rawExchange(a.port, encodeHandshake(h, Buffer.alloc(20, 1)));
    expect(bt.closed).to.equal(true);
    expect(bt.got.includes(h), 'no handshake echoes the infohash').to.equal(false);
    expect(bt.got.includes(Buffer.from('BitTorrent protocol'))).to.equal(false);
    await waitFor(() => log.warnings().filter((w) => /not a TLS handshake/.test(w)).length >= 2, 5000, 'both refusals logged');

    const wrong = SwarmSecret.from(OTHER).tlsPsk;
    const err = await controlRequest('127.0.0.1', a.port, { type: 'list' }, { psk: wrong }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(PrivateLinkError);
    expect(String(err)).to.match(/does not hold this swarm's secret/);
    await waitFor(() => log.warnings().some((w) => /refusing connection: the TLS handshake failed: the peer does not hold this swarm's secret/.test(w)), 5000, 'the refusal of the wrong secret in the log');
    expect(a.status().refused.tls).to.be.at.least(3);

    // A node of another swarm, and an open node, see nothing of it either.
    const c = await node('c', { secret: OTHER });
    const d = await node('d');
    for (const n of [c, d]) {
      n.addPeer('127.0.0.1', a.port);
      const r = await n.search('plans').then((x) => x, (e: unknown) => e);
      expect(Array.isArray(r) ? r.map((x) => x.name) : [], `${n === c ? 'another swarm' : 'an open node'} found a's file`).to.deep.equal([]);
      expect(n.knownPeers().find((p) => p.port === a.port)?.name ?? null, 'a\'s name stays unknown').to.equal(null);
    }
    // And a still serves its members.
    const psk = SwarmSecret.from(SECRET).tlsPsk;
    const ok = await controlRequest('127.0.0.1', a.port, { type: 'list' }, { psk });
    expect(ok.type).to.equal('LIST');
  });

  it('a member heard by its beacons (which carry no name in a private swarm) gets its name over TLS when probed', async function () {
    const a = await node('a', { secret: SECRET, name: 'kitchen' });
    const registry = new PeerRegistry();
    const seen = registry.see('multicast', { id: a.id, name: '', host: '127.0.0.1', port: a.port })!;
    expect(seen.name ?? '').to.equal('');
    const gossip = new Gossip({ registry, psk: SwarmSecret.from(SECRET).tlsPsk, timeoutMs: 5000, intervalMs: 0, log: captureLog().logger });
    expect(await gossip.probe(seen)).to.equal(true);
    expect(registry.list().find((p) => p.id === a.id)!.name).to.equal('kitchen');
    gossip.stop();
  });

  it(`refusals are logged at most ${PEER_WARNINGS_PER_MINUTE} a minute, however many come`, async function () {
    const log = captureLog('info');
    const a = await node('a', { secret: SECRET, logger: log.logger });
    const n = PEER_WARNINGS_PER_MINUTE + 40;
    await Promise.all(Array.from({ length: n }, () => rawExchange(a.port, '{"type":"list"}\n')));
    await waitFor(() => a.status().refused.tls >= n, 10_000, 'every refusal counted');
    const lines = log.warnings().filter((w) => /refusing connection/.test(w));
    expect(lines.length).to.be.at.most(PEER_WARNINGS_PER_MINUTE);
    expect(lines.length).to.be.at.least(1);
  });
});
