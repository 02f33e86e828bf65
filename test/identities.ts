/** Node identities for tests, one per name for the whole run, so a test can say `idOf('a')`. */
import { Identity } from '../network/security/identity.js';

const byName = new Map<string, Identity>();

/** The identity called `name` in this test run (made at first use). */
export function named(name: string): Identity {
  let who = byName.get(name);
  if (!who) byName.set(name, (who = Identity.generate()));
  return who;
}

/** The node id of the identity called `name`. */
export function idOf(name: string): string {
  return named(name).id;
}
