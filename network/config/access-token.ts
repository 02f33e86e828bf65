/**
 * The dashboard's access token, kept in the state folder (`http-token`, mode 0600) so that
 * the URL a user opened, and every script that sends the token, keep working across
 * restarts. A new one only when rotated. The node keeps it because the state folder is the
 * node's; what it guards is the dashboard's business (web/auth.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { nanoid } from 'nanoid';
import { writeFileAtomic } from '../util/atomic.js';
import type { Logger } from '../util/log.js';
import { ConfigError } from './config-file.js';

export const TOKEN_FILE_NAME = 'http-token';
export const TOKEN_LENGTH = 32;
/** What a token may look like: the rule of --http-token. */
export const TOKEN_PATTERN = /^[\x21-\x7e]{8,256}$/;
/** Readable and writable by the node's user only. */
const SECRET_MODE = 0o600;

export class AccessTokenStore {
  readonly file: string;

  constructor(
    stateDir: string,
    private readonly log: Logger,
  ) {
    this.file = path.join(stateDir, TOKEN_FILE_NAME);
  }

  /**
   * The kept token, or a new one kept from now on. Synchronous: a dashboard reads it once,
   * as it is built. A state folder that cannot be written costs only the token's stability.
   */
  load(): string {
    try {
      const token = fs.readFileSync(this.file, 'utf8').trim();
      if (TOKEN_PATTERN.test(token)) {
        // Written by hand, or copied with other permissions: a secret is for us alone.
        if ((fs.statSync(this.file).mode & 0o777) !== SECRET_MODE) fs.chmodSync(this.file, SECRET_MODE);
        return token;
      }
      this.log.warn({ file: this.file }, 'the kept access token is malformed: making a new one');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ file: this.file, err: (err as Error).message }, 'cannot read the kept access token: making a new one');
    }
    const token = nanoid(TOKEN_LENGTH);
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.tmp`;
      fs.writeFileSync(tmp, `${token}\n`, { mode: SECRET_MODE });
      fs.chmodSync(tmp, SECRET_MODE);
      fs.renameSync(tmp, this.file);
    } catch (err) {
      this.log.warn({ file: this.file, err: (err as Error).message }, 'cannot keep the access token: it changes at the next start');
    }
    return token;
  }

  /** A new token, kept before it is handed out: one that was not saved is never used (ConfigError). */
  async rotate(): Promise<string> {
    const token = nanoid(TOKEN_LENGTH);
    try {
      await writeFileAtomic(this.file, `${token}\n`, { mode: SECRET_MODE });
    } catch (err) {
      throw new ConfigError(this.file, undefined, `cannot keep a new access token (${(err as Error).message})`);
    }
    return token;
  }
}
