/**
 * The transfer routes a user of qBittorrent or Transmission looks for first, over real HTTP
 * against real nodes on loopback: start a download from a .torrent file's bytes
 * (`POST /api/downloads` as application/x-bittorrent), take a finished one off the list
 * keeping or deleting its file (`DELETE /api/downloads/:infohash?data=keep|delete`), and see
 * what the node uploads, to whom, with its share ratio (`GET /api/seeding`).
 *
 * A is the node under test (with its dashboard) and shares `shared.bin` at a limited upload
 * rate; B shares the files A downloads; C downloads from A, so A has something to seed.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { z } from 'zod';
import { MetainfoError, type Node } from '../../network/index.js';
import { WebServer } from '../../web/server.js';
import { DownloadViewSchema, DownloadsResponseSchema, ErrorResponseSchema, SeedingResponseSchema } from '../../web/contract.js';
import { cleanup, randomFile, rejection, sha1File, startNode, tempDir, waitFor } from '../helpers.js';
import { client, type Answer } from '../web-http.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const TORRENT = { 'Content-Type': 'application/x-bittorrent' };

function expectError(res: Answer, status: number, match?: RegExp): string {
  expect(res.status, res.text.slice(0, 300)).to.equal(status);
  const { error } = ErrorResponseSchema.parse(res.json());
  if (match) expect(error).to.match(match);
  return error;
}
const parse = <S extends z.ZodType>(schema: S, res: Answer, status = 200): z.output<S> => {
  expect(res.status, res.text.slice(0, 300)).to.equal(status);
  return schema.parse(res.json());
};

describe('web API: .torrent uploads, removing finished downloads, seeding', function () {
  this.timeout(60_000);
  let dir = '';
  let a: Node;
  let b: Node;
  let c: Node | undefined;
  let web: WebServer;
  let api: ReturnType<typeof client>;
  const hashOf = (n: Node, name: string) => n.files().find((f) => f.name === name)!.metainfo.infoHashHex;
  const downloads = async () => parse(DownloadsResponseSchema, await api.get('/api/downloads')).downloads;
  const finished = (h: string) => waitFor(async () => (await downloads()).find((d) => d.infohash === h && d.state === 'done'), 30_000, `download ${h} to finish`);

  before(async function () {
    dir = await tempDir('shoal-web-transfers-');
    await randomFile(path.join(dir, 'a', 'shared', 'shared.bin'), 1 * MiB);
    for (const f of ['one.bin', 'two.bin']) await randomFile(path.join(dir, 'b', 'shared', f), 300 * KiB);
    await randomFile(path.join(dir, 'b', 'shared', 'three.bin'), 4 * MiB);
    // B sends at 1 MiB/s: the small files come at once, three.bin takes seconds.
    b = await startNode(path.join(dir, 'b'), { maxUploadRate: 1 * MiB });
    a = await startNode(path.join(dir, 'a'), { peers: [{ host: '127.0.0.1', port: b.port }], maxUploadRate: 256 * KiB });
    web = new WebServer({ node: a, port: 0, resolveTimeoutMs: 8000 });
    await web.start();
    api = client(web.url);
  });

  after(async function () {
    await web?.stop();
    await Promise.all([a, b, c].map((n) => n?.stop()));
    if (dir) await cleanup(dir);
  });

  it('POST /api/downloads with a .torrent body starts it; the file arrives whole', async function () {
    const h = hashOf(b, 'one.bin');
    const res = await api.post('/api/downloads', { body: b.torrentFile(h)!, headers: TORRENT });
    const d = parse(DownloadViewSchema, res, 202);
    expect(d).to.include({ infohash: h, name: 'one.bin' });
    expect(res.headers.location).to.equal(`/api/downloads/${h}`);
    await finished(h);
    expect(await sha1File(path.join(a.downloadDir, 'one.bin'))).to.equal(await sha1File(path.join(b.sharedDir, 'one.bin')));
  });

  it('a bad .torrent is a 422, an empty one a 400, an oversized one a 413; the node goes on', async function () {
    expectError(await api.post('/api/downloads', { body: Buffer.from('this is not bencode'), headers: TORRENT }), 422, /not a torrent/);
    expectError(await api.post('/api/downloads', { body: Buffer.from('d4:infod4:name1:xee'), headers: TORRENT }), 422);
    expectError(await api.post('/api/downloads', { body: Buffer.alloc(0), headers: TORRENT }), 400, /\.torrent/);
    expectError(await api.post('/api/downloads', { body: Buffer.alloc(16 * MiB + 1, 0x64), headers: TORRENT }), 413, /\.torrent larger than/);
    expectError(await api.post('/api/downloads', { body: Buffer.from('d8:announce0:e'), headers: { 'Content-Type': 'application/octet-stream' } }), 415);
    expect((await api.get('/api/status')).status).to.equal(200);
  });

  it('the facade takes .torrent bytes too, and refuses bad ones with MetainfoError', async function () {
    const h = hashOf(b, 'two.bin');
    expect(await a.download(b.torrentFile(h)!)).to.equal(h);
    expect(await rejection(a.download(Buffer.from('garbage')))).to.be.instanceOf(MetainfoError);
    await finished(h);
  });

  it('DELETE of a finished download asks what to do with the file: data=keep keeps it shared, data=delete deletes it and stops sharing it', async function () {
    const one = hashOf(b, 'one.bin');
    const two = hashOf(b, 'two.bin');
    await finished(one);
    await finished(two);
    await waitFor(() => a.file(one) && a.file(two), 10_000, 'both finished files shared');
    expectError(await api.del(`/api/downloads/${one}`), 400, /data=keep.*data=delete/);
    expectError(await api.del(`/api/downloads/${one}?data=maybe`), 400, /data/);
    expect((await downloads()).some((d) => d.infohash === one), 'still listed after a refusal').to.equal(true);

    expect((await api.del(`/api/downloads/${one}?data=keep`)).status).to.equal(204);
    expect((await downloads()).some((d) => d.infohash === one)).to.equal(false);
    expect(await fsp.readdir(a.downloadDir)).to.include('one.bin');
    expect(a.file(one), 'kept: still shared').to.not.equal(undefined);
    expectError(await api.del(`/api/downloads/${one}?data=keep`), 404);

    const file = path.join(a.downloadDir, 'two.bin');
    expect(a.file(two)!.path).to.equal(file);
    expect((await api.del(`/api/downloads/${two}?data=delete`)).status).to.equal(204);
    expect((await downloads()).some((d) => d.infohash === two)).to.equal(false);
    expect(await fsp.readdir(a.downloadDir)).to.not.include('two.bin');
    expect(a.file(two), 'deleted: no longer shared').to.equal(undefined);
    expect(a.torrentFile(two)).to.equal(undefined);
    // Nobody can find it here any more: only B has it now.
    const found = await b.search('two.bin');
    expect(found.flatMap((r) => r.peers.map((p) => p.port))).to.not.include(a.port);
  });

  it('DELETE of a download in progress cancels it; data=keep is refused for it', async function () {
    const h = hashOf(b, 'three.bin');
    parse(DownloadViewSchema, await api.post('/api/downloads', { json: { target: h } }), 202);
    expect(await a.pause(h)).to.equal(true);
    expectError(await api.del(`/api/downloads/${h}?data=keep`), 409, /paused/);
    expect((await api.del(`/api/downloads/${h}?data=delete`)).status).to.equal(204);
    expect((await downloads()).some((d) => d.infohash === h)).to.equal(false);
    expect(await fsp.readdir(a.downloadDir)).to.not.include('three.bin.part');
  });

  it('GET /api/seeding lists what the node uploads, to whom, at what rate, with its share ratio', async function () {
    const h = hashOf(a, 'shared.bin');
    expect(parse(SeedingResponseSchema, await api.get('/api/seeding')).seeding.some((s) => s.infohash === h)).to.equal(false);
    c = await startNode(path.join(dir, 'c'), { peers: [{ host: '127.0.0.1', port: a.port }] });
    await c.download(h);
    // While C downloads (A sends at 256 KiB/s, about four seconds): C is a peer A uploads to.
    const during = await waitFor(async () => {
      const s = parse(SeedingResponseSchema, await api.get('/api/seeding')).seeding.find((x) => x.infohash === h);
      return s && s.peers.length > 0 && s.uploaded > 0 ? s : null;
    }, 15_000, 'a seeding entry with its peer');
    expect(during).to.include({ name: 'shared.bin', size: 1 * MiB, complete: true });
    expect(during.peers[0]!.client).to.match(/^Shoal /);
    expect(during.peers[0]!.address).to.match(/^127\.0\.0\.1:\d+$/);
    expect(during.peers[0]!.interested).to.equal(true);
    await c.whenDone(h);
    const after = await waitFor(async () => {
      const r = parse(SeedingResponseSchema, await api.get('/api/seeding'));
      const s = r.seeding.find((x) => x.infohash === h);
      return s && s.uploaded >= 1 * MiB ? { r, s } : null;
    }, 10_000, 'the whole file sent');
    expect(after.s.ratio).to.be.closeTo(after.s.uploaded / (1 * MiB), 1e-9);
    expect(after.s.ratio).to.be.at.least(1);
    expect(after.r.uploaded).to.be.at.least(after.s.uploaded);
  });

  it('the OpenAPI document describes the .torrent body, the data choice and /api/seeding', async function () {
    const doc = (await api.get('/api/openapi.json')).json<{ paths: Record<string, Record<string, Record<string, unknown>>>; components: { schemas: Record<string, unknown> } }>();
    const post = doc.paths['/api/downloads']!.post!;
    expect(Object.keys((post.requestBody as { content: Record<string, unknown> }).content)).to.have.members(['application/json', 'application/x-bittorrent']);
    expect(Object.keys(post.responses as object)).to.include.members(['202', '413', '422']);
    const del = doc.paths['/api/downloads/{infohash}']!.delete!;
    const data = (del.parameters as Array<{ name: string; in: string; schema: { enum?: string[] } }>).find((p) => p.name === 'data');
    expect(data).to.include({ in: 'query' });
    expect(data!.schema.enum).to.have.members(['keep', 'delete']);
    expect(JSON.stringify(doc.paths['/api/seeding']!.get)).to.include('#/components/schemas/SeedingResponse');
    for (const name of ['SeedingView', 'SeedingPeerView', 'SeedingResponse']) expect(doc.components.schemas[name], name).to.be.an('object');
  });
});
