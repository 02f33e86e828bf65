/**
 * What the running program is called and which version of Shoal it is. Every entry point
 * (node-cli, web, bootstrap, and the `shoal` launcher in front of them) answers --version with
 * VERSION and names itself in its one-line errors with `programName`: `shoal node` when the
 * launcher started it, `node-cli` when run directly.
 */
import { readFileSync } from 'node:fs';

/** The version in package.json (compiled code lives in dist/network/util, three levels below it). */
export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
})();

let launchedAs: string | undefined;

/** Called by the launcher before it starts an entry point: `shoal node`, `shoal web`, ... */
export function setProgramName(name: string): void {
  launchedAs = name;
}

/** The name this program goes by: what the launcher set, else the entry point's own. */
export function programName(own: string): string {
  return launchedAs ?? own;
}
