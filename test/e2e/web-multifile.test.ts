/**
 * Choosing the files of a multi-file download from the dashboard, over real HTTP and in a
 * real browser (Debian's chromium driven by playwright-core), against real nodes on
 * loopback: `PATCH /api/downloads/:infohash` with the wanted files (documented in the OpenAPI
 * document), and the checkboxes in the transfer's detail that send it. The seed sends
 * slowly, so the download is still running while its files are chosen.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Node } from '../../network/index.js';
import { WebServer } from '../../web/server.js';
import { DownloadDetailSchema, ErrorResponseSchema } from '../../web/contract.js';
import { launchBrowser, type BrowserRun } from '../browser.js';
import { nodesPerTest, startNode, waitFor } from '../helpers.js';
import { client } from '../web-http.js';
import { expectSameTree, writeTree } from '../tree.js';

const KiB = 1024;
const spec = { 'disc1/a.flac': 900 * KiB, 'disc1/b.flac': 700 * KiB, 'disc2/c.flac': 800 * KiB, 'cover.jpg': 3000, 'notes.txt': 0 };

describe('dashboard: choosing the files of a multi-file download', function () {
  this.timeout(120_000);
  const fx = nodesPerTest();
  let web: WebServer | null = null;
  let run: BrowserRun | null = null;
  afterEach(async () => {
    await run?.close();
    run = null;
    await web?.stop();
    web = null;
  });

  /** A slow seed of the folder `Album`, a leech with its dashboard, and the download started (paused when asked). */
  async function setup(): Promise<{ leech: Node; h: string; original: string; api: ReturnType<typeof client> }> {
    const original = path.join(fx.dir, 'seed', 'Album');
    await writeTree(original, spec);
    const seed = await startNode(path.join(fx.dir, 'seed'), { pieceLength: 32 * KiB, maxUploadRate: 200 * KiB, shareFoldersAsTorrents: [original] });
    fx.nodes.push(seed);
    const h = seed.files().find((f) => f.metainfo.multiFile)!.metainfo.infoHashHex;
    const leech = await startNode(path.join(fx.dir, 'leech'), { peers: [{ host: '127.0.0.1', port: seed.port }] });
    fx.nodes.push(leech);
    web = new WebServer({ node: leech, port: 0 });
    await web.start();
    const api = client(web.url);
    expect((await api.post('/api/downloads', { json: { target: h } })).status).to.equal(202);
    return { leech, h, original, api };
  }

  it('PATCH /api/downloads/:infohash chooses the files; bad choices are refused; the folder holds the chosen ones', async function () {
    const { leech, h, original, api } = await setup();
    const detail = DownloadDetailSchema.parse((await api.get(`/api/downloads/${h}`)).json());
    expect(detail.multiFile).to.equal(true);
    expect(detail.fileList.map((f) => f.path)).to.deep.equal(['cover.jpg', 'disc1/a.flac', 'disc1/b.flac', 'disc2/c.flac', 'notes.txt']);
    expect(detail.fileList[0]!.contentUrl).to.equal(`/api/files/${h}/content?file=0`);
    const pick = (name: string) => detail.fileList.find((f) => f.path === name)!.index;
    const bad = async (body: unknown, status: number, re: RegExp) => {
      const res = await api.patch(`/api/downloads/${h}`, { json: body });
      expect(res.status, res.text).to.equal(status);
      expect(ErrorResponseSchema.parse(res.json()).error).to.match(re);
    };
    await bad({ files: [99] }, 400, /has no file 99/);
    await bad({ files: [] }, 400, /files/);
    await bad({ files: 'all' }, 400, /files/);
    await bad({ files: [0], extra: 1 }, 400, /extra/);
    const res = await api.patch(`/api/downloads/${h}`, { json: { files: [pick('disc1/a.flac'), pick('cover.jpg')] } });
    expect(res.status, res.text).to.equal(200);
    const after = DownloadDetailSchema.parse(res.json());
    expect(after.selectedFiles).to.equal(2);
    expect(after.fileList.filter((f) => f.selected).map((f) => f.path)).to.deep.equal(['cover.jpg', 'disc1/a.flac']);
    const final = await leech.whenDone(h);
    await expectSameTree(final, original, ['cover.jpg', 'disc1/a.flac']);
    await bad({ files: null }, 409, /done/);
    const doc = (await api.get('/api/openapi.json')).json<{ paths: Record<string, Record<string, unknown>> }>();
    expect(doc.paths['/api/downloads/{infohash}']).to.have.property('patch');
    expect(JSON.stringify(doc.paths['/api/files/{infohash}/content'])).to.include('"name":"file"');
  });

  it('the checkboxes in the transfer detail choose the files while it downloads', async function () {
    run = await launchBrowser();
    if (!run) return this.skip();
    const { leech, h, original } = await setup();
    const page = run.page;
    await page.goto(`${web!.url}/transfers`);
    const row = page.locator(`#transfers tr.xfer[data-infohash="${h}"]`);
    await row.locator('.files-count', { hasText: '5 files' }).waitFor({ timeout: 10_000 });
    await row.locator('button.toggle').click();
    const boxes = page.locator(`tr.detail[data-infohash="${h}"] input.file-pick`);
    await waitFor(async () => (await boxes.count()) === 5, 10_000, 'five checkboxes');
    // Leave out both of disc1 and the notes.
    for (const name of ['disc1/a.flac', 'disc1/b.flac', 'notes.txt']) await page.getByLabel(`Download ${name}`).uncheck();
    await row.locator('.files-count', { hasText: '2 of 5 files' }).waitFor({ timeout: 10_000 });
    await run.shot('transfers-multifile-choose');
    await waitFor(() => leech.downloadDetail(h)?.selectedFiles === 2, 10_000, 'the node to take the choice');
    const final = await leech.whenDone(h);
    await expectSameTree(final, original, ['cover.jpg', 'disc2/c.flac']);
    await page.locator(`tr.detail[data-infohash="${h}"] input.file-pick:disabled`).first().waitFor({ timeout: 10_000 });
    expect(run.problems).to.deep.equal([]);
    expect(await fsp.readdir(leech.downloadDir)).to.include('Album');
  });
});
