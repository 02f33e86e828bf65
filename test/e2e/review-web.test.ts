/**
 * The dashboard's limits, each hit at its edge: the JSON body cap, the upload cap, the
 * lengths the contract allows, Range corner cases, the access token's length, and the
 * backlog after which a live client that does not read is cut off.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Node } from '../../network/index.js';
import { WebServer } from '../../web/server.js';
import { MAX_BACKLOG } from '../../web/live.js';
import { ErrorResponseSchema, FileViewSchema, MAX_JSON_BYTES, type FileView } from '../../web/contract.js';
import { parseWebCli, UsageError } from '../../cli/options.js';
import { cleanup, startNode, tempDir, waitFor } from '../helpers.js';
import { call, client, liveClient, type Answer } from '../web-http.js';

function expectError(res: Answer, status: number, match?: RegExp): void {
  expect(res.status, res.text.slice(0, 300)).to.equal(status);
  const { error } = ErrorResponseSchema.parse(res.json());
  if (match) expect(error).to.match(match);
}

/** A JSON body of exactly `bytes` bytes: `{ host: '', port: 1, pad: 'xxx…' }`. */
function paddedBody(bytes: number): string {
  const bare = JSON.stringify({ host: '', port: 1, pad: '' });
  return JSON.stringify({ host: '', port: 1, pad: 'x'.repeat(bytes - bare.length) });
}

describe('web limits (review)', function () {
  this.timeout(60_000);
  let dir = '';
  let node: Node;
  let web: WebServer;
  let api: ReturnType<typeof client>;
  const MAX_UPLOAD = 1000;

  before(async function () {
    dir = await tempDir('shoal-web-limits-');
    node = await startNode(path.join(dir, 'n'));
    web = new WebServer({ node, port: 0, maxUploadBytes: MAX_UPLOAD });
    await web.start();
    api = client(web.url);
  });

  after(async function () {
    await web?.stop();
    await node?.stop();
    if (dir) await cleanup(dir);
  });

  it(`a JSON body of exactly ${MAX_JSON_BYTES} bytes is read; one byte more is a 413`, async function () {
    const atLimit = paddedBody(MAX_JSON_BYTES);
    expect(Buffer.byteLength(atLimit)).to.equal(MAX_JSON_BYTES);
    // Read and checked: the empty host is what is wrong with it, not its size.
    expectError(await api.post('/api/peers', { body: atLimit, headers: { 'Content-Type': 'application/json' } }), 400);
    expectError(await api.post('/api/peers', { body: paddedBody(MAX_JSON_BYTES + 1), headers: { 'Content-Type': 'application/json' } }), 413, /larger/);
  });

  it('maxUploadBytes: an upload of exactly the cap is stored, one byte more is a 413 that writes nothing', async function () {
    const ok = await api.put('/api/files?name=at-cap.bin', { body: Buffer.alloc(MAX_UPLOAD, 7) });
    expect(ok.status, ok.text).to.equal(201);
    expect(FileViewSchema.parse(ok.json()).size).to.equal(MAX_UPLOAD);
    expectError(await api.put('/api/files?name=over-cap.bin', { body: Buffer.alloc(MAX_UPLOAD + 1, 7) }), 413);
    const names = await fsp.readdir(node.sharedDir);
    expect(names).to.include('at-cap.bin');
    expect(names.filter((n) => n.includes('over-cap'))).to.deep.equal([]);
  });

  it('the contract lengths: search query 256, upload name 1024, peer host 255, download target 8192', async function () {
    expect((await api.get(`/api/search?q=${'q'.repeat(256)}`)).status).to.equal(200);
    expectError(await api.get(`/api/search?q=${'q'.repeat(257)}`), 400, /query parameter "q"/);
    expectError(await api.get('/api/search?q=%20%20'), 400, /give a query/);
    expectError(await api.put(`/api/files?name=${'n'.repeat(1025)}`, { body: 'x' }), 400, /query parameter "name"/);
    expectError(await api.post('/api/peers', { json: { host: 'h'.repeat(256), port: 9 } }), 400);
    expectError(await api.post('/api/downloads', { json: { target: 't'.repeat(8193) } }), 400);
  });

  it('the search page with an over-long query renders the form with its first 256 characters, and no results', async function () {
    const res = await api.get(`/search?q=${'w'.repeat(300)}`, { headers: { Accept: 'text/html' } });
    expect(res.status).to.equal(200);
    expect(res.text).to.include('w'.repeat(256));
    expect(res.text).to.not.include('w'.repeat(257));
    expect(res.text).to.match(/id="results-card" hidden/);
  });

  describe('Range corner cases', function () {
    let f: FileView;
    const bytes = Buffer.from('0123456789abcdefghij');
    before(async function () {
      const res = await api.put('/api/files?name=range.txt', { body: bytes });
      expect(res.status, res.text).to.equal(201);
      f = FileViewSchema.parse(res.json());
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
  });

  it('--http-token takes 8 to 256 printable characters, no spaces', function () {
    const token = (t: string) => () => parseWebCli(['--peer-port', '0', '--http-token', t]);
    for (const ok of ['a'.repeat(8), 'b'.repeat(256), '!~#$%&*+']) expect(token(ok)().http.token).to.equal(ok);
    for (const bad of ['a'.repeat(7), 'b'.repeat(257), 'has space1', 'tab\there1', 'é'.repeat(8)]) expect(token(bad), JSON.stringify(bad)).to.throw(UsageError, /--http-token/);
  });

  it(`a live client that stops reading is disconnected once ${MAX_BACKLOG} packets wait for it; one that reads stays`, async function () {
    // The reader: polls all the time, so its backlog never builds up.
    const reader = await liveClient(web.url);
    // The stalled one: connects, reads its first answer, then never polls again.
    const open = await call(web.url, 'GET', '/socket.io/?EIO=4&transport=polling');
    const { sid } = JSON.parse(open.text.slice(1)) as { sid: string };
    const q = `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
    expect((await call(web.url, 'POST', q, { headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, body: '40' })).status).to.equal(200);
    expect((await call(web.url, 'GET', q)).text).to.match(/^40/);
    try {
      // download-removed goes to every client reliably and is never coalesced: one packet each.
      const total = MAX_BACKLOG + 50;
      const removed = () => reader.events.filter(([n]) => n === 'download-removed').length;
      for (let sent = 0; sent < total; ) {
        for (const end = Math.min(total, sent + 50); sent < end; sent++) node.emit('download-removed', sent.toString(16).padStart(40, '0'));
        await waitFor(() => removed() === sent, 10_000, `the reader to get ${sent} events`);
      }
      // What was queued for the stalled client ends with the disconnect; nothing past the cap.
      const backlog = await call(web.url, 'GET', q);
      const packets = backlog.status === 200 ? backlog.text.split('\x1e') : [];
      expect(packets, `${backlog.status} ${backlog.text.slice(-200)}`).to.include('41');
      expect(packets.filter((p) => p.startsWith('42')).length).to.be.at.most(MAX_BACKLOG + 1);
      const after = await call(web.url, 'GET', q);
      expect(after.status === 400 || after.text.split('\x1e').includes('1'), `${after.status} ${after.text.slice(0, 100)}`).to.equal(true);
      // The reader is still connected and still served.
      node.emit('download-removed', 'f'.repeat(40));
      await reader.waitEvent('download-removed', (d) => (d as { infohash: string }).infohash === 'f'.repeat(40));
    } finally {
      await reader.close();
    }
  });
});
