/**
 * Fuzzing, bounded for the suite: every decoder of network input (test/fuzz/targets.ts) for a
 * couple of seconds each, then a live node's port fed fuzzed sessions while another node
 * downloads from it. `npm run fuzz -- --seconds N` runs the decoders for as long as you like.
 */
import { expect } from 'chai';
import net from 'node:net';
import path from 'node:path';
import fc from 'fast-check';
import { TARGETS, fuzz, inputs, type FuzzTarget } from '../fuzz/targets.js';
import { encodeHandshake, encodeRequest, encodeBitfield, INTERESTED } from '../../network/wire/peer-wire.js';
import { reservedBytes } from '../../network/wire/extension.js';
import { captureLog, nodesPerTest, startSharing, sha1File } from '../helpers.js';

const PER_DECODER_MS = 1500;

describe('fuzzing', function () {
  this.timeout(60_000);

  describe(`each decoder, ${PER_DECODER_MS} ms of random and mutated input: only its own error class, no hang, bounded buffers`, function () {
    for (const t of TARGETS) {
      it(t.name, function () {
        const runs = fuzz(t, PER_DECODER_MS);
        // Even a loaded machine gets through far more than this; fewer means the decoder is pathologically slow.
        expect(runs, 'executions').to.be.above(200);
      });
    }

    it('the harness catches a decoder that throws the wrong class (so a pass above means something)', function () {
      const broken: FuzzTarget = {
        name: 'broken',
        seeds: [Buffer.from('abc')],
        expected: [RangeError],
        run: (input) => {
          if (input.length > 3) throw new TypeError(`cannot read ${input.length}`);
        },
      };
      expect(() => fuzz(broken, 1000)).to.throw(/^broken: TypeError: cannot read \d+\n.*Counterexample/s);
    });
  });

  describe('a live node fed fuzzed sessions', function () {
    const fx = nodesPerTest();

    it('keeps serving: every session closed cleanly, then an honest download completes', async function () {
      const log = captureLog('warn');
      const seed = await startSharing(fx.dir, fx.nodes, 'seed', { 'data.bin': 3 * 1024 * 1024 }, { logger: log.logger, pieceLength: 256 * 1024 });
      const shared = seed.files().find((f) => f.name === 'data.bin')!;
      const m = shared.metainfo;
      const errors: Error[] = [];
      seed.on('error', (e: Error) => errors.push(e));
      // Sessions that get past the first checks: a real handshake for a shared torrent, then fuzz.
      const bt: FuzzTarget = {
        name: 'session',
        seeds: [
          Buffer.concat([encodeHandshake(m.infoHash, Buffer.from('-FZ0001-aaaaaaaaaaaa'), reservedBytes()), encodeBitfield(Buffer.alloc(2)), INTERESTED, encodeRequest(0, 0, 16384)]),
          Buffer.from('{"type":"list"}\n{"type":"search","filename":"data"}\n{"type":"metainfo","infohash":"' + m.infoHashHex + '"}\n'),
        ],
        expected: [],
        run: () => {},
      };
      const sessions = fc.sample(inputs(bt), { numRuns: 400, seed: 42 });
      let closedByNode = 0;
      const send = (bytes: Buffer) =>
        new Promise<void>((resolve) => {
          const s = net.connect(seed.port, '127.0.0.1');
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.on('end', () => closedByNode++);
          s.on('connect', () => s.write(bytes));
          setTimeout(() => s.destroy(), 150).unref();
        });
      for (let i = 0; i < sessions.length; i += 8) await Promise.all(sessions.slice(i, i + 8).map(send));
      expect(closedByNode, 'sessions the node itself ended').to.be.above(0);
      const leech = await startSharing(fx.dir, fx.nodes, 'leech', {}, { peers: [{ host: '127.0.0.1', port: seed.port }] });
      const infohash = await leech.download(m.infoHashHex);
      const final = await leech.whenDone(infohash);
      expect(await sha1File(final)).to.equal(await sha1File(path.join(seed.sharedDir, 'data.bin')));
      expect(errors, 'no error escaped to the node').to.deep.equal([]);
      expect(log.records.length, 'warnings stay bounded (rate-limited)').to.be.below(200);
    });
  });
});
