/**
 * Gates for tests that need a private network namespace. `npm test` (dist/test/run.js)
 * runs mocha inside one that holds only `lo`, so multicast sent there never reaches the
 * host's real network; outside it, such tests must skip.
 */

/** True inside the private network namespace that dist/test/run.js sets up. */
export function inPrivateNetns(): boolean {
  return process.env.SHOAL_NETNS === '1';
}

/** Why a namespace-only test skipped, for the skip message. */
export const NETNS_SKIP_REASON =
  'needs the private network namespace of `npm test` (node dist/test/run.js); multicast is never sent on the host network';
