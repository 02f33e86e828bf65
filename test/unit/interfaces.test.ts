import { expect } from 'chai';
import { pickLinks, type Nic } from '../../network/discovery/interfaces.js';

/** A host with loopback, a LAN card and a second (VPN-like) card. */
const NICS: Nic[] = [
  { name: 'lo', addresses: ['127.0.0.1'], up: true, multicast: false, loopback: true },
  { name: 'eth0', addresses: ['192.168.1.7'], up: true, multicast: true, loopback: false },
  { name: 'wg0', addresses: ['10.8.0.2'], up: true, multicast: true, loopback: false },
  { name: 'eth1', addresses: ['172.16.0.9'], up: false, multicast: true, loopback: false },
];

describe('pickLinks: where beacons go', function () {
  it('listening everywhere: every LAN interface that is up, not loopback', () => {
    const { links, problems } = pickLinks(NICS, undefined);
    expect(links).to.deep.equal([{ name: 'eth0', address: '192.168.1.7' }, { name: 'wg0', address: '10.8.0.2' }]);
    expect([...problems.keys()]).to.deep.equal([]);
  });

  it('listening everywhere on a lone host: loopback', () => {
    expect(pickLinks(NICS.slice(0, 1), undefined).links).to.deep.equal([{ name: 'lo', address: '127.0.0.1' }]);
  });

  it('bound to 127.0.0.1: loopback only, though LAN interfaces exist', () => {
    const { links, problems } = pickLinks(NICS, undefined, '127.0.0.1');
    expect(links).to.deep.equal([{ name: 'lo', address: '127.0.0.1' }]);
    expect([...problems.keys()]).to.deep.equal([]);
  });

  it('bound to another 127.x address: loopback, sent from the address loopback lists', () => {
    expect(pickLinks(NICS, undefined, '127.0.0.5').links).to.deep.equal([{ name: 'lo', address: '127.0.0.1' }]);
  });

  it('bound to a LAN address: that interface alone, sent from that address', () => {
    const { links, problems } = pickLinks(NICS, undefined, '10.8.0.2');
    expect(links).to.deep.equal([{ name: 'wg0', address: '10.8.0.2' }]);
    expect([...problems.keys()]).to.deep.equal([]);
  });

  it('a second address of one interface: sent from the bound one', () => {
    const nics: Nic[] = [{ name: 'eth0', addresses: ['192.168.1.7', '192.168.1.8'], up: true, multicast: true, loopback: false }];
    expect(pickLinks(nics, undefined, '192.168.1.8').links).to.deep.equal([{ name: 'eth0', address: '192.168.1.8' }]);
  });

  it('named interfaces narrow the bound one, never widen it', () => {
    const both = pickLinks(NICS, ['lo', 'eth0'], '127.0.0.1');
    expect(both.links).to.deep.equal([{ name: 'lo', address: '127.0.0.1' }]);
    expect(both.problems.get('iface:eth0')).to.match(/not beaconing on eth0: this node listens on 127\.0\.0\.1 only, which is reachable on lo alone/);
    const elsewhere = pickLinks(NICS, ['eth0'], '127.0.0.1');
    expect(elsewhere.links).to.deep.equal([]);
    expect([...elsewhere.problems.keys()]).to.deep.equal(['iface:eth0']);
    expect(pickLinks(NICS, ['10.8.0.2'], '10.8.0.2').links).to.deep.equal([{ name: 'wg0', address: '10.8.0.2' }]);
  });

  it('bound where no beacon can name it: nowhere, with the reason', () => {
    for (const [bound, why] of [
      ['::1', /IPv4 addresses only/],
      ['2001:db8::7', /IPv4 addresses only/],
      ['192.168.9.9', /no interface holds 192\.168\.9\.9/],
      ['172.16.0.9', /eth1 \(172\.16\.0\.9\) is down/],
    ] as const) {
      const { links, problems } = pickLinks(NICS, undefined, bound);
      expect(links, bound).to.deep.equal([]);
      expect(problems.get('iface:bound'), bound).to.match(why);
    }
  });
});
