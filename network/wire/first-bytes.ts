/**
 * What a connection to the peer port speaks, from its first bytes: a plain BitTorrent
 * handshake ("\x13BitTorrent protocol"), a control line ('{' and text), an MSE handshake (96
 * bytes of a Diffie-Hellman key, which look random), or something else (text: an HTTP
 * request, a typo). An MSE key may begin with 0x13 or '{' too: so the whole protocol string
 * is compared, and a control line must look like text for its first bytes.
 */
export type FirstBytes = 'bittorrent' | 'control' | 'mse' | 'other';

const PROTOCOL = Buffer.from('\x13BitTorrent protocol', 'latin1');
/** Text bytes a '{' must be followed by to be taken as a control line (an MSE key passes with odds of 1 in 200,000). */
const CONTROL_TEXT = 8;
/** Text bytes after which a connection is not MSE (one in ten million keys would look so). */
const OTHER_TEXT = 16;

const isText = (b: number): boolean => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d;

/**
 * Classify the bytes received so far, or null while more are needed. `control`: the control
 * protocol is possible here (TCP only). `mse`: MSE is accepted; when not, anything but a
 * plain handshake or a control line is 'other' at once, as before MSE existed.
 */
export function classifyFirstBytes(buf: Buffer, control: boolean, mse: boolean): FirstBytes | null {
  if (buf.length === 0) return null;
  if (buf[0] === 0x13) {
    const n = Math.min(buf.length, PROTOCOL.length);
    if (buf.subarray(0, n).equals(PROTOCOL.subarray(0, n))) return n === PROTOCOL.length ? 'bittorrent' : null;
    return mse ? 'mse' : 'other';
  }
  if (buf[0] === 0x7b && control) {
    if (!mse) return 'control';
    for (let i = 1; i < Math.min(buf.length, CONTROL_TEXT); i++) {
      if (!isText(buf[i]!)) return 'mse';
      if (buf[i] === 0x0a) return 'control';
    }
    return buf.length >= CONTROL_TEXT ? 'control' : null;
  }
  if (!mse) return 'other';
  for (let i = 0; i < Math.min(buf.length, OTHER_TEXT); i++) if (!isText(buf[i]!)) return 'mse';
  return buf.length >= OTHER_TEXT ? 'other' : null;
}
