/** Node identity (network/security/identity.ts) and the swarm secret's keys (secret.ts), without sockets. */
import { expect } from 'chai';
import { promises as fsp, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Identity, IdentityError, KEY_FILE, NODE_ID_PATTERN, idMatchesKey, keepIdentity, loadIdentity, nodeIdOf, verifySignature } from '../../network/security/identity.js';
import { SecretError, SwarmSecret, readSecretFile, tlsPskKey, BEACON_KEY_LABEL, BOOTSTRAP_KEY_LABEL, TLS_PSK_LABEL } from '../../network/security/secret.js';

describe('node identity', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'shoal-identity-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('derives a 32-character base32 id from the key (160 bits of SHA-256), the same every time', () => {
    const a = Identity.generate();
    expect(a.id).to.match(NODE_ID_PATTERN);
    expect(nodeIdOf(a.publicKey)).to.equal(a.id);
    expect(idMatchesKey(a.id, a.publicKey)).to.equal(true);
    expect(idMatchesKey(Identity.generate().id, a.publicKey)).to.equal(false);
    // A known vector: the all-zero key (checked with Python's hashlib and base64.b32encode).
    expect(nodeIdOf(Buffer.alloc(32))).to.equal('MZUHVLPYMK6XO3EPYGFY5H4OEAEJOFEF');
  });

  it('signs, and a signature holds for that key and those bytes only', () => {
    const a = Identity.generate();
    const sig = a.sign(Buffer.from('hello'));
    expect(verifySignature(a.publicKey, Buffer.from('hello'), sig)).to.equal(true);
    expect(verifySignature(a.publicKey, Buffer.from('hellp'), sig)).to.equal(false);
    expect(verifySignature(Identity.generate().publicKey, Buffer.from('hello'), sig)).to.equal(false);
    expect(verifySignature(Buffer.alloc(31), Buffer.from('hello'), sig), 'a short key').to.equal(false);
    expect(verifySignature(Buffer.alloc(32, 0xff), Buffer.from('hello'), sig), 'not a point').to.equal(false);
    expect(verifySignature(a.publicKey, Buffer.from('hello'), sig.subarray(1)), 'a short signature').to.equal(false);
  });

  it('is made at the first start, kept with mode 0600, and the same at the next', async () => {
    const first = loadIdentity(dir);
    expect(first.fresh).to.equal(true);
    await keepIdentity(first);
    const file = path.join(dir, KEY_FILE);
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    const again = loadIdentity(dir);
    expect(again.fresh).to.equal(false);
    expect(again.exposed).to.equal(false);
    expect(again.identity.id).to.equal(first.identity.id);
    await fsp.chmod(file, 0o644);
    expect(loadIdentity(dir).exposed).to.equal(true);
  });

  it('refuses a damaged key file rather than replace it (the id would change)', () => {
    writeFileSync(path.join(dir, KEY_FILE), 'not a key\n');
    expect(() => loadIdentity(dir)).to.throw(IdentityError, /not a private key/);
    const { privateKey } = { privateKey: '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n' };
    expect(Identity.fromPem(privateKey).id).to.match(NODE_ID_PATTERN);
  });
});

describe('swarm secret', () => {
  it('derives an independent key per label, the same for the same secret', () => {
    const a = SwarmSecret.from('correct horse battery staple');
    const b = SwarmSecret.from('correct horse battery staple');
    const c = SwarmSecret.from('correct horse battery stapler');
    expect(a.beaconKey.equals(b.beaconKey)).to.equal(true);
    expect(a.beaconKey.equals(c.beaconKey)).to.equal(false);
    const keys = [BEACON_KEY_LABEL, BOOTSTRAP_KEY_LABEL, TLS_PSK_LABEL].map((l) => a.key(l).toString('hex'));
    expect(new Set(keys).size).to.equal(3);
    expect(a.tlsPsk).to.have.length(32);
    expect(tlsPskKey('correct horse battery staple').equals(a.tlsPsk)).to.equal(true);
    expect(a.fingerprint).to.match(/^[0-9a-f]{8}$/).and.equal(b.fingerprint);
  });

  it('refuses a short secret, and reads the first line of a secret file', async () => {
    expect(() => SwarmSecret.from('short')).to.throw(SecretError, /at least 8/);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'shoal-secret-'));
    try {
      const f = path.join(dir, 'secret');
      await fsp.writeFile(f, '  a long enough secret  \nsecond line\n', { mode: 0o600 });
      expect(readSecretFile(f)).to.deep.equal({ secret: 'a long enough secret', exposed: false });
      await fsp.writeFile(f, '\n');
      expect(() => readSecretFile(f)).to.throw(SecretError, /first line is empty/);
      expect(() => readSecretFile(path.join(dir, 'missing'))).to.throw(SecretError, /cannot read the secret file/);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
