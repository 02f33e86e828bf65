/**
 * Message stream encryption on its own: RC4 against published vectors and OpenSSL's own
 * RC4, the handshake against vectors computed by an independent implementation (Python's
 * pow, hashlib and a Python RC4, for fixed keys), and two sides in memory for every split of
 * the bytes, both crypto methods, the bounds and garbage.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Rc4, MSE_DISCARD } from '../../network/wire/rc4.js';
import {
  MseHandshake, MseError, cryptoFor, modPow, req2Of, sha1, CRYPTO_PLAINTEXT, CRYPTO_RC4, KEY_BYTES, MAX_PAD, type MseResult, type MseStep,
} from '../../network/wire/mse.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const rc4 = (key: Buffer, data: Buffer, discard = 0): Buffer => Buffer.from(new Rc4(key, discard).process(Buffer.from(data)));

describe('RC4', () => {
  it('matches the published vectors (Wikipedia, RFC 6229 at offsets 0 and 1024)', () => {
    expect(rc4(Buffer.from('Key'), Buffer.from('Plaintext')).toString('hex')).to.equal('bbf316e8d940af0ad3');
    expect(rc4(Buffer.from('Wiki'), Buffer.from('pedia')).toString('hex')).to.equal('1021bf0420');
    expect(rc4(Buffer.from('Secret'), Buffer.from('Attack at dawn')).toString('hex')).to.equal('45a01f645fc35b383552544b9bf5');
    const key = hex('0102030405');
    expect(rc4(key, Buffer.alloc(16)).toString('hex')).to.equal('b2396305f03dc027ccc3524a0a1118a8');
    expect(rc4(key, Buffer.alloc(16), 1024).toString('hex')).to.equal('30abbcc7c20b01609f23ee2d5f6bb7df');
  });

  it("gives OpenSSL's key stream for random keys, whatever the alignment and split of the buffers", function () {
    const key = randomBytes(20);
    const data = randomBytes(100_003);
    // OpenSSL's RC4, in a process that has the legacy provider.
    const script = `const c=require('crypto');const x=c.createCipheriv('rc4',Buffer.from(process.argv[1],'hex'),null);process.stdout.write(x.update(require('fs').readFileSync(0)).toString('hex'))`;
    const r = spawnSync(process.execPath, ['--openssl-legacy-provider', '-e', script, key.toString('hex')], { input: data, encoding: 'utf8', maxBuffer: 1 << 22 });
    if (r.status !== 0) this.skip(); // a Node without the legacy provider: the published vectors above still hold
    const expected = hex(r.stdout);
    const cipher = new Rc4(key);
    const backing = Buffer.alloc(data.length + 7);
    const out: Buffer[] = [];
    // Odd offsets and lengths: the word-at-a-time path must start and stop on any byte.
    for (let at = 0, n = 1; at < data.length; at += n, n = (n * 7 + 3) % 9001) {
      const len = Math.min(n, data.length - at);
      const view = backing.subarray(at % 7, (at % 7) + len);
      data.copy(view, 0, at, at + len);
      out.push(Buffer.from(cipher.process(view)));
    }
    expect(Buffer.concat(out).equals(expected)).to.equal(true);
  });
});

const P_A = Buffer.from(Array.from({ length: 20 }, (_, i) => i + 1));
const P_B = Buffer.from(Array.from({ length: 20 }, (_, i) => i + 21));
const IH = Buffer.alloc(20, 0xaa);
// Computed with Python (pow, hashlib.sha1, an RC4 in Python) for the keys above, no padding, IA 'hello'.
const YA = hex('96e112dab29e8c5272accb9b17b26887ce54a144a4e3b697c7d159b7a817e556b0918db2b4c658e02a87f7e5fb14b18a553e084cbf3dad2d30f16596ccb982d406258c61b30c5c1dae2ddc60bdbd48d79896312aad63238c39e1a633821eb693');
const YB = hex('a3e981e821087e74b889c5bfc373ec5be9ed09c85282b9cdb6b07dbaabe0ee5138a91e6245657219d1019ce47ed3613f037c6932a69069a3928b146b354e79cbfeaad601d12598943c43b5b5529915b2c604e43fd6f9ced4efbe68f9edfaeee7');
const STEP3 = hex('83c8d8a3d91a5bf40d723666c4258731c8427ccb4a278249411ccc527bb5e8d3a33af2a69725a1fc0327b6d211c82d4947ce46c0fdb5f37cbed6c8f11d');
const STEP4 = hex('06d0d8359370f45e284e8cb432fd');

const lookup = (known: Buffer[]) => (req2: Buffer) => known.find((h) => req2Of(h).equals(req2));

/** Run both sides in memory, cutting every transmission into pieces of `cut` bytes. */
function converse(a: MseHandshake, b: MseHandshake, cut = Infinity): { a: MseResult; b: MseResult } {
  let toB: Buffer[] = [a.start()];
  let toA: Buffer[] = [];
  let ra: MseResult | null = null;
  let rb: MseResult | null = null;
  const feed = (side: MseHandshake, bufs: Buffer[]): { out: Buffer[]; done: MseResult | null } => {
    const out: Buffer[] = [];
    let done: MseResult | null = null;
    for (const whole of bufs)
      for (let i = 0; i < whole.length && !done; i += cut) {
        const step: MseStep = side.push(whole.subarray(i, Math.min(whole.length, i + cut)));
        out.push(...step.out);
        done = step.done;
        if (done && i + cut < whole.length) done = { ...done, rest: Buffer.concat([done.rest, whole.subarray(i + cut)]) };
      }
    return { out, done };
  };
  for (let round = 0; round < 10 && !(ra && rb); round++) {
    if (!rb && toB.length > 0) {
      const r = feed(b, toB);
      toB = [];
      toA.push(...r.out);
      rb = r.done;
    }
    if (!ra && toA.length > 0) {
      const r = feed(a, toA);
      toA = [];
      toB.push(...r.out);
      ra = r.done;
    }
  }
  expect(ra, 'initiator done').to.not.equal(null);
  expect(rb, 'responder done').to.not.equal(null);
  return { a: ra!, b: rb! };
}

describe('MSE handshake', () => {
  it('sends exactly the bytes of the independent vectors and derives the same keys', () => {
    const a = MseHandshake.initiator({ infoHash: IH, provide: CRYPTO_PLAINTEXT | CRYPTO_RC4, payload: Buffer.from('hello'), privateKey: P_A, padLength: 0 });
    const b = MseHandshake.responder({ lookup: lookup([randomBytes(20), IH]), select: [CRYPTO_PLAINTEXT, CRYPTO_RC4], privateKey: P_B, padLength: 0 });
    expect(a.start().equals(YA)).to.equal(true);
    const two = b.push(YA);
    expect(Buffer.concat(two.out).equals(YB)).to.equal(true);
    const three = a.push(YB);
    expect(Buffer.concat(three.out).equals(STEP3)).to.equal(true);
    const four = b.push(Buffer.concat(three.out));
    expect(Buffer.concat(four.out).equals(STEP4)).to.equal(true);
    expect(four.done?.method).to.equal('plaintext');
    expect(four.done?.infoHash.equals(IH)).to.equal(true);
    expect(four.done?.rest.toString()).to.equal('hello');
    const done = a.push(Buffer.concat([...four.out, Buffer.from('plain payload')])).done!;
    expect(done.method).to.equal('plaintext');
    expect(done.encrypt).to.equal(null);
    expect(done.rest.toString()).to.equal('plain payload');
  });

  for (const cut of [1, 3, 17, 200, Infinity])
    it(`agrees on RC4 both ways with random keys and padding, bytes cut every ${cut}`, () => {
      const a = MseHandshake.initiator({ infoHash: IH, ...cryptoFor('require'), payload: Buffer.from('IA: the BitTorrent handshake') });
      const b = MseHandshake.responder({ lookup: lookup([IH]), ...cryptoFor('prefer') });
      const after = Buffer.from('payload right behind the handshake');
      const { a: ra, b: rb } = converse(a, b, cut);
      expect(ra.method).to.equal('rc4');
      expect(rb.method).to.equal('rc4');
      expect(rb.rest.toString()).to.equal('IA: the BitTorrent handshake');
      // The ciphers continue the handshake's key streams: each side reads what the other writes.
      const sent = Buffer.from(ra.encrypt!.process(Buffer.from(after)));
      expect(sent.equals(after)).to.equal(false);
      expect(Buffer.from(rb.decrypt!.process(sent)).toString()).to.equal(after.toString());
      const back = Buffer.from(rb.encrypt!.process(Buffer.from('and back')));
      expect(Buffer.from(ra.decrypt!.process(back)).toString()).to.equal('and back');
    });

  it('hands over encrypted payload that arrives in the same chunk as the end of the handshake', () => {
    const a = MseHandshake.initiator({ infoHash: IH, provide: CRYPTO_RC4, payload: Buffer.from('hs') });
    const b = MseHandshake.responder({ lookup: lookup([IH]), select: [CRYPTO_RC4] });
    const s2 = b.push(a.start());
    const s3 = a.push(Buffer.concat(s2.out));
    const s4 = b.push(Buffer.concat(s3.out));
    const reply = Buffer.from(s4.done!.encrypt!.process(Buffer.from('their handshake')));
    const done = a.push(Buffer.concat([...s4.out, reply])).done!;
    expect(done.rest.toString()).to.equal('their handshake');
  });

  it('selects what the modes say: prefer meets prefer in plaintext, require forces RC4, require meets a plaintext-only peer with an error', () => {
    const run = (provide: number, select: number[]) =>
      converse(MseHandshake.initiator({ infoHash: IH, provide, payload: Buffer.from('x') }), MseHandshake.responder({ lookup: lookup([IH]), select }));
    expect(run(cryptoFor('prefer').provide, cryptoFor('prefer').select).b.method).to.equal('plaintext');
    expect(run(cryptoFor('require').provide, cryptoFor('prefer').select).b.method).to.equal('rc4');
    expect(run(cryptoFor('prefer').provide, cryptoFor('require').select).b.method).to.equal('rc4');
    expect(() => run(CRYPTO_PLAINTEXT, cryptoFor('require').select)).to.throw(MseError, /none of which we accept/);
  });

  it('refuses an infohash we do not run, naming it as such', () => {
    const a = MseHandshake.initiator({ infoHash: IH, provide: CRYPTO_RC4, payload: Buffer.alloc(0) });
    const b = MseHandshake.responder({ lookup: lookup([randomBytes(20)]), select: [CRYPTO_RC4] });
    let err: unknown;
    try {
      converse(a, b);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(MseError);
    expect((err as MseError).unknownTorrent).to.equal(true);
  });

  it('bounds the padding: garbage after a key is refused after 512 bytes, whole or in pieces', () => {
    for (const cut of [1, 100, 5000]) {
      const b = MseHandshake.responder({ lookup: lookup([IH]), select: [CRYPTO_RC4] });
      const garbage = randomBytes(KEY_BYTES + MAX_PAD + 20 + 1);
      expect(() => {
        for (let i = 0; i < garbage.length; i += cut) b.push(garbage.subarray(i, i + cut));
      }).to.throw(MseError, /within 512 bytes of padding/);
    }
    const a = MseHandshake.initiator({ infoHash: IH, provide: CRYPTO_RC4, payload: Buffer.alloc(0) });
    a.start();
    expect(() => a.push(randomBytes(KEY_BYTES + MAX_PAD + 8))).to.throw(MseError, /verification constant/);
  });

  it('refuses a public key out of range and a PadC over 512 bytes', () => {
    const b = MseHandshake.responder({ lookup: lookup([IH]), select: [CRYPTO_RC4] });
    expect(() => b.push(Buffer.alloc(KEY_BYTES))).to.throw(MseError, /out of range/);
    // A hand-made step 3 with len(PadC) = 513.
    const xa = randomBytes(20);
    const b2 = MseHandshake.responder({ lookup: lookup([IH]), select: [CRYPTO_RC4], padLength: 0 });
    const a = MseHandshake.initiator({ infoHash: IH, provide: CRYPTO_RC4, payload: Buffer.alloc(0), privateKey: xa, padLength: 0 });
    const yb = Buffer.concat(b2.push(a.start()).out);
    const step3 = Buffer.concat(a.push(yb).out);
    // Re-encrypt the head with len(PadC) changed: decrypt with keyA, patch, encrypt again.
    const head = step3.subarray(40);
    const keyA = keyAOf(xa, yb);
    const clear = Buffer.from(new Rc4(keyA, MSE_DISCARD).process(Buffer.from(head)));
    clear.writeUInt16BE(MAX_PAD + 1, 12);
    const patched = Buffer.concat([step3.subarray(0, 40), Buffer.from(new Rc4(keyA, MSE_DISCARD).process(clear))]);
    expect(() => b2.push(patched)).to.throw(MseError, /PadC is 513 bytes/);
  });
});

const P = BigInt('0xFFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563');

/** keyA from our private key and their public key: S = Yb^Xa mod P, keyA = HASH('keyA', S, SKEY). */
function keyAOf(x: Buffer, yb: Buffer): Buffer {
  const s = modPow(BigInt('0x' + yb.subarray(0, KEY_BYTES).toString('hex')), BigInt('0x' + x.toString('hex')), P);
  return sha1('keyA', Buffer.from(s.toString(16).padStart(KEY_BYTES * 2, '0'), 'hex'), IH);
}
