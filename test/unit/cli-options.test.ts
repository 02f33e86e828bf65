/** node-cli's and web's options as parsed: lists empty unless given, defaults applied once, in code rather than in --help twice. */
import { expect } from 'chai';
import { parseCli, parseWebCli, UsageError } from '../../cli/options.js';

describe('command-line options', () => {
  it('node-cli with a port only: empty lists, no upload limit, no exit-when-done, no JSON', () => {
    const o = parseCli(['0']);
    expect(o).to.deep.include({ port: 0, peers: [], gets: [], trackers: [], watchPatterns: [], maxUploadRate: 0, exitWhenDone: false, json: false, shared: ['./shared_files'], downloads: './downloads', resolveTimeoutMs: 30_000 });
    expect(o.multicast).to.deep.include({ group: '224.1.1.1', port: 10000, ttl: 1, interfaces: undefined });
  });

  it('repeatable options collect every value, in order', () => {
    const o = parseCli(['127.0.0.1', '9000', '--peer', '10.0.0.1:1', '--peer', '10.0.0.2:2', '--get', 'a', '--get', 'b', '--tracker', 'http://t1/announce', '--tracker', 'http://t2/announce', '--interface', 'lo', '--max-upload-rate', '2M', '--exit-when-done', '--json']);
    expect(o.peers).to.deep.equal([{ host: '10.0.0.1', port: 1 }, { host: '10.0.0.2', port: 2 }]);
    expect(o.gets).to.deep.equal(['a', 'b']);
    expect(o.trackers).to.deep.equal(['http://t1/announce', 'http://t2/announce']);
    expect(o.multicast && o.multicast.interfaces).to.deep.equal(['lo']);
    expect(o).to.deep.include({ listenHost: '127.0.0.1', port: 9000, maxUploadRate: 2 * 1024 * 1024, exitWhenDone: true, json: true });
  });

  it('web: the same lists and defaults', () => {
    const o = parseWebCli(['--peer-port', '0']);
    expect(o).to.deep.include({ port: 0, peers: [], gets: [], trackers: [], maxUploadRate: 0, exitWhenDone: false, json: false });
    expect(o.http).to.deep.equal({ port: 5000, host: '127.0.0.1' });
  });

  it('bad values are usage errors', () => {
    expect(() => parseCli(['0', '--tracker', 'udp://x:1'])).to.throw(UsageError, /--tracker must be an http\(s\) URL/);
    expect(() => parseCli(['0', '--max-upload-rate', 'fast'])).to.throw(UsageError, /not a size/);
    expect(() => parseCli(['0', '--exit-when-done'])).to.throw(UsageError, /needs at least one --get/);
  });
});
