/**
 * The dashboard's REST API over real HTTP on loopback, against real nodes: a seed (A), a
 * slow seed (C, upload-limited so its downloads stay in progress for a while), and the node
 * whose dashboard is under test (B), which knows both by hand. Every answer is checked
 * against the contract's schemas; every error is `{ error }`.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import type { z } from 'zod';
import type { Node } from '../../network/index.js';
import { parseTorrent } from '../../network/metainfo/metainfo.js';
import { WebServer } from '../../web/server.js';
import {
  DownloadDetailSchema, DownloadViewSchema, DownloadsResponseSchema, ErrorResponseSchema, FileViewSchema, FilesResponseSchema, PeerViewSchema,
  PeersResponseSchema, SearchResponseSchema, StatusSchema, type DownloadView, type FileView, type PeerView,
} from '../../web/contract.js';
import { cleanup, randomFile, sha1File, startNode, tempDir, waitFor } from '../helpers.js';
import { client, liveClient, type Answer } from '../web-http.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function expectError(res: Answer, status: number, match?: RegExp): string {
  expect(res.status, res.text.slice(0, 300)).to.equal(status);
  expect(res.headers['content-type']).to.match(/^application\/json/);
  const { error } = ErrorResponseSchema.parse(res.json());
  if (match) expect(error).to.match(match);
  return error;
}

const parse = <S extends z.ZodType>(schema: S, res: Answer, status = 200): z.output<S> => {
  expect(res.status, res.text.slice(0, 300)).to.equal(status);
  return schema.parse(res.json());
};

describe('web API', function () {
  this.timeout(60_000);
  let dir = '';
  let a: Node;
  let b: Node;
  let c: Node;
  let web: WebServer;
  let api: ReturnType<typeof client>;
  const seedFiles = { movie: 'movie.mp4', byHash: 'by-hash.bin', byMagnet: 'by-magnet.bin', page: 'page.html' };
  const slow = { one: 'slow-one.bin', two: 'slow-two.bin' };
  const SLOW_SIZE = 3 * MiB;

  before(async function () {
    dir = await tempDir('shoal-web-api-');
    await randomFile(path.join(dir, 'a', 'shared', seedFiles.movie), 1 * MiB + 12345);
    await randomFile(path.join(dir, 'a', 'shared', seedFiles.byHash), 700 * KiB);
    await randomFile(path.join(dir, 'a', 'shared', seedFiles.byMagnet), 300 * KiB + 7);
    await fsp.writeFile(path.join(dir, 'a', 'shared', seedFiles.page), '<script>alert(1)</script>\n');
    await randomFile(path.join(dir, 'c', 'shared', slow.one), SLOW_SIZE);
    await randomFile(path.join(dir, 'c', 'shared', slow.two), SLOW_SIZE);
    a = await startNode(path.join(dir, 'a'));
    c = await startNode(path.join(dir, 'c'), { maxUploadRate: 96 * KiB, pieceLength: 32 * KiB });
    b = await startNode(path.join(dir, 'b'), {
      peers: [
        { host: '127.0.0.1', port: a.port },
        { host: '127.0.0.1', port: c.port },
      ],
    });
    web = new WebServer({ node: b, port: 0, contentWaitMs: 5000, resolveTimeoutMs: 8000 });
    await web.start();
    api = client(web.url);
  });

  after(async function () {
    await web?.stop();
    await Promise.all([a, b, c].map((n) => n?.stop()));
    if (dir) await cleanup(dir);
  });

  describe('status and peers', function () {
    it('GET /api/status describes the node', async function () {
      const s = parse(StatusSchema, await api.get('/api/status'));
      expect(s.id).to.equal(b.id);
      expect(s.peerPort).to.equal(b.port);
      expect(s.httpUrl).to.equal(web.url);
      expect(s.totals.peers).to.equal(2);
      expect(s.version).to.match(/^\d+\.\d+\.\d+/);
      expect(s.discovery).to.deep.equal([]); // multicast off, no bootstrap
    });

    it('GET /api/peers lists the peers, filtered by source; a bad source is a 400', async function () {
      const all = parse(PeersResponseSchema, await api.get('/api/peers'));
      expect(all.peers.map((p) => p.port).sort()).to.deep.equal([a.port, c.port].sort());
      expect(all.peers.every((p) => p.sources.includes('manual'))).to.equal(true);
      expect(parse(PeersResponseSchema, await api.get('/api/peers?source=manual')).peers).to.have.length(2);
      expect(parse(PeersResponseSchema, await api.get('/api/peers?source=multicast')).peers).to.have.length(0);
      expectError(await api.get('/api/peers?source=carrier-pigeon'), 400, /source/);
    });

    it('POST /api/peers adds a peer by hand; bad ports, bad hosts and this node are 400s', async function () {
      expectError(await api.post('/api/peers', { json: { host: '127.0.0.1', port: 0 } }), 400, /port/);
      expectError(await api.post('/api/peers', { json: { host: '127.0.0.1', port: 70000 } }), 400, /port/);
      expectError(await api.post('/api/peers', { json: { host: '127.0.0.1', port: '9000' } }), 400, /port/);
      expectError(await api.post('/api/peers', { json: { host: 'bad host!', port: 9000 } }), 400);
      expectError(await api.post('/api/peers', { json: { host: '127.0.0.1', port: b.port } }), 400, /this node/);
      const p = parse(PeerViewSchema, await api.post('/api/peers', { json: { host: '127.0.0.3', port: 4321 } }), 201);
      expect(p).to.include({ host: '127.0.0.3', port: 4321 });
      expect(p.sources).to.deep.equal(['manual']);
      expect(b.knownPeers().some((k) => k.port === 4321)).to.equal(true);
      b.removePeer('127.0.0.3', 4321);
    });
  });

  describe('files', function () {
    let files: FileView[];
    const file = (name: string) => files.find((f) => f.name === name)!;

    it('GET /api/files lists what the node shares, with magnet and .torrent links', async function () {
      await api.put(`/api/files?name=${encodeURIComponent('listed.txt')}`, { body: 'hello\n', headers: { 'Content-Type': 'application/octet-stream' } });
      files = parse(FilesResponseSchema, await api.get('/api/files')).files;
      const f = file('listed.txt');
      expect(f.size).to.equal(6);
      expect(f.magnet).to.match(new RegExp(`^magnet:\\?xt=urn:btih:${f.infohash}`));
      expect(f.torrentUrl).to.equal(`/api/files/${f.infohash}/torrent`);
      expect(f.contentUrl).to.equal(`/api/files/${f.infohash}/content`);
      expect(f.holders).to.equal(0);
    });

    it('GET /api/files/:infohash/torrent serves a .torrent with the same infohash', async function () {
      const f = file('listed.txt');
      const res = await api.get(f.torrentUrl);
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.equal('application/x-bittorrent');
      expect(res.headers['content-disposition']).to.match(/^attachment; filename="listed\.txt\.torrent"/);
      const m = parseTorrent(res.body);
      expect(m.infoHashHex).to.equal(f.infohash);
      expect(m.name).to.equal('listed.txt');
      expectError(await api.get(`/api/files/${'0'.repeat(40)}/torrent`), 404);
      expectError(await api.get('/api/files/not-a-hash/torrent'), 400, /infohash/);
    });

    describe('uploads', function () {
      const shared = () => path.join(dir, 'b', 'shared');
      const temps = async (): Promise<string[]> => {
        const out: string[] = [];
        const walk = async (d: string) => {
          for (const e of await fsp.readdir(d, { withFileTypes: true })) {
            if (e.isDirectory()) await walk(path.join(d, e.name));
            else if (e.name.startsWith('.shoal-upload-')) out.push(path.join(d, e.name));
          }
        };
        await walk(shared());
        return out;
      };

      it('PUT /api/files streams a file into the shared folder: 201, listed, same bytes', async function () {
        const bytes = Buffer.alloc(300 * KiB + 3);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 9)) & 0xff;
        // A stream body of known length (chunked per write, never one buffer on the server).
        const res = await api.put(`/api/files?name=${encodeURIComponent('sub dir/upload.bin')}`, {
          body: Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]),
          headers: { 'Content-Length': String(bytes.length), 'Content-Type': 'application/octet-stream' },
        });
        const f = parse(FileViewSchema, res, 201);
        expect(f.name).to.equal('sub dir/upload.bin');
        expect(f.size).to.equal(bytes.length);
        expect(readFileSync(path.join(shared(), 'sub dir', 'upload.bin')).equals(bytes)).to.equal(true);
        const listed = parse(FilesResponseSchema, await api.get('/api/files')).files;
        expect(listed.map((x) => x.infohash)).to.include(f.infohash);
        const back = await api.get(f.contentUrl);
        expect(back.status).to.equal(200);
        expect(back.body.equals(bytes)).to.equal(true);
        expect(await temps()).to.deep.equal([]);
      });

      for (const [what, name] of [
        ['a ".." component', '../escape.bin'],
        ['a nested ".."', 'ok/../../escape.bin'],
        ['an absolute name', '/tmp/escape.bin'],
        ['a NUL', 'bad\u0000name.bin'],
        ['a backslash', 'bad\\name.bin'],
      ]) {
        it(`PUT /api/files refuses ${what} with 400 and writes nothing`, async function () {
          const res = await api.put(`/api/files?name=${encodeURIComponent(name!)}`, { body: 'x'.repeat(1000) });
          expectError(res, 400, /name/);
          expect(await temps()).to.deep.equal([]);
          const outside = await fsp.readdir(path.join(dir, 'b'));
          expect(outside).to.not.include('escape.bin');
        });
      }

      it('PUT /api/files without a name, or without Content-Length, is refused', async function () {
        expectError(await api.put('/api/files', { body: 'x' }), 400, /name/);
        const chunked = await api.put('/api/files?name=chunked.bin', { body: Readable.from([Buffer.from('abc')]) });
        expectError(chunked, 411, /Content-Length/);
      });

      it('PUT /api/files of an existing name is a 409 and leaves the original intact', async function () {
        const before = readFileSync(path.join(shared(), 'listed.txt'));
        const res = await api.put('/api/files?name=listed.txt', { body: 'something else entirely' });
        expectError(res, 409, /exists/);
        expect(readFileSync(path.join(shared(), 'listed.txt')).equals(before)).to.equal(true);
        expect(await temps()).to.deep.equal([]);
      });

      it('an upload larger than allowed is a 413, larger than the free space a 507, before any byte is written', async function () {
        const huge = await api.put('/api/files?name=huge.bin', { body: '', headers: { 'Content-Length': String(100 * 1024 ** 3) } });
        expectError(huge, 413);
        // A dashboard without the size bound, so that only the free space can refuse.
        const unbounded = new WebServer({ node: b, port: 0, maxUploadBytes: Number.MAX_SAFE_INTEGER });
        await unbounded.start();
        try {
          const { bavail, bsize } = await fsp.statfs(shared());
          const tooBig = await client(unbounded.url).put('/api/files?name=too-big.bin', { body: '', headers: { 'Content-Length': String(bavail * bsize + 1024 ** 3) } });
          expectError(tooBig, 507, /free/);
        } finally {
          await unbounded.stop();
        }
        expect(await temps()).to.deep.equal([]);
        expect((await fsp.readdir(shared())).filter((n) => n.startsWith('huge') || n.startsWith('too-big'))).to.deep.equal([]);
      });

      it('a body shorter than its Content-Length leaves no file and no temp', async function () {
        const res = await api.put('/api/files?name=short.bin', { body: 'abc', headers: { 'Content-Length': '3' } });
        expect(res.status).to.equal(201); // control: a matching length works
        // Declare 1 MiB, send 10 bytes, and hang up once the server is writing them.
        const u = new URL(web.url);
        const s = net.connect(Number(u.port), u.hostname);
        let reply = '';
        s.on('data', (d: Buffer) => (reply += d.toString()));
        s.on('error', () => {});
        await once(s, 'connect');
        s.write(`PUT /api/files?name=cut.bin HTTP/1.1\r\nHost: ${u.host}\r\nContent-Length: 1048576\r\n\r\n0123456789`);
        await waitFor(async () => (await temps()).length === 1, 5000, 'the upload to start its temp file');
        expect(reply, 'no answer while the body is still due').to.equal('');
        s.destroy();
        await waitFor(async () => (await temps()).length === 0, 5000, 'the temp file of the cut upload to go');
        await fsp.access(path.join(shared(), 'cut.bin')).then(
          () => expect.fail('cut.bin should not exist'),
          () => {},
        );
        expect((await api.get('/api/status')).status).to.equal(200); // still serving
      });
    });

    describe('content', function () {
      let f: FileView;
      let bytes: Buffer;
      before(async function () {
        bytes = Buffer.alloc(200 * KiB + 11);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 0xff;
        f = parse(FileViewSchema, await api.put('/api/files?name=clip.mp4', { body: bytes }), 201);
      });

      it('200 with the whole file, Accept-Ranges, type from the extension, inline, nosniff', async function () {
        const res = await api.get(f.contentUrl);
        expect(res.status).to.equal(200);
        expect(res.body.equals(bytes)).to.equal(true);
        expect(res.headers['content-length']).to.equal(String(bytes.length));
        expect(res.headers['accept-ranges']).to.equal('bytes');
        expect(res.headers['content-type']).to.equal('video/mp4');
        expect(res.headers['content-disposition']).to.match(/^inline; filename="clip\.mp4"/);
        expect(res.headers['x-content-type-options']).to.equal('nosniff');
      });

      it('206 for the first byte, a middle range, a suffix and an open-ended range', async function () {
        const L = bytes.length;
        const cases: Array<[string, number, number]> = [
          ['bytes=0-0', 0, 0],
          ['bytes=1000-70000', 1000, 70000],
          ['bytes=-100', L - 100, L - 1],
          [`bytes=${L - 5000}-`, L - 5000, L - 1],
          [`bytes=${L - 10}-${L + 1000}`, L - 10, L - 1], // an end past the file is clamped
        ];
        for (const [range, start, end] of cases) {
          const res = await api.get(f.contentUrl, { headers: { Range: range } });
          expect(res.status, range).to.equal(206);
          expect(res.headers['content-range'], range).to.equal(`bytes ${start}-${end}/${L}`);
          expect(res.headers['content-length'], range).to.equal(String(end - start + 1));
          expect(res.body.equals(bytes.subarray(start, end + 1)), range).to.equal(true);
        }
      });

      it('416 with Content-Range bytes */length outside the file', async function () {
        const L = bytes.length;
        for (const range of [`bytes=${L}-`, `bytes=${L + 10}-${L + 20}`, 'bytes=-0']) {
          const res = await api.get(f.contentUrl, { headers: { Range: range } });
          expect(res.status, range).to.equal(416);
          expectError(res, 416, /outside/);
          expect(res.headers['content-range']).to.equal(`bytes */${L}`);
        }
      });

      it('a malformed or multiple Range is ignored: 200 with everything', async function () {
        for (const range of ['bytes=5-2', 'items=0-1', 'bytes=0-1,5-6']) {
          const res = await api.get(f.contentUrl, { headers: { Range: range } });
          expect(res.status, range).to.equal(200);
          expect(res.body.length).to.equal(bytes.length);
        }
      });

      it('HEAD answers the headers only', async function () {
        const res = await api.head(f.contentUrl, { headers: { Range: 'bytes=10-19' } });
        expect(res.status).to.equal(206);
        expect(res.headers['content-length']).to.equal('10');
        expect(res.headers['content-range']).to.equal(`bytes 10-19/${bytes.length}`);
        expect(res.body.length).to.equal(0);
        const whole = await api.head(f.contentUrl);
        expect(whole.status).to.equal(200);
        expect(whole.headers['content-length']).to.equal(String(bytes.length));
      });

      it('a suffix longer than the file is the whole file as a 206; the last byte alone; bytes=0- is a 206 of everything', async function () {
        const L = bytes.length;
        for (const [range, start, end] of [[`bytes=-${L + 100}`, 0, L - 1], [`bytes=${L - 1}-`, L - 1, L - 1], ['bytes=0-', 0, L - 1], [`bytes=${L - 1}-${L - 1}`, L - 1, L - 1]] as const) {
          const res = await api.get(f.contentUrl, { headers: { Range: range } });
          expect(res.status, range).to.equal(206);
          expect(res.headers['content-range'], range).to.equal(`bytes ${start}-${end}/${L}`);
          expect(res.body.equals(bytes.subarray(start, end + 1)), range).to.equal(true);
        }
      });

      it('an empty file is a 200 of nothing without Range, a 416 (bytes */0) with one', async function () {
        const res = await api.put('/api/files?name=empty.txt', { body: '' });
        if (res.status !== 201) this.skip(); // a node that does not share empty files has nothing to serve
        const e = FileViewSchema.parse(res.json());
        const whole = await api.get(e.contentUrl);
        expect(whole.status).to.equal(200);
        expect(whole.headers['content-length']).to.equal('0');
        for (const range of ['bytes=0-', 'bytes=-1']) {
          const r = await api.get(e.contentUrl, { headers: { Range: range } });
          expectError(r, 416);
          expect(r.headers['content-range'], range).to.equal('bytes */0');
        }
      });

      it('HTML goes out as text/plain; unknown extensions as octet-stream; unknown infohash 404', async function () {
        const h = parse(FileViewSchema, await api.put('/api/files?name=page.html', { body: '<script>alert(1)</script>' }), 201);
        expect((await api.get(h.contentUrl)).headers['content-type']).to.match(/^text\/plain/);
        const o = parse(FileViewSchema, await api.put('/api/files?name=thing.xyz', { body: 'x' }), 201);
        expect((await api.get(o.contentUrl)).headers['content-type']).to.equal('application/octet-stream');
        expectError(await api.get(`/api/files/${'a'.repeat(40)}/content`), 404);
        expectError(await api.get('/api/files/zz/content'), 400, /infohash/);
      });
    });
  });

  describe('search and downloads', function () {
    const infohashOf = (n: Node, name: string) => n.files().find((f) => f.name === name)!.metainfo.infoHashHex;
    const downloads = async () => parse(DownloadsResponseSchema, await api.get('/api/downloads')).downloads;
    const finished = (h: string) =>
      waitFor(async () => (await downloads()).find((d) => d.infohash === h && d.state === 'done' && d.progress === 1), 30_000, `download ${h} to finish`);
    const sameBytes = async (name: string, from: Node) =>
      expect(await sha1File(path.join(dir, 'b', 'downloads', name))).to.equal(await sha1File(path.join(from.sharedDir, name)));

    it('GET /api/search asks the network and merges by infohash', async function () {
      const res = parse(SearchResponseSchema, await api.get('/api/search?q=movie'));
      expect(res.query).to.equal('movie');
      expect(res.results).to.have.length(1);
      const r = res.results[0]!;
      expect(r).to.include({ name: seedFiles.movie, infohash: infohashOf(a, seedFiles.movie), sources: 1, local: false, downloading: false });
      expect(r.peers[0]!.port).to.equal(a.port);
      expect(r.via).to.deep.equal(['peers']);
      expect(parse(SearchResponseSchema, await api.get('/api/search?q=no-such-thing-anywhere')).results).to.deep.equal([]);
      expectError(await api.get('/api/search'), 400, /q/);
      expectError(await api.get('/api/search?q=%20%20'), 400, /query/);
    });

    it('POST /api/downloads by name: 202, then progress reaches 1 and the bytes are identical', async function () {
      const res = await api.post('/api/downloads', { json: { target: seedFiles.movie } });
      const d = parse(DownloadViewSchema, res, 202);
      expect(d.infohash).to.equal(infohashOf(a, seedFiles.movie));
      expect(d.name).to.equal(seedFiles.movie);
      expect(d.contentUrl).to.equal(`/api/files/${d.infohash}/content`);
      await finished(d.infohash);
      await sameBytes(seedFiles.movie, a);
      const detail = parse(DownloadDetailSchema, await api.get(`/api/downloads/${d.infohash}`));
      expect(detail.state).to.equal('done');
      expect(Buffer.from(detail.pieceMap, 'base64').length).to.equal(Math.ceil(detail.pieces / 8));
    });

    it('POST /api/downloads by infohash and by magnet link', async function () {
      const h1 = infohashOf(a, seedFiles.byHash);
      expect(parse(DownloadViewSchema, await api.post('/api/downloads', { json: { target: h1.toUpperCase() } }), 202).infohash).to.equal(h1);
      const h2 = infohashOf(a, seedFiles.byMagnet);
      const magnet = `magnet:?xt=urn:btih:${h2}&dn=${seedFiles.byMagnet}&x.pe=127.0.0.1:${a.port}`;
      expect(parse(DownloadViewSchema, await api.post('/api/downloads', { json: { target: magnet } }), 202).infohash).to.equal(h2);
      await finished(h1);
      await finished(h2);
      await sameBytes(seedFiles.byHash, a);
      await sameBytes(seedFiles.byMagnet, a);
    });

    it('POST /api/downloads of an unknown infohash or name is a 404 within seconds', async function () {
      const t0 = Date.now();
      expectError(await api.post('/api/downloads', { json: { target: 'f'.repeat(40) } }), 404, /2 known peers/);
      expectError(await api.post('/api/downloads', { json: { target: 'nobody-has-this.iso' } }), 404, /no known peer shares/);
      expect(Date.now() - t0).to.be.below(8000);
    });

    it('POST /api/downloads: bad targets, malformed JSON, wrong content type, oversized body', async function () {
      expectError(await api.post('/api/downloads', { json: { target: '' } }), 400, /target/);
      expectError(await api.post('/api/downloads', { json: { nope: 1 } }), 400, /target/);
      expectError(await api.post('/api/downloads', { json: { target: 'magnet:?xt=urn:btih:xyz' } }), 400, /magnet/);
      expectError(await api.post('/api/downloads', { body: '{"target": ', headers: { 'Content-Type': 'application/json' } }), 400, /JSON/);
      expectError(await api.post('/api/downloads', { body: '"just a string"', headers: { 'Content-Type': 'application/json' } }), 400, /JSON/);
      expectError(await api.post('/api/downloads', { body: `target=${seedFiles.movie}`, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 415);
      expectError(await api.post('/api/downloads', { body: '{"target":"x"}', headers: { 'Content-Type': 'text/plain' } }), 415);
      expectError(await api.post('/api/downloads'), 415, /JSON/);
      expectError(await api.post('/api/downloads', { json: { target: 'x'.repeat(70 * KiB) } }), 413);
      // A .torrent-looking target is a name to search for, never a file of the server's disk.
      expectError(await api.post('/api/downloads', { json: { target: '/etc/passwd.torrent' } }), 404);
      expect((await api.get('/api/status')).status).to.equal(200);
    });

    it('GET /api/downloads/:infohash: 404 for none, 400 for a bad infohash', async function () {
      expectError(await api.get(`/api/downloads/${'1'.repeat(40)}`), 404);
      expectError(await api.get('/api/downloads/xyz'), 400, /infohash/);
    });

    it('pause, resume and cancel a download in progress', async function () {
      const h = infohashOf(c, slow.one);
      const started = parse(DownloadViewSchema, await api.post('/api/downloads', { json: { target: h } }), 202);
      expect(started.state).to.equal('downloading');
      await waitFor(async () => parse(DownloadDetailSchema, await api.get(`/api/downloads/${h}`)).verified > 0, 15_000, 'a first piece');

      const paused = parse(DownloadViewSchema, await api.post(`/api/downloads/${h}/pause`));
      expect(paused.state).to.equal('paused');
      expect(paused.eta).to.equal(null);
      expect(parse(DownloadViewSchema, await api.post(`/api/downloads/${h}/pause`)).state).to.equal('paused'); // idempotent
      const resumed = parse(DownloadViewSchema, await api.post(`/api/downloads/${h}/resume`));
      expect(resumed.state).to.equal('downloading');
      expect(parse(DownloadViewSchema, await api.post(`/api/downloads/${h}/resume`)).state).to.equal('downloading');

      const detail = parse(DownloadDetailSchema, await api.get(`/api/downloads/${h}`));
      expect(detail.progress).to.be.above(0).and.below(1);
      expect(Buffer.from(detail.pieceMap, 'base64').length).to.equal(Math.ceil(detail.pieces / 8));

      const cancelled = await api.del(`/api/downloads/${h}`);
      expect(cancelled.status).to.equal(204);
      expect((await downloads()).some((d) => d.infohash === h)).to.equal(false);
      expectError(await api.get(`/api/downloads/${h}`), 404);
      expectError(await api.del(`/api/downloads/${h}`), 404);
      expectError(await api.post(`/api/downloads/${h}/pause`), 404);
      const done = infohashOf(a, seedFiles.movie);
      expectError(await api.del(`/api/downloads/${done}`), 400, /done.*data=keep/); // finished: keep or delete its file? (web-transfers-api.test.ts)
      expectError(await api.post(`/api/downloads/${done}/pause`), 409, /done/);
      expectError(await api.post(`/api/downloads/${done}/resume`), 409, /done/);
    });

    it('content of a download in progress gives verified bytes only', async function () {
      const h = infohashOf(c, slow.two);
      const original = readFileSync(path.join(c.sharedDir, slow.two));
      parse(DownloadViewSchema, await api.post('/api/downloads', { json: { target: h } }), 202);
      try {
        // Asking for the start is what a <video> does (`bytes=0-`): piece 0 is fetched first
        // (the streaming window), and served once verified; 503 only if it is late (then retry).
        // Without Range the whole file would come (web-content.test.ts).
        const getStart = () => api.get(`/api/files/${h}/content`, { headers: { Range: 'bytes=0-' } });
        let res = await getStart();
        for (let i = 0; i < 5 && res.status === 503; i++) res = await getStart();
        expect(res.status).to.equal(206); // less than the whole file is there
        const m = /^bytes 0-(\d+)\/(\d+)$/.exec(String(res.headers['content-range']));
        expect(m, String(res.headers['content-range'])).to.not.equal(null);
        const end = Number(m![1]);
        expect(Number(m![2])).to.equal(SLOW_SIZE);
        expect(end).to.be.below(SLOW_SIZE - 1);
        expect((end + 1) % (32 * KiB)).to.equal(0); // ends where a verified piece ends
        expect(res.body.equals(original.subarray(0, end + 1))).to.equal(true);

        // A range far ahead: that piece is fetched first, then served (503 only if it is late: retry).
        const start = SLOW_SIZE - 40 * KiB;
        const getAhead = () => api.get(`/api/files/${h}/content`, { headers: { Range: `bytes=${start}-` } });
        let ahead = await getAhead();
        for (let i = 0; i < 5 && ahead.status === 503; i++) ahead = await getAhead();
        expect(ahead.status).to.equal(206);
        const r = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(ahead.headers['content-range']))!;
        expect(Number(r[1])).to.equal(start);
        expect(ahead.body.equals(original.subarray(start, Number(r[2]) + 1))).to.equal(true);
        const list = parse(DownloadsResponseSchema, await api.get('/api/downloads')).downloads;
        const d = list.find((x: DownloadView) => x.infohash === h)!;
        expect(d.state).to.equal('downloading');
        expect(d.progress).to.be.above(0).and.below(1);

        // Paused, a piece that is not there cannot come: 503 at once, with Retry-After.
        parse(DownloadViewSchema, await api.post(`/api/downloads/${h}/pause`));
        const have = Buffer.from(parse(DownloadDetailSchema, await api.get(`/api/downloads/${h}`)).pieceMap, 'base64');
        const missing = Array.from({ length: SLOW_SIZE / (32 * KiB) }, (_, i) => i).find((i) => (have[i >> 3]! & (0x80 >> (i & 7))) === 0)!;
        const unavailable = await api.get(`/api/files/${h}/content`, { headers: { Range: `bytes=${missing * 32 * KiB}-` } });
        expectError(unavailable, 503);
        expect(unavailable.headers['retry-after']).to.equal('2');
      } finally {
        await api.del(`/api/downloads/${h}`);
      }
    });
  });

  describe('live events (socket.io)', function () {
    it('status at once and every second; peer-up/down, file-added, download (throttled) and download-removed', async function () {
      const live = await liveClient(web.url);
      try {
        expect(live.connect).to.match(/^40/);
        StatusSchema.parse(await live.waitEvent('status'));
        const t0 = Date.now();

        parse(PeerViewSchema, await api.post('/api/peers', { json: { host: '127.0.0.5', port: 6000 } }), 201);
        PeerViewSchema.parse(await live.waitEvent('peer-up', (p) => (p as PeerView).port === 6000));
        b.removePeer('127.0.0.5', 6000);
        PeerViewSchema.parse(await live.waitEvent('peer-down', (p) => (p as PeerView).port === 6000));

        const f = parse(FileViewSchema, await api.put('/api/files?name=live.txt', { body: 'live\n' }), 201);
        expect(FileViewSchema.parse(await live.waitEvent('file-added', (x) => (x as FileView).name === 'live.txt')).infohash).to.equal(f.infohash);

        const h = c.files().find((x) => x.name === slow.one)!.metainfo.infoHashHex;
        const started = Date.now();
        parse(DownloadViewSchema, await api.post('/api/downloads', { json: { target: h } }), 202);
        const mine = (state?: string) => (d: unknown) => (d as DownloadView).infohash === h && (!state || (d as DownloadView).state === state);
        DownloadViewSchema.parse(await live.waitEvent('download', mine('downloading')));
        await new Promise((r) => setTimeout(r, 2500));
        parse(DownloadViewSchema, await api.post(`/api/downloads/${h}/pause`));
        await live.waitEvent('download', mine('paused'), 3000);
        const elapsed = (Date.now() - started) / 1000;
        const count = live.events.filter(([n, d]) => n === 'download' && mine()(d)).length;
        expect(count, `${count} download events in ${elapsed.toFixed(1)} s`).to.be.at.most(Math.ceil(4 * elapsed) + 3);
        expect((await api.del(`/api/downloads/${h}`)).status).to.equal(204);
        expect(await live.waitEvent('download-removed', (d) => (d as { infohash: string }).infohash === h)).to.deep.equal({ infohash: h });

        // One a second; at least half of them here, as a loaded machine may run late.
        const statuses = live.events.filter(([n]) => n === 'status').length;
        expect(statuses).to.be.at.least(Math.floor((Date.now() - t0) / 2000));
        for (const [n, payload] of live.events) if (n === 'status') StatusSchema.parse(payload);
      } finally {
        await live.close();
      }
    });
    it('a peer added by hand is one row: when its node id becomes known, its address key goes (peer-down) and its id key comes (peer-up)', async function () {
      const d = await startNode(path.join(dir, 'd'));
      const live = await liveClient(web.url);
      try {
        await live.waitEvent('status');
        const byAddr = `addr:127.0.0.1:${d.port}`;
        const added = parse(PeerViewSchema, await api.post('/api/peers', { json: { host: '127.0.0.1', port: d.port } }), 201);
        expect(added.key).to.equal(byAddr);
        // b asks d for its peers at once and learns its id from the answer.
        const down = PeerViewSchema.parse(await live.waitEvent('peer-down', (p) => (p as PeerView).key === byAddr));
        expect(down.port).to.equal(d.port);
        const up = PeerViewSchema.parse(await live.waitEvent('peer-up', (p) => (p as PeerView).key === `id:${d.id}`));
        expect(up).to.include({ host: '127.0.0.1', port: d.port, id: d.id });
        const listed = parse(PeersResponseSchema, await api.get('/api/peers')).peers.filter((p) => p.port === d.port);
        expect(listed.map((p) => p.key)).to.deep.equal([`id:${d.id}`]);
      } finally {
        await live.close();
        b.removePeer('127.0.0.1', d.port);
        await d.stop();
      }
    });
  });

  describe('routes, documents and pages', function () {
    it('unknown routes are a JSON 404; so are wrong methods', async function () {
      expectError(await api.get('/api/nope'), 404, /no route GET \/api\/nope/);
      expectError(await api.call('PATCH', '/api/downloads'), 404);
      expectError(await api.get('/no/such/page', { headers: { Accept: 'application/json' } }), 404);
      const page = await api.get('/no/such/page', { headers: { Accept: 'text/html' } });
      expect(page.status).to.equal(404);
      expect(page.headers['content-type']).to.match(/^text\/html/);
    });

    it('GET /api/openapi.json is an OpenAPI 3.1 document of every route, built from the contract', async function () {
      const res = await api.get('/api/openapi.json');
      expect(res.status).to.equal(200);
      const doc = res.json<{ openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, { properties?: Record<string, unknown> }> } }>();
      expect(doc.openapi).to.match(/^3\.1\.\d+$/);
      const routes: Array<[string, string]> = [
        ['/api/status', 'get'], ['/api/peers', 'get'], ['/api/peers', 'post'], ['/api/files', 'get'], ['/api/files', 'put'],
        ['/api/files/{infohash}/torrent', 'get'], ['/api/files/{infohash}/content', 'get'], ['/api/search', 'get'],
        ['/api/downloads', 'get'], ['/api/downloads', 'post'], ['/api/downloads/{infohash}', 'get'], ['/api/downloads/{infohash}', 'delete'],
        ['/api/downloads/{infohash}/pause', 'post'], ['/api/downloads/{infohash}/resume', 'post'], ['/api/seeding', 'get'],
      ];
      for (const [p, m] of routes) expect(doc.paths[p]?.[m], `${m.toUpperCase()} ${p}`).to.be.an('object');
      for (const name of ['Status', 'PeerView', 'FileView', 'DownloadView', 'DownloadDetail', 'SearchResponse', 'ErrorResponse', 'StartDownloadBody'])
        expect(doc.components.schemas[name], name).to.be.an('object');
      expect(Object.keys(doc.components.schemas.DownloadView!.properties!)).to.include.members(Object.keys(DownloadViewSchema.shape));
      const text = res.text;
      expect(text).to.include('"$ref":"#/components/schemas/DownloadView"');
      expect(text).to.include('"$ref":"#/components/schemas/ErrorResponse"');
      const post = doc.paths['/api/downloads']!.post as { requestBody: unknown; responses: Record<string, unknown> };
      expect(JSON.stringify(post.requestBody)).to.include('StartDownloadBody');
      expect(Object.keys(post.responses)).to.include.members(['202', '400', '404', '415']);
      const search = doc.paths['/api/search']!.get as { parameters: Array<{ name: string; in: string; required: boolean }> };
      expect(search.parameters.find((x) => x.name === 'q')).to.include({ in: 'query', required: true });
    });

    it('GET /api/docs serves swagger-ui from this server, pointed at openapi.json', async function () {
      const res = await api.get('/api/docs');
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.match(/^text\/html/);
      expect(res.text).to.include('/api/docs/assets/swagger-ui-bundle.js');
      expect(res.text).to.not.match(/https?:\/\//); // nothing from a CDN
      const init = await api.get('/api/docs/assets/init.js');
      expect(init.text).to.include('/api/openapi.json');
      const bundle = await api.head('/api/docs/assets/swagger-ui-bundle.js');
      expect(bundle.status).to.equal(200);
      expect(bundle.headers['content-type']).to.match(/javascript/);
      expectError(await api.get('/api/docs/assets/index.html'), 404);
    });

    it('the search page with an over-long query renders the form with its first 256 characters, and no results', async function () {
      const res = await api.get(`/search?q=${'w'.repeat(300)}`, { headers: { Accept: 'text/html' } });
      expect(res.status).to.equal(200);
      expect(res.text).to.include('w'.repeat(256));
      expect(res.text).to.not.include('w'.repeat(257));
      expect(res.text).to.match(/id="results-card" hidden/);
    });

    it('the pages render with the node in them', async function () {
      for (const [p, needle] of [['/', b.name], ['/peers', String(a.port)], ['/files', 'clip.mp4'], ['/transfers', seedFiles.movie], ['/search?q=movie', seedFiles.movie], ['/search', 'Search']]) {
        const res = await api.get(p!, { headers: { Accept: 'text/html' } });
        expect(res.status, p).to.equal(200);
        expect(res.headers['content-type'], p).to.match(/^text\/html/);
        expect(res.text, p).to.include(needle);
        expect(res.headers['content-security-policy'], p).to.include("script-src 'self'");
      }
    });
  });
});
