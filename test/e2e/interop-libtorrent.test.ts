/**
 * The interop matrix with libtorrent-rasterbar (python3-libtorrent): every case of
 * test/interop/cases.ts both ways, libtorrent in its own network namespace, found through a
 * real opentracker (see test/interop/suite.ts).
 */
import { libtorrent } from '../interop/clients/libtorrent.js';
import { describeInterop } from '../interop/suite.js';

describeInterop(libtorrent, { prefix: 'shoal-il', subnet: '10.82.0.0/24', file: 'interop-libtorrent' });
