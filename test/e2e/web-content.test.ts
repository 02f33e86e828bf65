/**
 * A whole file over the dashboard while it still downloads, as curl and a browser's "save as"
 * ask for it (no Range): the answer is the whole file, streamed as its pieces arrive, or, when
 * a piece stops coming, a cut connection: never a short body that looks complete. Real nodes
 * on loopback (a seed with a limited upload rate so the download takes seconds), real HTTP,
 * and curl itself when it is installed.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { expect } from 'chai';
import type { Node } from '../../network/index.js';
import { WebServer } from '../../web/server.js';
import { captureLog, randomFile, startNode, waitFor, nodesPerTest } from '../helpers.js';
import { call } from '../web-http.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CURL = '/usr/bin/curl';

interface Whole {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Set when the body ended before Content-Length (the server cut the connection). */
  error: string | null;
  /** The download's verified pieces when the answer's headers arrived. */
  verifiedAtHeaders: number;
}

/** GET without Range, keeping every byte that came and how the body ended. */
function getWhole(url: string, leech: Node, h: string, onData: (received: number) => void = () => {}): Promise<Whole> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const verifiedAtHeaders = leech.downloadDetail(h)?.verified ?? -1;
      const chunks: Buffer[] = [];
      let received = 0;
      let error: string | null = null;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        received += c.length;
        onData(received);
      });
      res.on('aborted', () => (error ??= 'aborted'));
      res.on('error', (err) => (error ??= err.message));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error, verifiedAtHeaders }));
    });
    req.on('error', reject);
  });
}

/** `curl -sS -o FILE URL`: its exit status (18: the transfer closed with bytes missing). */
function curl(url: string, out: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(CURL, ['-sS', '-o', out, url], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('exit', (code) => resolve(code ?? -1));
  });
}

describe('GET content without Range while the file downloads', function () {
  this.timeout(90_000);
  const fx = nodesPerTest();
  const webs: WebServer[] = [];
  afterEach(async () => {
    await Promise.all(webs.splice(0).map((w) => w.stop()));
  });

  const SIZE = 2 * MiB;
  const PIECE = 32 * KiB;

  /** A seed sending at `rate`, a leech that knows it, and the leech's dashboard. */
  async function setup(rate: number, contentWaitMs: number) {
    const original = path.join(fx.dir, 'seed', 'shared', 'film.bin');
    await randomFile(original, SIZE);
    const seed = await startNode(path.join(fx.dir, 'seed'), { maxUploadRate: rate, pieceLength: PIECE });
    fx.nodes.push(seed);
    const leech = await startNode(path.join(fx.dir, 'leech'), { peers: [{ host: '127.0.0.1', port: seed.port }] });
    fx.nodes.push(leech);
    const log = captureLog('warn');
    const web = new WebServer({ node: leech, port: 0, contentWaitMs, logger: log.logger });
    webs.push(web);
    await web.start();
    const h = seed.files()[0]!.metainfo.infoHashHex;
    return { original, seed, leech, web, h, log, url: `${web.url}/api/files/${h}/content` };
  }

  it('answers 200 with the whole file, streamed as its pieces arrive (curl saves it whole)', async function () {
    const { original, leech, web, h, url } = await setup(512 * KiB, 10_000);
    await call(web.url, 'POST', '/api/downloads', { json: { target: h } });
    const pieces = SIZE / PIECE;
    const curled = path.join(fx.dir, 'curled.bin');
    const [whole, curlStatus] = await Promise.all([getWhole(url, leech, h), existsSync(CURL) ? curl(url, curled) : Promise.resolve(null)]);
    expect(whole.verifiedAtHeaders, 'the answer started before the download was over').to.be.at.least(0).and.below(pieces);
    expect(whole.status).to.equal(200);
    expect(whole.headers['content-range']).to.equal(undefined);
    expect(whole.headers['content-length']).to.equal(String(SIZE));
    expect(whole.error).to.equal(null);
    expect(whole.body.equals(await fsp.readFile(original)), 'every byte, in order').to.equal(true);
    if (curlStatus === null) console.log(`      (no curl at ${CURL}: checked with node:http only)`);
    else {
      expect(curlStatus, 'curl exit status').to.equal(0);
      expect((await fsp.readFile(curled)).equals(await fsp.readFile(original))).to.equal(true);
    }
  });

  it('cuts the connection when a piece stops coming, so the body is visibly incomplete (curl exits 18)', async function () {
    const { seed, leech, web, h, log, url } = await setup(256 * KiB, 3000);
    await call(web.url, 'POST', '/api/downloads', { json: { target: h } });
    let stopped: Promise<void> | null = null;
    // Once some of the body came, the only source goes away: the rest cannot come.
    const stopSeed = (received: number) => {
      if (received >= 96 * KiB) stopped ??= seed.stop();
    };
    const curled = path.join(fx.dir, 'curled.bin');
    const [cut, curlStatus] = await Promise.all([getWhole(url, leech, h, stopSeed), existsSync(CURL) ? curl(url, curled) : Promise.resolve(null)]);
    await stopped;
    expect(cut.status).to.equal(200);
    expect(cut.headers['content-length']).to.equal(String(SIZE));
    expect(cut.error, 'the body ended with an error, not quietly').to.not.equal(null);
    expect(cut.body.length).to.be.at.least(96 * KiB).and.below(SIZE);
    expect(leech.listDownloads()[0]!.verified).to.be.below(SIZE / PIECE);
    if (curlStatus !== null) {
      expect(curlStatus, 'curl: transfer closed with outstanding read data remaining').to.equal(18);
      expect((await fsp.stat(curled)).size).to.be.below(SIZE);
    }
    await waitFor(() => log.warnings().includes('content: a piece did not come in time: answer cut short'), 5000, 'the warning');

    // Paused with pieces missing, the whole file cannot come: 503 at once, before any byte.
    expect(await leech.pause(h)).to.equal(true);
    const paused = await call(web.url, 'GET', `/api/files/${h}/content`);
    expect(paused.status).to.equal(503);
    expect(paused.headers['retry-after']).to.equal('2');
    expect(paused.json<{ error: string }>().error).to.match(/paused/);
  });
});
