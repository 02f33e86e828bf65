/**
 * How the bootstrap server checks who sends a request and whether it holds the swarm's secret
 * (bootstrap/request-check.ts over network/wire/request-auth.ts), as pure logic: each refusal
 * with its reason, replays and the clock window, and the proof a private server gives back.
 */
import { expect } from 'chai';
import { Identity } from '../../network/security/identity.js';
import { SwarmSecret } from '../../network/security/secret.js';
import { authHeaders, answerProof, checkAnswerProof, AUTH_HEADERS, type RequestSigner } from '../../network/wire/request-auth.js';
import { RequestCheck, RequestAuthError, type RequestRefusal, type RequestToCheck } from '../../bootstrap/request-check.js';

const alice = Identity.generate();
const swarm = SwarmSecret.from('correct horse battery staple');
const other = SwarmSecret.from('another swarm entirely');

/** A request as a node sends it: `body` signed by `signer`, with `macKey`'s HMAC, at `now`. */
function request(opts: { signer?: RequestSigner; macKey?: Buffer; now?: number; body?: string; method?: string; target?: string } = {}): RequestToCheck {
  const method = opts.method ?? 'POST';
  const target = opts.target ?? '/api/nodes';
  const body = opts.body ?? '{"id":"x"}';
  const headers = authHeaders({ method, target, body }, { signer: opts.signer, macKey: opts.macKey, now: opts.now });
  return { method, target, headers, body: Buffer.from(body) };
}

/** The reason `check` refuses `req` for. */
function refusal(check: RequestCheck, req: RequestToCheck, signature = true): { reason: RequestRefusal; message: string } {
  try {
    check.check(req, { signature });
  } catch (err) {
    if (err instanceof RequestAuthError) {
      expect(err.status).to.equal(401);
      return { reason: err.reason, message: err.message };
    }
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('bootstrap request checks', function () {
  let clock = 1_700_000_000_000;
  const now = () => clock;
  beforeEach(() => (clock = 1_700_000_000_000));

  it('takes a signed request and names the node id of its key', function () {
    const check = new RequestCheck({ now });
    expect(check.check(request({ signer: alice, now: clock }), { signature: true })).to.deep.equal({ signer: alice.id });
    expect(check.counts()).to.deep.equal({});
  });

  it('an open server asks nothing of a request that needs no signature (a search, an announce)', function () {
    const check = new RequestCheck({ now });
    expect(check.check({ method: 'GET', target: '/api/search?q=x', headers: {} }, { signature: false })).to.deep.equal({ signer: null });
  });

  it('refuses an unsigned write, and one whose signature does not hold for what was sent', function () {
    const check = new RequestCheck({ now });
    expect(refusal(check, { method: 'POST', target: '/api/nodes', headers: {} })).to.deep.include({ reason: 'unsigned' });
    // Auth headers without a key (an HMAC alone) are no signature either.
    expect(refusal(check, request({ macKey: swarm.bootstrapKey, now: clock }))).to.deep.include({ reason: 'unsigned' });
    const signed = request({ signer: alice, now: clock });
    for (const [what, tampered] of [
      ['another body', { ...signed, body: Buffer.from('{"id":"y"}') }],
      ['another path', { ...signed, target: '/api/nodes/ELSEWHERE' }],
      ['another method', { ...signed, method: 'PUT' }],
      ['another key', { ...signed, headers: { ...signed.headers, [AUTH_HEADERS.key]: Identity.generate().publicKey.toString('base64url') } }],
    ] as const) {
      const r = refusal(new RequestCheck({ now }), tampered);
      expect(r.reason, what).to.equal('bad-signature');
      expect(r.message).to.match(/signature does not hold/);
    }
  });

  it('refuses malformed auth headers, naming the header', function () {
    const check = new RequestCheck({ now });
    const good = request({ signer: alice, now: clock });
    const cases: Array<[string, Record<string, string | string[]>, RegExp]> = [
      ['nonce not hex', { [AUTH_HEADERS.nonce]: 'zz'.repeat(16) }, /x-shoal-nonce/],
      ['time not a number', { [AUTH_HEADERS.time]: 'yesterday' }, /x-shoal-time/],
      ['short key', { [AUTH_HEADERS.key]: 'AAAA' }, /x-shoal-key: must be 32 bytes/],
      ['signature twice', { [AUTH_HEADERS.signature]: [good.headers[AUTH_HEADERS.signature] as string, 'x'] }, /given more than once/],
    ];
    for (const [what, change, message] of cases) {
      const r = refusal(check, { ...good, headers: { ...good.headers, ...change } });
      expect(r.reason, what).to.equal('malformed');
      expect(r.message, what).to.match(message);
    }
    const { [AUTH_HEADERS.signature]: _, ...keyAlone } = good.headers;
    expect(refusal(check, { ...good, headers: keyAlone }).message).to.match(/go together/);
  });

  it('refuses a replay: the same request again, or one from too far off our clock either way', function () {
    const check = new RequestCheck({ now, maxSkewMs: 60_000 });
    const once = request({ signer: alice, now: clock });
    check.check(once, { signature: true });
    expect(refusal(check, once)).to.deep.include({ reason: 'replayed' });
    expect(refusal(check, request({ signer: alice, now: clock - 61_000 })).reason, 'an old capture').to.equal('stale');
    expect(refusal(check, request({ signer: alice, now: clock + 61_000 })).reason, 'stamped in the future').to.equal('stale');
    expect(check.check(request({ signer: alice, now: clock - 59_000 }), { signature: true }).signer, 'within the window').to.equal(alice.id);
    // Once its time has left the window, the old request is stale rather than replayed: still refused.
    clock += 61_000;
    expect(refusal(check, once).reason).to.equal('stale');
    expect(check.counts()).to.deep.equal({ replayed: 1, stale: 3 });
  });

  it('remembers at most so many nonces; past that, requests as old as the forgotten ones are refused, never replayed', function () {
    const check = new RequestCheck({ now, maxNonces: 3 });
    const sent = [0, 1, 2, 3].map((i) => request({ signer: alice, now: clock - 1000 + i }));
    for (const r of sent) check.check(r, { signature: true });
    // The first nonce was forgotten: its request is no older than the floor now.
    expect(refusal(check, sent[0]!).message).to.match(/older than the server can check for replays/);
    expect(refusal(check, request({ signer: alice, now: clock - 1000 })).reason, 'a fresh nonce of that age').to.equal('stale');
    expect(refusal(check, sent[3]!).reason, 'remembered').to.equal('replayed');
    expect(check.check(request({ signer: alice, now: clock }), { signature: true }).signer).to.equal(alice.id);
  });

  describe('a private swarm’s server', function () {
    it('takes only requests with the swarm’s HMAC, signed or not', function () {
      const check = new RequestCheck({ now, macKey: swarm.bootstrapKey });
      expect(check.isPrivate).to.equal(true);
      expect(check.check(request({ signer: alice, macKey: swarm.bootstrapKey, now: clock }), { signature: true }).signer).to.equal(alice.id);
      const search = request({ macKey: swarm.bootstrapKey, now: clock, method: 'GET', target: '/api/search?q=x', body: '' });
      expect(check.check(search, { signature: false }).signer).to.equal(null);
      const none = refusal(check, { method: 'GET', target: '/api/search?q=x', headers: {} }, false);
      expect(none.reason).to.equal('no-secret');
      expect(none.message).to.match(/serves a private swarm.*--secret/);
      expect(refusal(check, request({ signer: alice, now: clock })).reason, 'signed, no HMAC').to.equal('no-secret');
      const wrong = refusal(check, request({ signer: alice, macKey: other.bootstrapKey, now: clock }));
      expect(wrong).to.deep.include({ reason: 'wrong-secret' });
      expect(wrong.message).to.match(/wrong swarm secret/);
      // The HMAC covers the request: moved to another body, it does not hold.
      const sent = request({ signer: alice, macKey: swarm.bootstrapKey, now: clock });
      expect(refusal(check, { ...sent, body: Buffer.from('{"id":"z"}') }).reason).to.equal('wrong-secret');
      expect(check.counts()).to.deep.equal({ 'no-secret': 2, 'wrong-secret': 2 });
    });

    it('proves the secret in turn: a proof holds for its nonce, status and body only', function () {
      const nonce = 'ab'.repeat(16);
      const proof = answerProof(swarm.bootstrapKey, nonce, 200, '{"ok":1}');
      expect(checkAnswerProof(swarm.bootstrapKey, nonce, 200, '{"ok":1}', proof)).to.equal(true);
      expect(checkAnswerProof(swarm.bootstrapKey, 'cd'.repeat(16), 200, '{"ok":1}', proof), 'another request').to.equal(false);
      expect(checkAnswerProof(swarm.bootstrapKey, nonce, 201, '{"ok":1}', proof), 'another status').to.equal(false);
      expect(checkAnswerProof(swarm.bootstrapKey, nonce, 200, '{"ok":2}', proof), 'another body').to.equal(false);
      expect(checkAnswerProof(other.bootstrapKey, nonce, 200, '{"ok":1}', proof), 'another swarm').to.equal(false);
      expect(checkAnswerProof(swarm.bootstrapKey, nonce, 200, '{"ok":1}', null), 'none').to.equal(false);
      expect(checkAnswerProof(swarm.bootstrapKey, nonce, 200, '{"ok":1}', 'short'), 'garbage').to.equal(false);
    });
  });
});
