/**
 * The monitor's access token: given (`--monitor-token`), or generated once and kept in the
 * data dir (`monitor-token`, readable by its owner only) so it stays the same across
 * restarts. Deleting the file rotates it at the next start. A file that does not hold a
 * token is an error, never overwritten: it may be the operator's own.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

export const MONITOR_TOKEN_FILE = 'monitor-token';
/** What a token may look like: printable ASCII without spaces, so it fits a URL, a header and a cookie. */
export const MONITOR_TOKEN_PATTERN = /^[\x21-\x7e]{8,256}$/;

/** The token file cannot be read, written, or does not hold a token: the message names it. */
export class MonitorTokenError extends Error {
  override name = 'MonitorTokenError';
}

/** 32 URL-safe characters (192 bits). */
export function generateMonitorToken(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * The token in `<dataDir>/monitor-token`, created on first use. Throws with the file's
 * name when it cannot be read or written, or does not hold a token.
 */
export async function loadMonitorToken(dataDir: string): Promise<string> {
  const file = path.join(dataDir, MONITOR_TOKEN_FILE);
  const read = async (): Promise<string | null> => {
    try {
      return (await fsp.readFile(file, 'utf8')).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new MonitorTokenError(`${file}: cannot read the monitor token: ${(err as Error).message}`);
    }
  };
  let token = await read();
  if (token === null) {
    const fresh = generateMonitorToken();
    try {
      await fsp.mkdir(dataDir, { recursive: true });
      // Created, never replaced: `wx` fails if another start made it in between.
      await fsp.writeFile(file, `${fresh}\n`, { mode: 0o600, flag: 'wx' });
      token = fresh;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new MonitorTokenError(`${file}: cannot save the monitor token: ${(err as Error).message}`);
      token = await read();
    }
  }
  if (token === null || !MONITOR_TOKEN_PATTERN.test(token))
    throw new MonitorTokenError(`${file} does not hold a monitor token (8 to 256 printable characters without spaces): fix it, or delete it to get a new one`);
  return token;
}
