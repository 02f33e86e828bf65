/**
 * The client a peer runs, as its 20-byte peer id tells it. Most clients use the Azureus
 * style `-XXvvvv-` (two letters, four version characters); aria2 writes `A2-1-37-0-`.
 * What we cannot name is shown as its printable prefix, never as raw bytes.
 */

const AZUREUS: Readonly<Record<string, string>> = {
  SH: 'Shoal',
  AR: 'aria2',
  A2: 'aria2',
  TR: 'Transmission',
  qB: 'qBittorrent',
  WW: 'WebTorrent',
  WD: 'WebTorrent Desktop',
  LT: 'libtorrent',
  lt: 'rTorrent',
  UT: 'µTorrent',
  UM: 'µTorrent Mac',
  UW: 'µTorrent Web',
  DE: 'Deluge',
  AZ: 'Vuze',
  BT: 'BitTorrent',
  BI: 'BiglyBT',
  KT: 'KTorrent',
  FD: 'Free Download Manager',
  TX: 'Tixati',
};

/** "Shoal 0.1.0", "aria2 1.37.0", or the printable prefix ("-ZZ1234-") when unknown. */
export function clientName(peerId: Buffer | null | undefined): string {
  if (!peerId || peerId.length === 0) return 'unknown';
  const head = peerId.subarray(0, 8).toString('latin1');
  const az = /^-([A-Za-z0-9]{2})([A-Za-z0-9]{4})-$/.exec(head);
  if (az) {
    const name = AZUREUS[az[1]!];
    if (name) return `${name} ${azureusVersion(az[2]!)}`;
  }
  const aria = /^A2-(\d{1,3})-(\d{1,3})-(\d{1,3})-/.exec(peerId.subarray(0, 16).toString('latin1'));
  if (aria) return `aria2 ${aria[1]}.${aria[2]}.${aria[3]}`;
  return printable(head) || 'unknown';
}

/** `0100` → 0.1.0, `4630` → 4.6.3, `1234` → 1.2.3.4, `13F0` → 1.3.15: the common reading, not every client's own. */
function azureusVersion(v: string): string {
  const digits = [...v].map((c) => (/[0-9]/.test(c) ? c : /[A-Z]/.test(c) ? String(c.charCodeAt(0) - 55) : null));
  const parts = digits.slice(0, 3).map((d) => d ?? '0');
  // The fourth character is often a build letter (µTorrent's `355W`): only a digit counts.
  if (/[1-9]/.test(v[3]!)) parts.push(v[3]!);
  return parts.join('.');
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '').trim();
}
