/** The bootstrap server's registry as pure state: bounds, ownership, last-seen order, expiry, reports, search, persistence. */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { tempDir, cleanup, waitFor } from '../helpers.js';
import { NodeRegistry, RegistryError } from '../../bootstrap/registry.js';
import { MAX_NODES_PER_RESULT, MAX_SHARES_SHOWN, MAX_DOWNLOADS_SHOWN, type RegisterRequest } from '../../network/wire/bootstrap-api.js';

const hash = (n: number) => n.toString(16).padStart(40, '0');
const file = (name: string, n: number, extra: { complete?: boolean } = {}) => ({ name, size: 1000 + n, infohash: hash(n), ...extra });
const reg = (id: string, extra: Partial<RegisterRequest> = {}): RegisterRequest => ({ id, instance: `${id}-i1`, name: `name-${id}`, port: 6000, files: [], downloads: [], ...extra });
const LAN_A = '10.0.0.5';
const LAN_B = '10.0.0.6';

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

  it('lets only the owner heartbeat or unregister: same instance, same address (or loopback)', function () {
    const r = new NodeRegistry({ now });
    r.register(reg('a'), LAN_A);
    expect(refused(() => r.heartbeat('a', { instance: 'other' }, LAN_A)).status).to.equal(403);
    expect(refused(() => r.heartbeat('a', { instance: 'a-i1' }, LAN_B)).status).to.equal(403);
    expect(refused(() => r.heartbeat('zz', { instance: 'a-i1' }, LAN_A)).status).to.equal(404);
    expect(refused(() => r.unregister('a', 'a-i1', LAN_B)).status).to.equal(403);
    expect(refused(() => r.register(reg('a', { instance: 'evil' }), LAN_B)).status, 'an id taken from another address').to.equal(403);
    clock += 5;
    expect(r.heartbeat('a', { instance: 'a-i1' }, LAN_A).lastSeen).to.equal(clock);
    expect(r.heartbeat('a', { instance: 'a-i1' }, '127.0.0.1').id).to.equal('a');
    // A restart: same id and address, new instance, replaces the old registration.
    expect(r.register(reg('a', { instance: 'a-i2' }), LAN_A).instance).to.equal('a-i2');
    expect(r.size).to.equal(1);
    r.unregister('a', 'a-i2', LAN_A);
    expect(r.size).to.equal(0);
  });

  it('bounds nodes per address (429), nodes in total (503) and files per address (429)', function () {
    const r = new NodeRegistry({ now, maxNodesPerAddress: 3, maxNodes: 5, maxFilesPerAddress: 4 });
    for (const id of ['a', 'b', 'c']) r.register(reg(id), LAN_A);
    const e = refused(() => r.register(reg('d'), LAN_A));
    expect(e.status).to.equal(429);
    expect(e.message).to.equal('too many nodes from this address');
    // Re-registering one we own is not one more.
    r.register(reg('a', { instance: 'again' }), LAN_A);
    r.register(reg('e'), LAN_B);
    r.register(reg('f'), LAN_B);
    const full = refused(() => r.register(reg('g'), '10.0.0.7'));
    expect([full.status, full.message]).to.deep.equal([503, 'the registry is full']);
    const files = refused(() => r.register(reg('e', { files: [1, 2, 3, 4, 5].map((n) => file(`f${n}`, n)) }), LAN_B));
    expect([files.status, files.message]).to.deep.equal([429, 'too many shared files from this address']);
    r.heartbeat('e', { instance: 'e-i1', files: [1, 2, 3].map((n) => file(`f${n}`, n)) }, LAN_B);
    expect(refused(() => r.heartbeat('f', { instance: 'f-i1', files: [4, 5].map((n) => file(`f${n}`, n)) }, LAN_B)).status).to.equal(429);
    expect(r.fileCount).to.equal(3);
    expect(r.size).to.equal(5);
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
    r.unregister('c', 'c-1', '10.6.0.1');
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
    expect(refused(() => r.report('t', 'r1', '10.0.0.99')).status, 'the reporter must send from its own address').to.equal(403);
    expect(refused(() => r.report('t', 'nobody', LAN_B)).status).to.equal(403);
    expect(refused(() => r.report('zz', 'r1', LAN_B)).status).to.equal(404);
    expect(refused(() => r.report('r1', 'r1', LAN_B)).status).to.equal(400);
    expect(r.report('t', 'r1', LAN_B)).to.deep.equal({ dropped: false });
    expect(r.report('t', 'r1', LAN_B), 'the same reporter counts once').to.deep.equal({ dropped: false });
    expect(r.report('t', 'r2', '10.0.0.7')).to.deep.equal({ dropped: true });
    expect(r.get('t')).to.equal(undefined);
    expect(refused(() => r.register(reg('t'), LAN_A)).status, 'the same instance is quarantined').to.equal(409);
    expect(r.register(reg('t', { instance: 't-new' }), LAN_A).id, 'a restarted node may come back').to.equal('t');
    // Two reporters behind one address are one voice.
    expect(r.report('t', 'r2', '10.0.0.7').dropped).to.equal(false);
    expect(r.report('t', 'r3', '10.0.0.7').dropped).to.equal(false);
  });

  it('needs only the other live nodes when fewer than the threshold exist', function () {
    const r = new NodeRegistry({ now, reportThreshold: 3 });
    r.register(reg('t'), LAN_A);
    r.register(reg('r'), LAN_B);
    expect(r.report('t', 'r', LAN_B).dropped).to.equal(true);
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
    r.unregister('a', 'a-i1', LAN_A);
    expect(r.seedCount(hash(3))).to.equal(0);
  });

  it('totals the distinct files shared complete and their bytes, an infohash once however many share it', function () {
    const r = new NodeRegistry({ now });
    expect(r.shareTotals()).to.deep.equal({ files: 0, bytes: 0 });
    r.register(reg('a', { files: [file('x', 1), file('y', 2), file('partial', 3, { complete: false })] }), LAN_A);
    expect(r.shareTotals(), 'a file still downloading is not held yet').to.deep.equal({ files: 2, bytes: 1001 + 1002 });
    r.register(reg('b', { files: [file('x under another name', 1), file('partial', 3)] }), LAN_B);
    expect(r.shareTotals(), 'x counts once; b holds all of the partial one').to.deep.equal({ files: 3, bytes: 1001 + 1002 + 1003 });
    r.unregister('a', 'a-i1', LAN_A);
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

    it('round-trips through the file, and loaded nodes get a fresh TTL', async function () {
      dir = await tempDir('shoal-registry-');
      const f = path.join(dir, 'registry.json');
      const a = new NodeRegistry({ now, file: f, ttlMs: 1000 });
      a.register(reg('a', { files: [file('x.iso', 1)], downloads: [{ infohash: hash(2), name: 'y', progress: 0.5 }] }), LAN_A);
      a.register(reg('b', { host: LAN_B }), '127.0.0.1');
      await a.close();
      clock += 5000; // long past the TTL
      const b = new NodeRegistry({ now, file: f, ttlMs: 1000 });
      await b.load();
      expect(b.list().map((n) => n.id).sort()).to.deep.equal(['a', 'b']);
      expect(b.expire(), 'nobody expires right after a load').to.deep.equal([]);
      expect(b.get('a')!.files).to.deep.equal([file('x.iso', 1)]);
      expect(b.get('b')!.host).to.equal(LAN_B);
      expect(b.heartbeat('a', { instance: 'a-i1' }, LAN_A).id).to.equal('a');
      expect(b.search('x.iso')).to.have.length(1);
    });

    it('saves by itself shortly after a change', async function () {
      dir = await tempDir('shoal-registry-');
      const f = path.join(dir, 'sub', 'registry.json');
      const r = new NodeRegistry({ file: f, saveDelayMs: 20 });
      r.register(reg('a'), LAN_A);
      await waitFor(() => fsp.readFile(f, 'utf8').then((t) => t.includes('"a"'), () => false), 2000, 'the registry file');
      await r.close();
    });

    it('starts empty on a damaged file and keeps it as .bad', async function () {
      dir = await tempDir('shoal-registry-');
      const f = path.join(dir, 'registry.json');
      for (const damage of ['{"version":1,"nodes":[{"id":', '{"version":1,"savedAt":1,"nodes":[{"id":"../x"}]}', '[]']) {
        await fsp.writeFile(f, damage);
        const r = new NodeRegistry({ file: f });
        await r.load();
        expect(r.size).to.equal(0);
        expect(await fsp.readFile(`${f}.bad`, 'utf8')).to.equal(damage);
        await fsp.rm(`${f}.bad`);
      }
    });
  });
});
