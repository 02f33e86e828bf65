/**
 * Addresses: the one place that reads this machine's interfaces (`os.networkInterfaces()`),
 * and the small rules every layer shares about addresses (what loopback is, how a v4 peer on
 * a dual-stack socket is written, how `host:port` is printed). Pure, no sockets.
 */
import os from 'node:os';
import { isIP } from 'node:net';

/** One address of one interface of this machine. */
export interface InterfaceAddress {
  /** Interface name (`eth0`, `lo`). */
  name: string;
  address: string;
  family: 'IPv4' | 'IPv6';
  /** Loopback. */
  internal: boolean;
}

/** Every address of every interface, as the OS lists them now. */
export function interfaceAddresses(): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const [name, list] of Object.entries(os.networkInterfaces())) {
    for (const a of list ?? []) out.push({ name, address: a.address, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', internal: a.internal });
  }
  return out;
}

/** Every address of this machine, loopback included, normalised: a peer at one of them on our port is us. */
export function localAddresses(): Set<string> {
  const out = new Set(['127.0.0.1', '::1']);
  for (const a of interfaceAddresses()) out.add(normalizeAddress(a.address));
  return out;
}

/** This machine's IPv4 addresses that others on a LAN can reach (loopback excluded), in the OS's order. */
export function lanIPv4Addresses(): string[] {
  return interfaceAddresses()
    .filter((a) => a.family === 'IPv4' && !a.internal)
    .map((a) => a.address);
}

/** The first non-loopback IPv4 address, which is what LAN peers can reach us on; 127.0.0.1 when there is none. */
export function detectLanAddress(): string {
  return lanIPv4Addresses()[0] ?? '127.0.0.1';
}

/** `::ffff:1.2.3.4` (a v4 peer on a dual-stack socket) is 1.2.3.4; IPv6 lower-cased. */
export function normalizeAddress(address: string): string {
  const a = address.toLowerCase();
  if (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4) return a.slice(7);
  return a;
}

export function isLoopbackAddress(address: string): boolean {
  const a = normalizeAddress(address);
  return a === '::1' || a.startsWith('127.');
}

/** Unspecified (0.0.0.0, ::) or multicast: nothing a peer can dial. */
export function isUnusableAddress(address: string): boolean {
  const a = normalizeAddress(address);
  if (a === '0.0.0.0' || a === '::') return true;
  if (isIP(a) === 4) return Number(a.split('.')[0]) >= 224;
  return a.startsWith('ff');
}

/**
 * The address a socket listens on when it is one address only (normalised), or undefined
 * when it listens on every interface (unspecified, or not known).
 */
export function specificAddress(listening: string | undefined): string | undefined {
  if (listening === undefined || listening === '') return undefined;
  const a = normalizeAddress(listening);
  return a === '0.0.0.0' || a === '::' ? undefined : a;
}

/** `host:port`, with an IPv6 host in brackets (`[::1]:9000`). */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
