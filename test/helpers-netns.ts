/**
 * Gates for tests that need a private network namespace. `npm test` (dist/test/run.js)
 * runs mocha inside one that holds only `lo`, so multicast sent there never reaches the
 * host's real network; outside it, such tests must skip.
 */
import { execFileSync } from 'node:child_process';

/** True inside the private network namespace that dist/test/run.js sets up. */
export function inPrivateNetns(): boolean {
  return process.env.SHOAL_NETNS === '1';
}

/** Why a namespace-only test skipped, for the skip message. */
export const NETNS_SKIP_REASON =
  'needs the private network namespace of `npm test` (node dist/test/run.js); multicast is never sent on the host network';

/**
 * A veth pair `name` / `name`p in the private namespace, both ends up and `name` holding
 * `cidr`: a second multicast-capable link beside `lo`. Null where the kernel has no veth;
 * otherwise returns what removes the pair again (deleting one end deletes both).
 */
export function addVeth(name: string, cidr: string): (() => void) | null {
  try {
    execFileSync('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`], { stdio: 'pipe' });
  } catch {
    return null;
  }
  execFileSync('ip', ['addr', 'add', cidr, 'dev', name]);
  execFileSync('ip', ['link', 'set', `${name}p`, 'up']);
  execFileSync('ip', ['link', 'set', name, 'up']);
  return () => execFileSync('ip', ['link', 'del', name], { stdio: 'ignore' });
}
