/**
 * Which interfaces multicast beacons go out on. The OS's interface list (util/addresses) does not say
 * whether an interface is up or multicast-capable; on Linux sysfs does.
 */
import { promises as fsp } from 'node:fs';
import { isIPv4 } from 'node:net';
import { interfaceAddresses, type InterfaceAddress } from '../util/addresses.js';

const IFF_UP = 0x1;
const IFF_MULTICAST = 0x1000;

export interface Nic {
  name: string;
  addresses: string[];
  up: boolean;
  multicast: boolean;
  loopback: boolean;
}

/** Linux tells us up/multicast in sysfs; elsewhere assume what os.networkInterfaces lists is up. */
export async function listNics(): Promise<Nic[]> {
  const nics: Nic[] = [];
  const byName = new Map<string, InterfaceAddress[]>();
  for (const a of interfaceAddresses()) byName.set(a.name, [...(byName.get(a.name) ?? []), a]);
  for (const [name, addrs] of byName) {
    const v4 = addrs.filter((a) => a.family === 'IPv4');
    const loopback = addrs.some((a) => a.internal);
    let flags: number | undefined;
    try {
      flags = parseInt((await fsp.readFile(`/sys/class/net/${name}/flags`, 'utf8')).trim(), 16);
    } catch {
      flags = undefined;
    }
    const known = flags !== undefined && Number.isFinite(flags);
    nics.push({
      name,
      addresses: v4.map((a) => a.address),
      up: known ? (flags! & IFF_UP) !== 0 : true,
      multicast: known ? (flags! & IFF_MULTICAST) !== 0 : !loopback,
      loopback,
    });
  }
  return nics;
}

/**
 * The interfaces to beacon on, and a problem (key → message) per wanted one that cannot be
 * used. By default: every interface that is up, multicast-capable and has IPv4, loopback
 * only when there is nothing else (a lone host still finds the nodes running on it).
 */
export async function chooseInterfaces(wanted: string[] | undefined): Promise<{ links: Array<{ name: string; address: string }>; problems: Map<string, string> }> {
  const nics = await listNics();
  const links: Array<{ name: string; address: string }> = [];
  const problems = new Map<string, string>();
  const add = (name: string, address: string): void => {
    if (!links.some((l) => l.address === address)) links.push({ name, address });
  };
  if (wanted) {
    for (const w of wanted) {
      const nic = isIPv4(w) ? nics.find((n) => n.addresses.includes(w)) : nics.find((n) => n.name === w);
      if (!nic) problems.set(`iface:${w}`, isIPv4(w) ? `${w} is not an address of any interface here` : `no interface named ${w} (or it has no address)`);
      else if (nic.addresses.length === 0) problems.set(`iface:${w}`, `interface ${w} has no IPv4 address`);
      else if (!nic.up) problems.set(`iface:${w}`, `interface ${nic.name} is down`);
      else add(nic.name, isIPv4(w) ? w : nic.addresses[0]!);
    }
    return { links, problems };
  }
  const up = nics.filter((n) => n.up && n.addresses.length > 0);
  const lan = up.filter((n) => !n.loopback && n.multicast);
  for (const n of lan.length > 0 ? lan : up.filter((n) => n.loopback)) add(n.name, n.addresses[0]!);
  if (links.length === 0) problems.set('iface:*', 'no usable IPv4 interface (up, multicast-capable, with an IPv4 address)');
  return { links, problems };
}
