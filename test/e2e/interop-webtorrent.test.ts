/**
 * The interop matrix with WebTorrent (the npm package, TCP and uTP, no WebRTC): every case of
 * test/interop/cases.ts both ways, WebTorrent in its own network namespace, found through a
 * real opentracker (see test/interop/suite.ts). Skips, saying so, where the package is absent.
 */
import { webtorrent } from '../interop/clients/webtorrent.js';
import { describeInterop } from '../interop/suite.js';

describeInterop(webtorrent, { prefix: 'shoal-iw', subnet: '10.84.0.0/24', file: 'interop-webtorrent' });
