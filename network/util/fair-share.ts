import { isIP } from 'node:net';
import { normalizeAddress } from './addresses.js';

/**
 * Who a connection counts against: its IPv4 address, or the /64 of an IPv6 one (one host
 * usually holds a whole /64, so counting single v6 addresses would count nothing).
 */
export function addressGroup(address: string | undefined): string {
  const a = normalizeAddress(address ?? '?');
  if (isIP(a) !== 6) return a;
  return `${expandV6(a).slice(0, 4).join(':')}::/64`;
}

function expandV6(a: string): string[] {
  const noZone = a.split('%')[0]!;
  const [head, tail] = noZone.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  if (tail === undefined) return h;
  const t = tail === '' ? [] : tail.split(':');
  return [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
}

export type Admission<T> = { ok: true; evict?: T } | { ok: false; full: 'address' | 'all'; reason: string };

/**
 * Slots shared fairly between addresses: no address holds more than `perAddress`, and when
 * every slot is taken a newcomer takes the oldest slot of the address that holds the most,
 * if that address holds at least two more than the newcomer's. So one address (or a few)
 * opening connections it never uses cannot lock the others out; it can only fill what
 * nobody else wants.
 */
export class FairShare<T> {
  private readonly byGroup = new Map<string, Set<T>>();
  private readonly groupOf = new Map<T, string>();

  constructor(
    readonly max: number,
    readonly perAddress: number,
    /** What the slots hold, for the reasons given. */
    private readonly noun = 'connections',
  ) {
    if (!(max >= 1 && perAddress >= 1)) throw new RangeError(`slots must be at least 1, got max ${max}, per address ${perAddress}`);
  }

  get size(): number {
    return this.groupOf.size;
  }

  held(address: string | undefined): number {
    return this.byGroup.get(addressGroup(address))?.size ?? 0;
  }

  /**
   * May a newcomer from `address` have a slot? When the answer names a slot to `evict`, the
   * caller closes it and `add`s the newcomer; a refusal says why.
   */
  admit(address: string | undefined): Admission<T> {
    const group = addressGroup(address);
    const mine = this.byGroup.get(group)?.size ?? 0;
    if (mine >= this.perAddress) return { ok: false, full: 'address', reason: `${this.perAddress} ${this.noun} from ${group} already` };
    if (this.size < this.max) return { ok: true };
    let top: Set<T> | undefined;
    for (const set of this.byGroup.values()) if (!top || set.size > top.size) top = set;
    if (!top || top.size < mine + 2) return { ok: false, full: 'all', reason: `all ${this.max} ${this.noun} taken` };
    return { ok: true, evict: top.values().next().value as T };
  }

  add(item: T, address: string | undefined): void {
    if (this.groupOf.has(item)) return;
    const group = addressGroup(address);
    let set = this.byGroup.get(group);
    if (!set) this.byGroup.set(group, (set = new Set()));
    set.add(item);
    this.groupOf.set(item, group);
  }

  delete(item: T): void {
    const group = this.groupOf.get(item);
    if (group === undefined) return;
    this.groupOf.delete(item);
    const set = this.byGroup.get(group)!;
    set.delete(item);
    if (set.size === 0) this.byGroup.delete(group);
  }

  values(): IterableIterator<T> {
    return this.groupOf.keys();
  }
}
