/**
 * Resource exhaustion against a live node, each checked by an honest download during the
 * attack: a flood of idle, half-open and slow connections from several addresses. (The
 * attack runner `npm run bench:attack` does the same at larger scale, against node processes,
 * and measures memory.)
 */
import { expect } from 'chai';
import net from 'node:net';
import path from 'node:path';
import { encodeHandshake } from '../../network/wire/peer-wire.js';
import { PEER_WARNINGS_PER_MINUTE } from '../../network/peer-server.js';
import { captureLog, nodesPerTest, startSharing, sha1File } from '../helpers.js';

describe('resource exhaustion', function () {
  this.timeout(90_000);
  const fx = nodesPerTest();

  it('1000 idle, half-open and slow connections from 8 addresses: an honest node still searches and downloads, the log stays short', async function () {
    const log = captureLog('warn');
    // Long timers: nothing but the slot sharing can free a slot during the test.
    const seed = await startSharing(fx.dir, fx.nodes, 'seed', { 'film.bin': 4 * 1024 * 1024 }, {
      logger: log.logger,
      timeouts: { handshakeMs: 60_000, idleMs: 60_000 },
      controlIdleMs: 60_000,
      controlLineDeadlineMs: 60_000,
    });
    const m = seed.files().find((f) => f.name === 'film.bin')!.metainfo;
    const attackers: net.Socket[] = [];
    const open = (from: string, kind: number) =>
      new Promise<void>((resolve) => {
        const s = net.connect({ port: seed.port, host: '127.0.0.1', localAddress: from });
        attackers.push(s);
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.on('connect', () => {
          if (kind === 1) s.write(encodeHandshake(m.infoHash, Buffer.alloc(20)).subarray(0, 30)); // a handshake that never ends
          if (kind === 2) s.write('{"type":"sea'); // a control line that never ends
          resolve();
        });
      });
    try {
      for (let a = 0; a < 8; a++) {
        const from = `127.0.0.${20 + a}`;
        await Promise.all(Array.from({ length: 125 }, (_, i) => open(from, i % 3)));
      }
      const held = attackers.filter((s) => !s.destroyed).length;
      expect(held, 'the flood holds every slot').to.be.at.least(200);
      const leech = await startSharing(fx.dir, fx.nodes, 'leech', {}, { peers: [{ host: '127.0.0.1', port: seed.port }] });
      const hits = await leech.search('film');
      expect(hits.map((h) => h.infohash)).to.deep.equal([m.infoHashHex]);
      const final = await leech.whenDone(await leech.download(m.infoHashHex));
      expect(await sha1File(final)).to.equal(await sha1File(path.join(seed.sharedDir, 'film.bin')));
      expect(log.records.length, 'warnings about the flood are rate-limited').to.be.at.most(PEER_WARNINGS_PER_MINUTE + 2);
    } finally {
      for (const s of attackers) s.destroy();
    }
  });
});
