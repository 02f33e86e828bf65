/**
 * Which interfaces multicast beacons go out on. The OS's interface list (util/addresses) does not say
 * whether an interface is up or multicast-capable; on Linux sysfs does.
 */
import { promises as fsp } from 'node:fs';
import { isIPv4 } from 'node:net';
import { interfaceAddresses, isLoopbackAddress, type InterfaceAddress } from '../util/addresses.js';

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

/** A link beacons go out on: an interface and the IPv4 address they are sent from. */
export interface BeaconLink {
  name: string;
  address: string;
}

/**
 * The interfaces to beacon on, and a problem (key → message) per wanted one that cannot be
 * used. Reads the machine's interfaces now; the choice itself is `pickLinks`.
 */
export async function chooseInterfaces(wanted: string[] | undefined, bound?: string): Promise<{ links: BeaconLink[]; problems: Map<string, string> }> {
  return pickLinks(await listNics(), wanted, bound);
}

/**
 * Which links to beacon on (pure). By default: every interface that is up, multicast-capable
 * and has IPv4, loopback only when there is nothing else (a lone host still finds the nodes
 * running on it); `wanted` names them instead.
 *
 * `bound` is the one address the node listens on, when it listens on one only: its beacons
 * then go only where that address is reachable (the interface that holds it, loopback for
 * a loopback address), sent from that address, since a beacon heard anywhere else would
 * make other nodes record an address where nothing listens. A wanted interface elsewhere is
 * a problem, not a link. Beacons name IPv4 addresses only: a node bound to an IPv6 address
 * beacons nowhere.
 */
export function pickLinks(nics: Nic[], wanted: string[] | undefined, bound?: string): { links: BeaconLink[]; problems: Map<string, string> } {
  const links: BeaconLink[] = [];
  const problems = new Map<string, string>();
  const add = (name: string, address: string): void => {
    if (!links.some((l) => l.address === address)) links.push({ name, address });
  };
  if (bound !== undefined) {
    const home = boundLink(nics, bound);
    if (home.problem) problems.set('iface:bound', home.problem);
    // Named interfaces narrow the choice further; they never widen it.
    let named = wanted === undefined;
    for (const w of wanted ?? []) {
      if (home.link && (isIPv4(w) ? w === home.link.address || w === bound : w === home.link.name)) named = true;
      else problems.set(`iface:${w}`, `not beaconing on ${w}: this node listens on ${bound} only${home.link ? `, which is reachable on ${home.link.name} alone` : ''}`);
    }
    if (home.link && named) add(home.link.name, home.link.address);
    return { links, problems };
  }
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

/** The one link where `bound` is reachable, or why there is none. */
function boundLink(nics: Nic[], bound: string): { link?: BeaconLink; problem?: string } {
  if (!isIPv4(bound)) return { problem: `this node listens on ${bound} only, and beacons can name IPv4 addresses only: not beaconing` };
  // Any 127.x address lives on the loopback interface, though it lists 127.0.0.1 only.
  const nic = isLoopbackAddress(bound) ? nics.find((n) => n.loopback && n.addresses.length > 0) : nics.find((n) => n.addresses.includes(bound));
  if (!nic) return { problem: `no interface holds ${bound}, the address this node listens on: not beaconing` };
  if (!nic.up) return { problem: `interface ${nic.name} (${bound}) is down` };
  return { link: { name: nic.name, address: nic.addresses.includes(bound) ? bound : nic.addresses[0]! } };
}
