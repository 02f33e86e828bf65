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
  await sweepOnce(path.dirname(file));
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

/** Temporary siblings older than this were left by a process killed mid-write (kill -9, a power cut). */
export const STALE_TEMP_MS = 60_000;
const TEMP = /\.tmp-[0-9a-f]{8}$/;
const swept = new Set<string>();

/**
 * The first write into a folder in this process removes the temporary files a killed
 * process left there. Only old ones: a write of another process may be under way (two
 * nodes never share a folder: the folder lock sees to that, but other programs might).
 */
async function sweepOnce(dir: string): Promise<void> {
  if (swept.has(dir)) return;
  swept.add(dir);
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  const now = Date.now();
  await Promise.all(
    names
      .filter((n) => TEMP.test(n))
      .map(async (n) => {
        const p = path.join(dir, n);
        const st = await fsp.lstat(p).catch(() => null);
        if (st?.isFile() && now - st.mtimeMs > STALE_TEMP_MS) await fsp.rm(p, { force: true });
      }),
  );
}
