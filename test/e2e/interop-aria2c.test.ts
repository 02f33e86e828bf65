/**
 * The interop matrix with aria2c: every case of test/interop/cases.ts both ways, aria2c in its
 * own network namespace, found through a real opentracker (see test/interop/suite.ts).
 */
import { aria2c } from '../interop/clients/aria2c.js';
import { describeInterop } from '../interop/suite.js';

describeInterop(aria2c, { prefix: 'shoal-ia', subnet: '10.81.0.0/24', file: 'interop-aria2c' });
