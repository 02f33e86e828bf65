import { expect } from 'chai';
import { FairShare, addressGroup } from '../../network/util/fair-share.js';

describe('FairShare', function () {
  it('groups IPv4 by address, IPv4-mapped as IPv4, IPv6 by /64', function () {
    expect(addressGroup('10.0.0.7')).to.equal('10.0.0.7');
    expect(addressGroup('::ffff:10.0.0.7')).to.equal('10.0.0.7');
    expect(addressGroup('2001:db8:1:2::5')).to.equal('2001:db8:1:2::/64');
    expect(addressGroup('2001:DB8:1:2:aaaa:bbbb:cccc:dddd')).to.equal('2001:db8:1:2::/64');
    expect(addressGroup('::1')).to.equal('0:0:0:0::/64');
    expect(addressGroup('fe80::1%eth0')).to.equal('fe80:0:0:0::/64');
  });

  it('refuses an address at its cap, naming it', function () {
    const f = new FairShare<string>(10, 2);
    f.add('a1', '10.0.0.1');
    f.add('a2', '10.0.0.1');
    expect(f.admit('10.0.0.1')).to.deep.equal({ ok: false, full: 'address', reason: '2 connections from 10.0.0.1 already' });
    expect(f.admit('10.0.0.2')).to.deep.equal({ ok: true });
    // Two addresses of one /64 are one.
    f.add('v1', '2001:db8::1');
    f.add('v2', '2001:db8::2');
    expect(f.admit('2001:db8::3')).to.include({ ok: false, full: 'address' });
    expect(f.held('2001:db8::99')).to.equal(2);
  });

  it('when full, a newcomer takes the oldest slot of the address holding the most', function () {
    const f = new FairShare<string>(4, 4, 'subscribers');
    for (const x of ['m1', 'm2', 'm3']) f.add(x, '10.0.0.9');
    f.add('h1', '10.0.0.1');
    const a = f.admit('10.0.0.2');
    expect(a).to.deep.equal({ ok: true, evict: 'm1' });
    f.delete('m1');
    f.add('n1', '10.0.0.2');
    expect(f.size).to.equal(4);
    // 10.0.0.9 now holds 2, 10.0.0.1 and 10.0.0.2 one each: one more from 10.0.0.1 (1 + 2 > 2) cannot take one.
    expect(f.admit('10.0.0.1')).to.deep.equal({ ok: false, full: 'all', reason: 'all 4 subscribers taken' });
    // A newcomer holding none can.
    expect(f.admit('10.0.0.3')).to.deep.equal({ ok: true, evict: 'm2' });
  });

  it('forgets an address whose last slot is gone', function () {
    const f = new FairShare<string>(2, 1);
    f.add('x', '10.0.0.1');
    f.delete('x');
    f.delete('x');
    expect(f.size).to.equal(0);
    expect(f.held('10.0.0.1')).to.equal(0);
    expect(f.admit('10.0.0.1')).to.deep.equal({ ok: true });
    expect(() => new FairShare(0, 1)).to.throw(RangeError);
  });
});
