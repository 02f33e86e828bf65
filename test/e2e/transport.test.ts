/**
 * The transports between Shoal nodes: message stream encryption (MSE/PE) in each mode and
 * between modes, uTP on the peer port's number, and what the peer port does with encrypted
 * handshakes that go wrong (garbage, an unknown torrent, a torrent other than the one the
 * encryption named). Real nodes and sockets on loopback; bytes compared every time.
 */
import { expect } from 'chai';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Node, NodeInit } from '../../network/index.js';
import { MseHandshake, CRYPTO_PLAINTEXT, CRYPTO_RC4, type MseResult } from '../../network/wire/mse.js';
import { encodeHandshake } from '../../network/wire/peer-wire.js';
import { utpMissing } from '../../network/swarm/utp.js';
import { captureLog, randomFile, sha1File, startNode, tempDirPerTest, waitFor } from '../helpers.js';

type Link = { transport: string; encryption: string };

/** Skip a uTP case, saying why, when this machine cannot speak uTP. */
function needUtp(ctx: Mocha.Context): void {
  const missing = utpMissing();
  if (!missing) return;
  console.log(`      (skipped: ${missing})`);
  ctx.skip();
}

describe('transports between Shoal nodes: MSE and uTP', function () {
  this.timeout(60_000);
  const nodes: Node[] = [];
  const fx = tempDirPerTest('shoal-transport-', async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  /** A seed of one file (uploads slowed so that the connection can be looked at) and a leech that downloads it; how they were connected. */
  async function transfer(seedInit: Partial<NodeInit>, leechInit: Partial<NodeInit>, size = 3 * 1024 * 1024 + 77, tag = ''): Promise<{ links: Link[]; seed: Node; leech: Node }> {
    const file = path.join(fx.dir, `${tag}seed`, 'shared', 'movie.mkv');
    await randomFile(file, size);
    const seed = await startNode(path.join(fx.dir, `${tag}seed`), { maxUploadRate: 1024 * 1024, ...seedInit });
    nodes.push(seed);
    const h = seed.files()[0]!.metainfo.infoHashHex;
    const leech = await startNode(path.join(fx.dir, `${tag}leech`), { peers: [{ host: '127.0.0.1', port: seed.port }], ...leechInit });
    nodes.push(leech);
    await leech.download(h);
    const links = await waitFor(() => {
      const list = leech.downloadDetail(h)?.peerList ?? [];
      return list.length > 0 ? list.map((p) => ({ transport: p.transport, encryption: p.encryption })) : null;
    }, 20_000, 'a connected peer');
    const served = await waitFor(() => seed.seeding()[0]?.peers[0], 20_000, 'the seed serving the leech');
    expect({ transport: served.transport, encryption: served.encryption }, 'as the seed sees it').to.deep.equal(links[0]);
    const final = await leech.whenDone(h);
    expect(await sha1File(final)).to.equal(await sha1File(file));
    return { links, seed, leech };
  }

  it('by default: TCP, an MSE handshake, then plaintext (both prefer, neither insists on RC4)', async () => {
    const { links } = await transfer({}, {});
    expect(links).to.deep.equal([{ transport: 'tcp', encryption: 'plaintext' }]);
  });

  it('with --encryption require on both: RC4 over the whole stream', async () => {
    const { links } = await transfer({ encryption: 'require' }, { encryption: 'require' });
    expect(links).to.deep.equal([{ transport: 'tcp', encryption: 'rc4' }]);
  });

  it('a leech that requires encryption gets RC4 from a seed that only prefers it', async () => {
    const { links } = await transfer({}, { encryption: 'require' });
    expect(links).to.deep.equal([{ transport: 'tcp', encryption: 'rc4' }]);
  });

  it('a leech that prefers encryption falls back to a plain handshake with a seed that has it off', async () => {
    const { links } = await transfer({ encryption: 'off' }, {});
    expect(links).to.deep.equal([{ transport: 'tcp', encryption: 'none' }]);
  });

  it('a seed that requires encryption refuses a plain handshake, and says so', async () => {
    const log = captureLog();
    const file = path.join(fx.dir, 'seed', 'shared', 'secret.bin');
    await randomFile(file, 100_000);
    const seed = await startNode(path.join(fx.dir, 'seed'), { encryption: 'require', logger: log.logger });
    nodes.push(seed);
    const leech = await startNode(path.join(fx.dir, 'leech'), { encryption: 'off', peers: [{ host: '127.0.0.1', port: seed.port }] });
    nodes.push(leech);
    const h = seed.files()[0]!.metainfo.infoHashHex;
    await leech.download(h);
    await waitFor(() => log.records.some((r) => r.msg === 'refusing peer: plain BitTorrent handshake, but encryption is required'), 10_000, 'the refusal');
    expect(leech.downloadDetail(h)?.peerList ?? []).to.have.length(0);
    expect(leech.downloadDetail(h)?.verified).to.equal(0);
  });

  it('over uTP when the leech prefers it (--utp prefer), plain and encrypted', async function () {
    needUtp(this);
    const plain = await transfer({ encryption: 'off' }, { utp: 'prefer', encryption: 'off' });
    expect(plain.links).to.deep.equal([{ transport: 'utp', encryption: 'none' }]);
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    const rc4 = await transfer({}, { utp: 'prefer', encryption: 'require' }, 1024 * 1024 + 5, 'second-');
    expect(rc4.links).to.deep.equal([{ transport: 'utp', encryption: 'rc4' }]);
  });

  it('with --utp off there is no uTP at all: a leech that prefers uTP dials TCP instead', async function () {
    needUtp(this);
    const { links } = await transfer({ utp: 'off' }, { utp: 'prefer' });
    expect(links).to.deep.equal([{ transport: 'tcp', encryption: 'plaintext' }]);
  });
});

/** A raw MSE initiator on loopback TCP: how far the handshake got, and whether the node closed the connection. */
async function mseClient(port: number, infoHash: Buffer, payload: Buffer, provide = CRYPTO_PLAINTEXT | CRYPTO_RC4): Promise<{ done: MseResult | null; closed: boolean; after: Buffer }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const hs = MseHandshake.initiator({ infoHash, provide, payload });
  sock.write(hs.start());
  let done: MseResult | null = null;
  const after: Buffer[] = [];
  sock.on('data', (chunk: Buffer) => {
    if (done) return void after.push(done.decrypt ? Buffer.from(done.decrypt.process(chunk)) : chunk);
    const step = hs.push(chunk);
    for (const b of step.out) sock.write(b);
    if (step.done) {
      done = step.done;
      after.push(step.done.rest);
    }
  });
  sock.on('error', () => {});
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 3_000);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  sock.destroy();
  return { done, closed, after: Buffer.concat(after) };
}

describe('peer port: encrypted handshakes', function () {
  this.timeout(30_000);
  const fx = tempDirPerTest('shoal-mse-port-');
  let node: Node;
  let log: ReturnType<typeof captureLog>;
  let infoHash: Buffer;

  beforeEach(async () => {
    await randomFile(path.join(fx.dir, 'shared', 'alpha.bin'), 100_000);
    log = captureLog();
    node = await startNode(fx.dir, { logger: log.logger, timeouts: { handshakeMs: 2_000 } });
    infoHash = Buffer.from(node.files()[0]!.metainfo.infoHashHex, 'hex');
  });
  afterEach(() => node.stop());

  const warned = (re: RegExp) => log.records.some((r) => r.level === 40 && re.test(r.msg));

  it('answers an MSE handshake for a shared file (found by its HASH(req2)), RC4 when that is all we offer', async () => {
    const r = await mseClient(node.port, infoHash, encodeHandshake(infoHash, randomBytes(20)), CRYPTO_RC4);
    expect(r.done?.method).to.equal('rc4');
    expect(r.closed, 'kept open after the handshake').to.equal(false);
    // Its BitTorrent handshake back, decrypted: the protocol string and our infohash.
    expect(r.after.subarray(0, 20).toString('latin1')).to.equal('\x13BitTorrent protocol');
    expect(r.after.subarray(28, 48).equals(infoHash)).to.equal(true);
  });

  it('closes garbage that is neither plain BitTorrent nor MSE, with the reason in the log', async () => {
    const sock = net.connect(node.port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', r));
    sock.on('error', () => {});
    const junk = randomBytes(1000);
    junk[0] = 0x01; // not 0x13, not '{'
    sock.write(junk);
    await new Promise<void>((r) => sock.once('close', () => r()));
    await waitFor(() => warned(/^closing peer: encryption handshake failed: no HASH\(req1, S\) within 512 bytes of padding/), 5_000, 'the reason');
  });

  it('closes an MSE handshake for a torrent it does not share', async () => {
    const r = await mseClient(node.port, randomBytes(20), Buffer.alloc(0));
    expect(r.done).to.equal(null);
    expect(r.closed).to.equal(true);
    await waitFor(() => log.records.some((x) => x.msg === 'closing peer: asked for a torrent we do not share (encrypted)'), 5_000, 'the reason');
  });

  it('closes a peer whose BitTorrent handshake names another torrent than its MSE handshake did', async () => {
    const r = await mseClient(node.port, infoHash, encodeHandshake(randomBytes(20), randomBytes(20)));
    expect(r.done).to.not.equal(null);
    expect(r.closed).to.equal(true);
    await waitFor(() => warned(/^closing peer: its handshake names another torrent than its encryption handshake$/), 5_000, 'the reason');
  });
});
