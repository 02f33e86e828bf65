/**
 * Message stream encryption (MSE/PE), the obfuscated BitTorrent handshake of Vuze,
 * libtorrent, Transmission and qBittorrent, as a pure state machine: bytes in, bytes to send
 * and, at the end, the ciphers for the rest of the stream. No sockets, no timers (the
 * transport bounds the time); every length a peer sends is bounded here.
 *
 *   1 A->B  Ya, PadA                                    Diffie-Hellman, 768-bit prime, g = 2
 *   2 B->A  Yb, PadB
 *   3 A->B  HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
 *           ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
 *   4 B->A  ENCRYPT(VC, crypto_select, len(PadD), PadD), then the payload
 *
 * S is the shared secret (96 bytes, big-endian), SKEY the infohash (B finds it among its
 * torrents by HASH('req2', SKEY)), VC eight zero bytes, HASH SHA-1. A encrypts with RC4 keyed
 * HASH('keyA', S, SKEY), B with HASH('keyB', S, SKEY), both discarding the first 1024 bytes
 * of key stream. Pads are 0 to 512 bytes; B finds step 3 by scanning for HASH('req1', S)
 * after PadA, A finds step 4 by scanning for ENCRYPT(VC) after PadB. crypto_provide and
 * crypto_select are bit fields: 1 plaintext (only the handshake is obfuscated), 2 RC4 (the
 * whole stream). IA, the initial payload, carries A's BitTorrent handshake.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { Rc4, MSE_DISCARD } from './rc4.js';

const P = BigInt(
  '0xFFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563',
);
/** Bytes of a public key (Ya, Yb) and of the shared secret. */
export const KEY_BYTES = 96;
/** Longest PadA, PadB, PadC, PadD. */
export const MAX_PAD = 512;
export const CRYPTO_PLAINTEXT = 0x01;
export const CRYPTO_RC4 = 0x02;
const VC_BYTES = 8;
/** Private keys of 160 bits, as the specification asks (plenty against a 768-bit group). */
const PRIVATE_BYTES = 20;

/** `prefer`: offer and accept both; `require`: RC4 over the whole stream or nothing; `off`: plain BitTorrent only. */
export type EncryptionMode = 'prefer' | 'require' | 'off';

/** The peer broke the handshake (or offers nothing we accept): close it with this reason. */
export class MseError extends Error {
  constructor(message: string, readonly unknownTorrent = false) {
    super(message);
  }
}

/** The handshake's outcome: ciphers for each direction (null: that direction is plaintext) and the payload that came with it. */
export interface MseResult {
  method: 'plaintext' | 'rc4';
  encrypt: Rc4 | null;
  decrypt: Rc4 | null;
  infoHash: Buffer;
  /** Payload bytes received with the handshake, decrypted: the initiator's IA and whatever followed. */
  rest: Buffer;
}

export interface MseStep {
  /** Bytes to send now, in order. */
  out: Buffer[];
  /** Set once the handshake is over. */
  done: MseResult | null;
}

export interface MseCommon {
  /** 20 bytes; random by default (set for test vectors). */
  privateKey?: Buffer;
  /** Length of PadA or PadB; random from 0 to 512 by default. */
  padLength?: number;
}

export interface MseInitiatorInit extends MseCommon {
  infoHash: Buffer;
  /** crypto_provide: what we offer (CRYPTO_PLAINTEXT | CRYPTO_RC4). */
  provide: number;
  /** IA: our BitTorrent handshake, sent within step 3. */
  payload: Buffer;
}

export interface MseResponderInit extends MseCommon {
  /** The infohash whose HASH('req2', infohash) this is, if we run that torrent. */
  lookup(req2: Buffer): Buffer | undefined;
  /** The methods we accept, most wanted first; the first the initiator provides is selected. */
  select: number[];
}

/** What an initiator provides and a responder selects, most wanted first, under each mode. */
export function cryptoFor(mode: Exclude<EncryptionMode, 'off'>): { provide: number; select: number[] } {
  // Like libtorrent's default: when both ends allow it, only the handshake is obfuscated (no
  // cost per byte); `require` means RC4 over everything, as Transmission's "required" does.
  return mode === 'require' ? { provide: CRYPTO_RC4, select: [CRYPTO_RC4] } : { provide: CRYPTO_PLAINTEXT | CRYPTO_RC4, select: [CRYPTO_PLAINTEXT, CRYPTO_RC4] };
}

export function sha1(...parts: Array<string | Buffer>): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HASH('req2', infohash): how an incoming MSE handshake names its torrent. */
export function req2Of(infoHash: Buffer): Buffer {
  return sha1('req2', infoHash);
}

export function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
  }
  return result;
}

const toBig = (b: Buffer): bigint => BigInt('0x' + (b.length > 0 ? b.toString('hex') : '0'));
const toBytes = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(KEY_BYTES * 2, '0'), 'hex');

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

const methodName = (bits: number): MseResult['method'] => (bits === CRYPTO_RC4 ? 'rc4' : 'plaintext');

type State = 'key' | 'sync' | 'head' | 'padC' | 'ia' | 'padD' | 'done';

/** One side of one MSE handshake. */
export class MseHandshake {
  private buf: Buffer = Buffer.alloc(0);
  private state: State = 'key';
  private readonly x: bigint;
  private readonly y: Buffer;
  private secret: Buffer = Buffer.alloc(0);
  /** The bytes we scan for (HASH('req1', S) or ENCRYPT(VC)) and where the part after them starts. */
  private mark: Buffer = Buffer.alloc(0);
  private at = 0;
  private need = 0;
  private provided = 0;
  private selected = 0;
  private infoHash: Buffer | null = null;
  private encrypt: Rc4 | null = null;
  private decrypt: Rc4 | null = null;
  private ia: Buffer = Buffer.alloc(0);

  private constructor(
    private readonly role: 'initiator' | 'responder',
    private readonly common: MseCommon,
    private readonly initiator: MseInitiatorInit | null,
    private readonly responder: MseResponderInit | null,
  ) {
    const priv = common.privateKey ?? randomBytes(PRIVATE_BYTES);
    this.x = toBig(priv);
    this.y = toBytes(modPow(2n, this.x, P));
    if (initiator) this.infoHash = initiator.infoHash;
  }

  static initiator(init: MseInitiatorInit): MseHandshake {
    if (init.payload.length > 0xffff) throw new RangeError('the initial payload is longer than 65535 bytes');
    return new MseHandshake('initiator', init, init, null);
  }

  static responder(init: MseResponderInit): MseHandshake {
    return new MseHandshake('responder', init, null, init);
  }

  /** Our public key with its padding: the initiator sends it first, the responder in answer to Ya. */
  private hello(): Buffer {
    const pad = this.common.padLength ?? randomInt(0, MAX_PAD + 1);
    return Buffer.concat([this.y, randomBytes(Math.min(pad, MAX_PAD))]);
  }

  /** What the initiator sends to begin (Ya, PadA); nothing for a responder. */
  start(): Buffer {
    return this.role === 'initiator' ? this.hello() : Buffer.alloc(0);
  }

  get finished(): boolean {
    return this.state === 'done';
  }

  /** Take received bytes (any split); throws MseError when the peer breaks the handshake. */
  push(chunk: Buffer): MseStep {
    if (this.state === 'done') throw new Error('the MSE handshake is over');
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const before: State = this.state;
      const done = this.role === 'initiator' ? this.stepInitiator(out) : this.stepResponder(out);
      if (done) return { out, done };
      if (this.state === before) return { out, done: null };
    }
  }

  /** The other side's public key: S, and the first message that follows from it. */
  private takeKey(out: Buffer[]): void {
    if (this.buf.length < KEY_BYTES) return;
    const other = toBig(this.buf.subarray(0, KEY_BYTES));
    if (other <= 1n || other >= P - 1n) throw new MseError('its Diffie-Hellman key is out of range');
    this.secret = toBytes(modPow(other, this.x, P));
    this.at = KEY_BYTES;
    this.state = 'sync';
    if (this.role === 'responder') {
      out.push(this.hello());
      this.mark = sha1('req1', this.secret);
      return;
    }
    const init = this.initiator!;
    this.encrypt = new Rc4(sha1('keyA', this.secret, init.infoHash), MSE_DISCARD);
    const head = Buffer.concat([Buffer.alloc(VC_BYTES), u32(init.provide), u16(0), u16(init.payload.length), init.payload]);
    out.push(sha1('req1', this.secret), xor(req2Of(init.infoHash), sha1('req3', this.secret)), Buffer.from(this.encrypt.process(head)));
    this.mark = Buffer.from(new Rc4(sha1('keyB', this.secret, init.infoHash), MSE_DISCARD).process(Buffer.alloc(VC_BYTES)));
  }

  /** Find `mark` within the 512 bytes of padding after the key (`at` is where it starts); false while it may still come. */
  private sync(what: string): boolean {
    const limit = KEY_BYTES + MAX_PAD + this.mark.length;
    const i = this.buf.indexOf(this.mark, KEY_BYTES);
    if (i < 0 || i + this.mark.length > limit) {
      if (this.buf.length >= limit) throw new MseError(`no ${what} within ${MAX_PAD} bytes of padding (not MSE, or a broken peer)`);
      return false;
    }
    this.at = i; // the initiator decrypts from the VC it found; the responder skips HASH('req1', S)
    this.state = 'head';
    return true;
  }

  /** Decrypt `n` bytes at `at` (a copy: the buffer may be a view of the caller's) and move past them. */
  private take(cipher: Rc4, n: number): Buffer {
    const b = Buffer.from(this.buf.subarray(this.at, this.at + n));
    this.at += n;
    cipher.process(b);
    return b;
  }

  private stepInitiator(out: Buffer[]): MseResult | null {
    switch (this.state) {
      case 'key':
        this.takeKey(out);
        return null;
      case 'sync':
        this.sync('verification constant');
        return null;
      case 'head': {
        if (this.buf.length < this.at + VC_BYTES + 6) return null;
        this.decrypt = new Rc4(sha1('keyB', this.secret, this.infoHash!), MSE_DISCARD);
        const head = this.take(this.decrypt, VC_BYTES + 6);
        this.selected = head.readUInt32BE(VC_BYTES);
        const provide = this.initiator!.provide;
        if ((this.selected !== CRYPTO_PLAINTEXT && this.selected !== CRYPTO_RC4) || (this.selected & provide) === 0)
          throw new MseError(`it selected crypto method ${this.selected}, which we did not offer`);
        this.need = head.readUInt16BE(VC_BYTES + 4);
        if (this.need > MAX_PAD) throw new MseError(`its PadD is ${this.need} bytes (at most ${MAX_PAD})`);
        this.state = 'padD';
        return null;
      }
      case 'padD': {
        if (this.buf.length < this.at + this.need) return null;
        this.take(this.decrypt!, this.need);
        return this.finish(Buffer.alloc(0));
      }
      default:
        return null;
    }
  }

  private stepResponder(out: Buffer[]): MseResult | null {
    switch (this.state) {
      case 'key':
        this.takeKey(out);
        return null;
      case 'sync':
        this.sync('HASH(req1, S)');
        return null;
      case 'head': {
        if (this.buf.length < this.at + 40 + VC_BYTES + 6) return null;
        const req2 = xor(this.buf.subarray(this.at + 20, this.at + 40), sha1('req3', this.secret));
        this.at += 40;
        const infoHash = this.responder!.lookup(req2);
        if (!infoHash) throw new MseError('it asked for a torrent we do not share', true);
        this.infoHash = infoHash;
        this.decrypt = new Rc4(sha1('keyA', this.secret, infoHash), MSE_DISCARD);
        const head = this.take(this.decrypt, VC_BYTES + 6);
        if (!head.subarray(0, VC_BYTES).equals(Buffer.alloc(VC_BYTES))) throw new MseError('its verification constant is wrong');
        this.provided = head.readUInt32BE(VC_BYTES);
        this.need = head.readUInt16BE(VC_BYTES + 4);
        if (this.need > MAX_PAD) throw new MseError(`its PadC is ${this.need} bytes (at most ${MAX_PAD})`);
        this.state = 'padC';
        return null;
      }
      case 'padC': {
        if (this.buf.length < this.at + this.need + 2) return null;
        this.need = this.take(this.decrypt!, this.need + 2).readUInt16BE(this.need);
        this.state = 'ia';
        return null;
      }
      case 'ia': {
        if (this.buf.length < this.at + this.need) return null;
        this.ia = this.take(this.decrypt!, this.need);
        const select = this.responder!.select.find((m) => (this.provided & m) !== 0);
        if (select === undefined) throw new MseError(`it offers crypto methods ${this.provided}, none of which we accept`);
        this.selected = select;
        this.encrypt = new Rc4(sha1('keyB', this.secret, this.infoHash!), MSE_DISCARD);
        out.push(Buffer.from(this.encrypt.process(Buffer.concat([Buffer.alloc(VC_BYTES), u32(select), u16(0)]))));
        return this.finish(this.ia);
      }
      default:
        return null;
    }
  }

  /** The payload after the handshake, decrypted when the stream is RC4; plaintext drops both ciphers. */
  private finish(ia: Buffer): MseResult {
    this.state = 'done';
    const rc4 = this.selected === CRYPTO_RC4;
    const after = Buffer.from(this.buf.subarray(this.at));
    if (rc4) this.decrypt!.process(after);
    this.buf = Buffer.alloc(0);
    return {
      method: methodName(this.selected),
      encrypt: rc4 ? this.encrypt : null,
      decrypt: rc4 ? this.decrypt : null,
      infoHash: this.infoHash!,
      rest: ia.length > 0 ? Buffer.concat([ia, after]) : after,
    };
  }
}
