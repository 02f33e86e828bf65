/**
 * The interop matrix with Transmission (transmission-daemon driven by transmission-remote):
 * every case of test/interop/cases.ts both ways, Transmission in its own network namespace
 * (it never dials 127.x peers), found through a real opentracker (see test/interop/suite.ts).
 */
import { transmission } from '../interop/clients/transmission.js';
import { describeInterop } from '../interop/suite.js';

describeInterop(transmission, { prefix: 'shoal-it', subnet: '10.83.0.0/24', file: 'interop-transmission' });
