import { expect } from 'chai';
import { hostPort, isLoopbackAddress, isUnusableAddress, normalizeAddress } from '../../network/util/addresses.js';

describe('addresses', function () {
  describe('normalizeAddress', function () {
    const table: Array<[string, string]> = [
      ['10.0.0.1', '10.0.0.1'],
      ['::ffff:10.0.0.1', '10.0.0.1'], // a v4 peer on a dual-stack socket
      ['::FFFF:192.168.1.20', '192.168.1.20'],
      ['::ffff:127.0.0.1', '127.0.0.1'],
      ['::ffff:abcd', '::ffff:abcd'], // not a v4 address after the prefix
      ['::ffff:1.2.3', '::ffff:1.2.3'],
      ['FE80::1', 'fe80::1'],
      ['2001:DB8::A', '2001:db8::a'],
      ['::1', '::1'],
      ['Example.COM', 'example.com'],
    ];
    for (const [input, out] of table) it(`${input} → ${out}`, () => expect(normalizeAddress(input)).to.equal(out));
  });

  describe('isLoopbackAddress', function () {
    const table: Array<[string, boolean]> = [
      ['127.0.0.1', true],
      ['127.255.3.4', true],
      ['::1', true],
      ['::ffff:127.0.0.1', true],
      ['10.0.0.1', false],
      ['128.0.0.1', false],
      ['::2', false],
      ['::', false],
      ['0.0.0.0', false],
      ['::ffff:10.0.0.1', false],
      ['fe80::1', false],
    ];
    for (const [input, loop] of table) it(`${input}: ${loop}`, () => expect(isLoopbackAddress(input)).to.equal(loop));
  });

  describe('isUnusableAddress', function () {
    const table: Array<[string, boolean]> = [
      ['0.0.0.0', true],
      ['::', true],
      ['::ffff:0.0.0.0', true],
      ['224.0.0.1', true],
      ['239.255.255.250', true],
      ['255.255.255.255', true],
      ['::ffff:239.1.2.3', true],
      ['ff02::1', true],
      ['FF05::FB', true],
      ['223.255.255.255', false],
      ['10.0.0.1', false],
      ['127.0.0.1', false],
      ['::1', false],
      ['fe80::1', false],
      ['2001:db8::1', false],
    ];
    for (const [input, bad] of table) it(`${input}: ${bad}`, () => expect(isUnusableAddress(input)).to.equal(bad));
  });

  describe('hostPort', function () {
    const table: Array<[string, number, string]> = [
      ['10.0.0.1', 9000, '10.0.0.1:9000'],
      ['::1', 9000, '[::1]:9000'],
      ['fe80::1%eth0', 1, '[fe80::1%eth0]:1'],
      ['example.com', 65535, 'example.com:65535'],
    ];
    for (const [host, port, out] of table) it(`${host} ${port} → ${out}`, () => expect(hostPort(host, port)).to.equal(out));
  });
});
