import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Write a file so that a reader (or the next start after a kill -9) sees either the old
 * content or the new, never half of one: write a temporary sibling, then rename over.
 * `mode` sets the file's permissions exactly (0o600 for a secret); otherwise the umask's.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    // A secret is never readable by others, not even for the moment before a chmod.
    await fsp.writeFile(tmp, data, { mode: opts.mode ?? 0o666 });
    if (opts.mode !== undefined) await fsp.chmod(tmp, opts.mode); // the umask may have taken bits away
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}
