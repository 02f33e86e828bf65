/** The bootstrap server's registry as pure state: bounds, ownership, last-seen order, expiry, reports, search, persistence. */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { tempDir, cleanup, waitFor } from '../helpers.js';
import { NodeRegistry as BaseRegistry, RegistryError, addressBucket, recordBytes } from '../../bootstrap/registry.js';
import { MAX_NODES_PER_RESULT, MAX_SHARES_SHOWN, MAX_DOWNLOADS_SHOWN, type RegisterRequest } from '../../network/wire/bootstrap-api.js';

const hash = (n: number) => n.toString(16).padStart(40, '0');
const file = (name: string, n: number, extra: { complete?: boolean } = {}) => ({ name, size: 1000 + n, infohash: hash(n), ...extra });
const reg = (id: string, extra: Partial<RegisterRequest> = {}): RegisterRequest => ({ id, instance: `${id}-i1`, name: `name-${id}`, port: 6000, files: [], downloads: [], ...extra });
const LAN_A = '10.0.0.5';
const LAN_B = '10.0.0.6';

/**
 * The registry as the server drives it, every request signed by the node it names (the
 * server checks signatures; here the signer is simply that id, unless a test says otherwise).
 */
class NodeRegistry extends BaseRegistry {
  override register(req: RegisterRequest, from: string, signer = req.id) {
    return super.register(req, from, signer);
  }
  override heartbeat(id: string, req: Parameters<BaseRegistry['heartbeat']>[1], from: string, signer = id) {
    return super.heartbeat(id, req, from, signer);
  }
  override unregister(id: string, instance: string, signer = id) {
    super.unregister(id, instance, signer);
  }
  override report(target: string, reporter: string, signer = reporter) {
    return super.report(target, reporter, signer);
  }
}

/** Call `f` and return the RegistryError it throws. */
function refused(f: () => unknown): RegistryError {
  try {
    f();
  } catch (err) {
    if (err instanceof RegistryError) return err;
    throw err;
  }
  throw new Error('expected a RegistryError');
}

describe('bootstrap registry (pure)', function () {
  let clock = 1_000_000;
  const now = () => clock;
  beforeEach(() => (clock = 1_000_000));

  it('registers with the source address as host, lists freshest first, and derives the role', function () {
    const r = new NodeRegistry({ now });
    r.register(reg('a', { files: [file('one.iso', 1)] }), LAN_A);
    clock += 10;
    r.register(reg('b', { downloads: [{ infohash: hash(9), name: 'x.bin', progress: 0.4242 }] }), `::ffff:${LAN_B}`);
    expect(r.list().map((n) => n.id)).to.deep.equal(['b', 'a']);
    expect(r.get('a')!.host).to.equal(LAN_A);
    expect(r.get('b')!.host, 'IPv4-mapped addresses are normalised').to.equal(LAN_B);
    const a = r.view(r.get('a')!);
    expect(a).to.include({ role: 'SEEDER', files: 1, host: LAN_A, port: 6000 });
    expect(a.shares).to.deep.equal(['one.iso']);
    const b = r.view(r.get('b')!);
    expect(b.role).to.equal('LEECHER');
    expect(b.downloads).to.deep.equal([{ infohash: hash(9), name: 'x.bin', percent: 42.4 }]);
  });

  it('refuses a host that is not the sender’s, except from loopback', function () {
    const r = new NodeRegistry({ now });
    expect(refused(() => r.register(reg('a', { host: LAN_B }), LAN_A)).status).to.equal(403);
    expect(r.register(reg('a', { host: LAN_A }), LAN_A).host).to.equal(LAN_A);
    expect(r.register(reg('b', { host: LAN_B }), '127.0.0.1').host, 'the server’s own machine may advertise its LAN address').to.equal(LAN_B);
    expect(r.register(reg('c', { host: LAN_B }), '::1').host).to.equal(LAN_B);
  });

  it('lets only the key of a node id act for it: register, heartbeat, unregister, from anywhere (loopback too)', function () {
    const r = new NodeRegistry({ now });
    r.register(reg('a'), LAN_A);
    // Another key naming a's id: refused wherever it comes from.
    for (const from of [LAN_A, LAN_B, '127.0.0.1']) {
      expect(refused(() => r.register(reg('a', { instance: 'evil' }), from, 'mallory')).message).to.match(/not the id of the key that signed/);
      expect(refused(() => r.heartbeat('a', { instance: 'a-i1' }, from, 'mallory')).status).to.equal(403);
      expect(refused(() => r.unregister('a', 'a-i1', 'mallory')).status).to.equal(403);
    }
    expect(refused(() => r.heartbeat('a', { instance: 'other' }, LAN_A)).status, 'another instance').to.equal(403);
    expect(refused(() => r.heartbeat('a', { instance: 'a-i1' }, LAN_B)).message, 'from another address: register again').to.match(/register again/);
    expect(refused(() => r.heartbeat('a', { instance: 'a-i1' }, '127.0.0.1')).status).to.equal(403);
    expect(refused(() => r.heartbeat('zz', { instance: 'a-i1' }, LAN_A)).status).to.equal(404);
    clock += 5;
    expect(r.heartbeat('a', { instance: 'a-i1' }, LAN_A).lastSeen).to.equal(clock);
    // A restart: same id, new instance, replaces the old registration.
    expect(r.register(reg('a', { instance: 'a-i2' }), LAN_A).instance).to.equal('a-i2');
    // The node moved (its key proves it is the same): the record follows it.
    expect(r.register(reg('a', { instance: 'a-i2' }), LAN_B).host).to.equal(LAN_B);
    expect(r.size).to.equal(1);
    expect(refused(() => r.unregister('a', 'a-i1')).status, 'an old instance').to.equal(403);
    r.unregister('a', 'a-i2');
    expect(r.size).to.equal(0);
  });

  it('bounds nodes and files per address (429); a full registry makes room at the address that holds the most', function () {
    const r = new NodeRegistry({ now, maxNodesPerAddress: 3, maxNodes: 5, maxFilesPerAddress: 4 });
    for (const id of ['a', 'b', 'c']) {
      clock++;
      r.register(reg(id), LAN_A);
    }
    const e = refused(() => r.register(reg('d'), LAN_A));
    expect(e.status).to.equal(429);
    expect(e.message).to.equal('too many nodes from this address');
    // Re-registering one we own is not one more.
    clock++;
    r.register(reg('a', { instance: 'again' }), LAN_A);
    r.register(reg('e'), LAN_B);
    r.register(reg('f'), LAN_B);
    expect(r.size).to.equal(5);
    // Full: a newcomer from a third address takes the place of LAN_A's stalest node (b).
    r.register(reg('g'), '10.0.0.7');
    expect(r.get('b')).to.equal(undefined);
    expect(r.evictions).to.equal(1);
    expect(r.list().map((n) => n.id).sort()).to.deep.equal(['a', 'c', 'e', 'f', 'g']);
    // Every address now holds no more than a second node from 10.0.0.7 would: full.
    const full = refused(() => r.register(reg('h'), '10.0.0.7'));
    expect([full.status, full.message]).to.deep.equal([503, 'the registry is full']);
    const files = refused(() => r.register(reg('e', { files: [1, 2, 3, 4, 5].map((n) => file(`f${n}`, n)) }), LAN_B));
    expect([files.status, files.message]).to.deep.equal([429, 'too many shared files from this address']);
    r.heartbeat('e', { instance: 'e-i1', files: [1, 2, 3].map((n) => file(`f${n}`, n)) }, LAN_B);
    expect(refused(() => r.heartbeat('f', { instance: 'f-i1', files: [4, 5].map((n) => file(`f${n}`, n)) }, LAN_B)).status).to.equal(429);
    expect(r.fileCount).to.equal(3);
  });

  it('10,000 registrations from one address (any 127.x on this host, any IPv6 in a /64) cannot keep an honest node out', function () {
    const r = new NodeRegistry({ now, maxNodes: 100, maxNodesPerAddress: 64 });
    let refusedFake = 0;
    for (let i = 0; i < 10_000; i++) {
      const from = i % 2 === 0 ? `127.0.${(i >> 8) & 255}.${i & 255}` : `2001:db8:1:2:${(i & 0xffff).toString(16)}::1`;
      try {
        r.register(reg(`fake${i}`), from);
      } catch (err) {
        if (!(err instanceof RegistryError) || (err.status !== 429 && err.status !== 503)) throw err;
        refusedFake++;
      }
    }
    expect(r.size, 'full: the loopback share and the /64 share, half each').to.equal(100);
    expect(refusedFake).to.be.above(9000);
    for (let i = 0; i < 30; i++) r.register(reg(`honest${i}`), `10.1.0.${i + 1}`);
    expect(r.size).to.equal(100);
    expect([...Array(30).keys()].every((i) => r.get(`honest${i}`))).to.equal(true);
    expect(addressBucket('2001:db8:1:2:ffff::1')).to.equal('2001:db8:1:2::/64');
    expect(addressBucket('2001:db8::1')).to.equal('2001:db8:0:0::/64');
    expect(addressBucket('127.9.9.9')).to.equal(addressBucket('::1'));
  });

  it('bounds what the records cost in bytes, per address and in total, whatever the counts allow', function () {
    const name = (i: number) => `${'n'.repeat(1000)}${i}`;
    const big = (from: number, n: number) => Array.from({ length: n }, (_, i) => file(name(from + i), from + i));
    const one = recordBytes({ name: 'name-a', files: big(0, 10), downloads: [] });
    const r = new NodeRegistry({ now, maxBytesPerAddress: 2 * one + 100, maxBytes: 3 * one + 100 });
    r.register(reg('a', { files: big(0, 10) }), LAN_A);
    r.register(reg('b', { files: big(10, 10) }), LAN_A);
    expect(refused(() => r.register(reg('c', { files: big(20, 10) }), LAN_A)).message).to.equal('this address holds as many bytes as it may');
    r.register(reg('d', { files: big(30, 10) }), LAN_B);
    expect(r.byteCount).to.be.within(3 * one - 100, 3 * one + 100);
    // A fourth from a third address: LAN_A holds the most, its stalest gives way.
    clock++;
    r.register(reg('e', { files: big(40, 10) }), '10.0.0.7');
    expect(r.get('a')).to.equal(undefined);
    expect(r.byteCount).to.be.at.most(3 * one + 100);
  });
  it('lists the freshest first without sorting, heartbeats move a node up, and an answer stops at its limit', function () {
    const r = new NodeRegistry({ now });
    for (const id of ['a', 'b', 'c', 'd']) {
      clock += 10;
      r.register({ id, instance: `${id}-1`, name: id, port: 6000, files: [], downloads: [] }, '10.6.0.1');
    }
    clock += 10;
    r.heartbeat('a', { instance: 'a-1' }, '10.6.0.1');
    expect(r.list().map((n) => n.id)).to.deep.equal(['a', 'd', 'c', 'b']);
    expect(r.peersFor('d', 2)).to.deep.include({ truncated: true });
    expect(r.peersFor('d', 2).nodes.map((n) => n.id)).to.deep.equal(['a', 'c']);
    expect(r.peersFor('d', 3)).to.deep.include({ truncated: false });
    r.unregister('c', 'c-1');
    clock += 10;
    r.register({ id: 'b', instance: 'b-2', name: 'b', port: 6001, files: [], downloads: [] }, '10.6.0.1'); // a restart
    expect(r.list().map((n) => n.id)).to.deep.equal(['b', 'a', 'd']);
    clock = 2_000_000;
    expect(r.expire()).to.have.members(['a', 'b', 'd']);
    expect(r.list()).to.deep.equal([]);
    expect(r.peersFor('x', 10)).to.deep.equal({ nodes: [], truncated: false });
  });

  it('bounds shared files in total (503), at register and at heartbeat', function () {
    const r = new NodeRegistry({ now, maxFiles: 5 });
    const files = (from: number, n: number) => Array.from({ length: n }, (_, i) => file(`f${from + i}`, from + i));
    r.register(reg('a', { files: files(0, 3) }), LAN_A);
    const e = refused(() => r.register(reg('b', { files: files(10, 3) }), LAN_B));
    expect([e.status, e.message]).to.deep.equal([503, 'the registry holds as many files as it can']);
    r.register(reg('b', { files: files(10, 2) }), LAN_B);
    expect(refused(() => r.heartbeat('a', { instance: 'a-i1', files: files(0, 4) }, LAN_A)).status).to.equal(503);
    expect(r.fileCount).to.equal(5);
  });

  it('expires nodes whose heartbeats stopped, and says so with a change event', function () {
    const r = new NodeRegistry({ now, ttlMs: 1000 });
    let changes = 0;
    r.on('change', () => changes++);
    r.register(reg('a'), LAN_A);
    r.register(reg('b'), LAN_B);
    clock += 800;
    r.heartbeat('a', { instance: 'a-i1' }, LAN_A);
    expect(changes, 'a plain heartbeat is not a change').to.equal(2);
    clock += 300;
    expect(r.expire()).to.deep.equal(['b']);
    expect(changes).to.equal(3);
    clock += 1000;
    expect(r.expire()).to.deep.equal(['a']);
    expect(r.size).to.equal(0);
  });

  it('drops a node once enough distinct reporters say it is unreachable, and quarantines that instance', function () {
    const r = new NodeRegistry({ now, reportThreshold: 2 });
    for (const [id, from] of [['t', LAN_A], ['r1', LAN_B], ['r2', '10.0.0.7'], ['r3', '10.0.0.7']] as const) r.register(reg(id), from);
    expect(refused(() => r.report('t', 'r1', 'mallory')).message, 'signed by the reporter').to.match(/signed by its reporter's key/);
    expect(refused(() => r.report('t', 'nobody')).status).to.equal(403);
    expect(refused(() => r.report('zz', 'r1')).status).to.equal(404);
    expect(refused(() => r.report('r1', 'r1')).status).to.equal(400);
    expect(r.report('t', 'r1')).to.deep.equal({ dropped: false });
    expect(r.report('t', 'r1'), 'the same reporter counts once').to.deep.equal({ dropped: false });
    expect(r.report('t', 'r2')).to.deep.equal({ dropped: true });
    expect(r.get('t')).to.equal(undefined);
    expect(refused(() => r.register(reg('t'), LAN_A)).status, 'the same instance is quarantined').to.equal(409);
    expect(r.register(reg('t', { instance: 't-new' }), LAN_A).id, 'a restarted node may come back').to.equal('t');
    // Two reporters behind one address are one voice.
    expect(r.report('t', 'r2').dropped).to.equal(false);
    expect(r.report('t', 'r3').dropped).to.equal(false);
  });

  it('counts a report only from a node told of the target since it registered', function () {
    const r = new NodeRegistry({ now, reportThreshold: 1 });
    r.register(reg('r'), LAN_B);
    clock += 10;
    r.register(reg('t'), LAN_A); // r has had no answer since t came
    expect(refused(() => r.report('t', 'r')).message).to.match(/has not been told of t yet/);
    clock += 10;
    r.heartbeat('r', { instance: 'r-i1' }, LAN_B); // its answer names t
    expect(r.report('t', 'r').dropped).to.equal(true);
  });

  it('needs a quarter of the nodes told of the target (at most 10) when that is more than the threshold: two sybils cannot drop a node', function () {
    const r = new NodeRegistry({ now, reportThreshold: 2 });
    r.register(reg('t'), LAN_A);
    for (let i = 0; i < 40; i++) r.register(reg(`h${i}`), `10.2.0.${i + 1}`);
    r.register(reg('s1'), '10.66.0.1');
    r.register(reg('s2'), '10.66.0.2');
    expect(r.report('t', 's1').dropped).to.equal(false);
    expect(r.report('t', 's2').dropped, '42 told: 11 reporters, capped at 10').to.equal(false);
    for (let i = 0; i < 7; i++) expect(r.report('t', `h${i}`).dropped).to.equal(false);
    expect(r.report('t', 'h7').dropped, 'the tenth distinct address').to.equal(true);
  });

  it('needs only the other live nodes when fewer than the threshold exist', function () {
    const r = new NodeRegistry({ now, reportThreshold: 3 });
    r.register(reg('t'), LAN_A);
    r.register(reg('r'), LAN_B);
    expect(r.report('t', 'r').dropped).to.equal(true);
  });

  it('searches lower-cased names as plain text, merged by infohash, complete files only', function () {
    const r = new NodeRegistry({ now });
    r.register(reg('a', { files: [file('Holiday.MP4', 1), file('notes.txt', 2), file('half.mp4', 3, { complete: false })] }), LAN_A);
    r.register(reg('b', { files: [file('holiday.mp4', 1), file('a.*b(c)[d]', 4)] }), LAN_B);
    const hits = r.search('HOLIDAY');
    expect(hits).to.have.length(1);
    expect(hits[0]!.infohash).to.equal(hash(1));
    expect(hits[0]!.nodes.map((n) => n.id).sort()).to.deep.equal(['a', 'b']);
    expect(r.search('mp4').map((h) => h.infohash)).to.deep.equal([hash(1)]);
    expect(r.search('.*'), 'no pattern: ".*" is two characters').to.have.length(1);
    expect(r.search('(c)[')[0]!.name).to.equal('a.*b(c)[d]');
    expect(r.search('^notes')).to.deep.equal([]);
    expect(r.search('../../etc/passwd')).to.deep.equal([]);
  });

  it('caps search answers at 200 files', function () {
    const r = new NodeRegistry({ now });
    r.register(reg('a', { files: Array.from({ length: 500 }, (_, i) => file(`song-${i}.ogg`, i + 1)) }), LAN_A);
    expect(r.search('song')).to.have.length(200);
  });

  it(`names at most MAX_NODES_PER_RESULT (${MAX_NODES_PER_RESULT}) nodes per search hit, freshest first`, function () {
    const r = new NodeRegistry({ now });
    for (let i = 0; i <= MAX_NODES_PER_RESULT; i++) {
      clock++;
      r.register(reg(`n${i}`, { files: [file('shared.iso', 1)] }), LAN_A);
    }
    const [hit] = r.search('shared');
    expect(hit!.nodes).to.have.length(MAX_NODES_PER_RESULT);
    expect(hit!.nodes[0]!.id).to.equal(`n${MAX_NODES_PER_RESULT}`);
    expect(hit!.nodes.map((n) => n.id)).to.not.include('n0');
  });

  it(`a node's view shows its first MAX_SHARES_SHOWN (${MAX_SHARES_SHOWN}) names and MAX_DOWNLOADS_SHOWN (${MAX_DOWNLOADS_SHOWN}) downloads, and the exact counts`, function () {
    const r = new NodeRegistry({ now });
    const files = Array.from({ length: MAX_SHARES_SHOWN + 5 }, (_, i) => file(`f${i}`, i));
    const downloads = Array.from({ length: MAX_DOWNLOADS_SHOWN + 10 }, (_, i) => ({ infohash: hash(1000 + i), name: `d${i}`, progress: 0.5 }));
    const v = r.view(r.register(reg('a', { files, downloads }), LAN_A));
    expect(v.shares).to.deep.equal(files.slice(0, MAX_SHARES_SHOWN).map((f) => f.name));
    expect(v.downloads.map((d) => d.name)).to.deep.equal(downloads.slice(0, MAX_DOWNLOADS_SHOWN).map((d) => d.name));
    expect([v.files, v.downloadCount]).to.deep.equal([files.length, downloads.length]);
  });

  it('keeps an index of who seeds what, in step with heartbeats and departures', function () {
    const r = new NodeRegistry({ now });
    r.register(reg('a', { files: [file('x', 1), file('y', 2, { complete: false })] }), LAN_A);
    expect(r.seedsOf(hash(1)).map((n) => n.id)).to.deep.equal(['a']);
    expect(r.seedsOf(hash(2)), 'incomplete files are not seeded').to.deep.equal([]);
    r.heartbeat('a', { instance: 'a-i1', files: [file('z', 3)] }, LAN_A);
    expect(r.seedsOf(hash(1))).to.deep.equal([]);
    expect(r.seedCount(hash(3))).to.equal(1);
    r.unregister('a', 'a-i1');
    expect(r.seedCount(hash(3))).to.equal(0);
  });

  it('totals the distinct files shared complete and their bytes, an infohash once however many share it', function () {
    const r = new NodeRegistry({ now });
    expect(r.shareTotals()).to.deep.equal({ files: 0, bytes: 0 });
    r.register(reg('a', { files: [file('x', 1), file('y', 2), file('partial', 3, { complete: false })] }), LAN_A);
    expect(r.shareTotals(), 'a file still downloading is not held yet').to.deep.equal({ files: 2, bytes: 1001 + 1002 });
    r.register(reg('b', { files: [file('x under another name', 1), file('partial', 3)] }), LAN_B);
    expect(r.shareTotals(), 'x counts once; b holds all of the partial one').to.deep.equal({ files: 3, bytes: 1001 + 1002 + 1003 });
    r.unregister('a', 'a-i1');
    expect(r.shareTotals(), 'x is still held by b; y went with a').to.deep.equal({ files: 2, bytes: 1001 + 1003 });
    r.heartbeat('b', { instance: 'b-i1', files: [] }, LAN_B);
    expect(r.shareTotals()).to.deep.equal({ files: 0, bytes: 0 });
    clock += r.ttlMs + 1;
    r.register(reg('c', { files: [file('z', 4)] }), LAN_A);
    r.expire();
    expect(r.shareTotals(), 'expired nodes take their files with them').to.deep.equal({ files: 1, bytes: 1004 });
  });

  describe('persistence', function () {
    let dir = '';
    afterEach(async () => {
      await cleanup(dir);
    });

    it('round-trips through a file per node, and loaded nodes get a fresh TTL', async function () {
      dir = await tempDir('shoal-registry-');
      const d = path.join(dir, 'nodes');
      const a = new NodeRegistry({ now, dir: d, ttlMs: 1000 });
      a.register(reg('a', { files: [file('x.iso', 1)], downloads: [{ infohash: hash(2), name: 'y', progress: 0.5 }] }), LAN_A);
      a.register(reg('b', { host: LAN_B }), '127.0.0.1');
      a.register(reg('c'), LAN_B);
      a.unregister('c', 'c-i1');
      await a.close();
      expect((await fsp.readdir(d)).sort()).to.deep.equal(['a.json', 'b.json']);
      clock += 5000; // long past the TTL
      const b = new NodeRegistry({ now, dir: d, ttlMs: 1000 });
      await b.load();
      expect(b.list().map((n) => n.id).sort()).to.deep.equal(['a', 'b']);
      expect(b.expire(), 'nobody expires right after a load').to.deep.equal([]);
      expect(b.get('a')!.files).to.deep.equal([file('x.iso', 1)]);
      expect(b.get('b')!.host).to.equal(LAN_B);
      expect(b.heartbeat('a', { instance: 'a-i1' }, LAN_A).id).to.equal('a');
      expect(b.search('x.iso')).to.have.length(1);
    });

    it('saves by itself shortly after a change, writing only the node that changed', async function () {
      dir = await tempDir('shoal-registry-');
      const d = path.join(dir, 'sub', 'nodes');
      const r = new NodeRegistry({ dir: d, saveDelayMs: 20 });
      r.register(reg('a'), LAN_A);
      r.register(reg('b'), LAN_B);
      await waitFor(() => fsp.readFile(path.join(d, 'b.json'), 'utf8').then((t) => t.includes('"b"'), () => false), 2000, 'the node file');
      const before = (await fsp.stat(path.join(d, 'a.json'))).mtimeMs;
      await new Promise((res) => setTimeout(res, 30));
      r.heartbeat('b', { instance: 'b-i1', files: [file('new', 1)] }, LAN_B);
      await waitFor(() => fsp.readFile(path.join(d, 'b.json'), 'utf8').then((t) => t.includes('"new"'), () => false), 2000, 'b rewritten');
      expect((await fsp.stat(path.join(d, 'a.json'))).mtimeMs, 'a untouched').to.equal(before);
      await r.close();
    });

    it('skips a damaged node file and keeps it as .bad; the others load', async function () {
      dir = await tempDir('shoal-registry-');
      const d = path.join(dir, 'nodes');
      const good = new NodeRegistry({ now, dir: d });
      good.register(reg('ok'), LAN_A);
      await good.close();
      for (const [name, damage] of [['x.json', '{"version":2,"id":'], ['y.json', '{"version":2,"id":"../x"}'], ['z.json', '[]'], ['w.json', (await fsp.readFile(path.join(d, 'ok.json'), 'utf8'))]]) {
        await fsp.writeFile(path.join(d, name!), damage!);
      }
      const r = new NodeRegistry({ now, dir: d });
      await r.load();
      expect(r.list().map((n) => n.id)).to.deep.equal(['ok']);
      expect((await fsp.readdir(d)).sort()).to.deep.equal(['ok.json', 'w.json.bad', 'x.json.bad', 'y.json.bad', 'z.json.bad']);
    });
  });
});
