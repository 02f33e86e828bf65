/** The allowed-fast set (BEP 6): the canonical generation, and what we do beyond the BEP (IPv6, small torrents). */
import { expect } from 'chai';
import { allowedFastSet, ipv6Bytes, MAX_ALLOWED_FAST } from '../../network/swarm/allowed-fast.js';

const AA = Buffer.alloc(20, 0xaa);

describe('allowed-fast set (BEP 6)', () => {
  it("gives the BEP's published test vector: infohash 0xAA x20, 80.4.4.200, 1313 pieces", () => {
    expect(allowedFastSet('80.4.4.200', AA, 1313, 7)).to.deep.equal([1059, 431, 808, 1217, 287, 376, 1188]);
    expect(allowedFastSet('80.4.4.200', AA, 1313, 9)).to.deep.equal([1059, 431, 808, 1217, 287, 376, 1188, 353, 508]);
  });

  it('masks the address to its /24: a neighbour gets the same set, another network another', () => {
    const set = allowedFastSet('80.4.4.200', AA, 1313, 9);
    expect(allowedFastSet('80.4.4.1', AA, 1313, 9)).to.deep.equal(set);
    expect(allowedFastSet('::ffff:80.4.4.17', AA, 1313, 9), 'an IPv4 peer on a dual-stack socket').to.deep.equal(set);
    expect(allowedFastSet('80.4.5.200', AA, 1313, 9)).to.not.deep.equal(set);
    expect(allowedFastSet('80.4.4.200', Buffer.alloc(20, 0xab), 1313, 9), 'another torrent').to.not.deep.equal(set);
  });

  it('has k distinct pieces in range, and k is bounded', () => {
    const set = allowedFastSet('10.0.0.1', AA, 50, 10);
    expect(set).to.have.length(10);
    expect(new Set(set).size).to.equal(10);
    for (const i of set) expect(i).to.be.within(0, 49);
    expect(allowedFastSet('10.0.0.1', AA, 100_000, 1000)).to.have.length(MAX_ALLOWED_FAST);
    expect(allowedFastSet('10.0.0.1', AA, 100, 0)).to.deep.equal([]);
  });

  it('gives every piece of a torrent no larger than the set', () => {
    expect(allowedFastSet('10.0.0.1', AA, 4, 10)).to.deep.equal([0, 1, 2, 3]);
    expect(allowedFastSet('10.0.0.1', AA, 10, 10)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('for IPv6 hashes the /48 the same way; a host name gets no set', () => {
    const set = allowedFastSet('2001:db8:aaaa:1::5', AA, 1313, 9);
    expect(set).to.have.length(9);
    expect(allowedFastSet('2001:db8:aaaa:ffff:1:2:3:4', AA, 1313, 9), 'the same /48').to.deep.equal(set);
    expect(allowedFastSet('2001:db8:aaab::5', AA, 1313, 9), 'another /48').to.not.deep.equal(set);
    expect(allowedFastSet('peer.example', AA, 1313, 9)).to.deep.equal([]);
  });

  it('reads IPv6 text into its 16 bytes', () => {
    expect(ipv6Bytes('::1')!.toString('hex')).to.equal('00000000000000000000000000000001');
    expect(ipv6Bytes('2001:db8::8:800:200c:417a')!.toString('hex')).to.equal('20010db80000000000080800200c417a');
    expect(ipv6Bytes('64:ff9b::192.0.2.33')!.toString('hex')).to.equal('0064ff9b0000000000000000c0000221');
    expect(ipv6Bytes('fe80::1%eth0')!.toString('hex')).to.equal('fe800000000000000000000000000001');
    expect(ipv6Bytes('1.2.3.4')).to.equal(null);
  });
});
