/**
 * Piece digests of files already hashed, kept on disk so that a restart does not
 * rehash unchanged files. An entry is valid only for the exact absolute path, size,
 * mtime and piece length it was computed for.
 *
 * One JSON file, loaded once, rewritten atomically (temp file + rename) at most every
 * `debounceMs`; a cache that cannot be read is a cache that is empty, never a crash.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { silentLogger, type Logger } from '../util/log.js';

export interface HashCacheInit {
  file: string;
  logger?: Logger;
  /** Longest delay between a change and its save; default DEFAULT_CACHE_DEBOUNCE_MS. */
  debounceMs?: number;
}

export interface CacheKey {
  /** Absolute path. */
  path: string;
  size: number;
  mtimeMs: number;
  /** The change time: a file rewritten in place and given its old mtime back still has a new one. */
  ctimeMs: number;
  pieceLength: number;
}

export const DEFAULT_CACHE_DEBOUNCE_MS = 500;

const Entry = z.object({
  path: z.string().min(1),
  size: z.number().int().nonnegative(),
  mtimeMs: z.number(),
  /** Absent in caches written before it was kept: such an entry matches any ctime. */
  ctimeMs: z.number().optional(),
  pieceLength: z.number().int().positive(),
  /** Base64 of the concatenated 20-byte digests. */
  pieces: z.string(),
});
type Entry = z.infer<typeof Entry>;
const CacheFile = z.object({ version: z.literal(1), entries: z.array(z.unknown()) });

/** Stats on save run this many at a time. */
const STAT_BATCH = 64;

export class HashCache {
  private readonly file: string;
  private readonly log: Logger;
  private readonly debounceMs: number;
  /** Keyed by pieceLength + path: the same file may be cached at two piece lengths. */
  private readonly entries = new Map<string, Entry>();
  private loading: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private dirty = false;
  /** Saves run one after another, never two at once on the same temp name space. */
  private saving: Promise<void> = Promise.resolve();

  constructor(init: HashCacheInit) {
    this.file = path.resolve(init.file);
    this.log = init.logger ?? silentLogger();
    this.debounceMs = init.debounceMs ?? DEFAULT_CACHE_DEBOUNCE_MS;
  }

  /** Read the cache file. Idempotent; a missing file is an empty cache, a bad one is logged. */
  load(): Promise<void> {
    this.loading ??= this.read();
    return this.loading;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The digests cached for exactly this file state, or undefined. */
  get(key: CacheKey): Buffer | undefined {
    const e = this.entries.get(keyOf(key));
    if (!e || e.size !== key.size || e.mtimeMs !== key.mtimeMs || (e.ctimeMs !== undefined && e.ctimeMs !== key.ctimeMs)) return undefined;
    return Buffer.from(e.pieces, 'base64');
  }

  set(key: CacheKey, pieces: Buffer): void {
    this.entries.set(keyOf(key), { ...key, path: path.resolve(key.path), pieces: pieces.toString('base64') });
    this.schedule();
  }

  /** Forget every entry of a path (at any piece length). */
  delete(file: string): void {
    const abs = path.resolve(file);
    for (const [k, e] of this.entries) if (e.path === abs) this.entries.delete(k);
    this.schedule();
  }

  /** Save now if anything changed, and wait for every save to finish. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.dirty) this.saving = this.saving.then(() => this.save());
    await this.saving;
  }

  private schedule(): void {
    this.dirty = true;
    // Not reset by later changes: a steady stream of changes still saves every debounceMs.
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.saving = this.saving.then(() => this.save());
    }, this.debounceMs);
    this.timer.unref();
  }

  private async read(): Promise<void> {
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn({ file: this.file, err: (err as Error).message }, 'hash cache unreadable: starting empty');
      return;
    }
    let parsed: z.infer<typeof CacheFile>;
    try {
      parsed = CacheFile.parse(JSON.parse(text));
    } catch (err) {
      this.log.warn({ file: this.file, err: (err as Error).message.slice(0, 200) }, 'hash cache corrupt: starting empty');
      return;
    }
    let bad = 0;
    for (const raw of parsed.entries) {
      const e = Entry.safeParse(raw);
      if (e.success && path.isAbsolute(e.data.path) && validPieces(e.data)) this.entries.set(keyOf(e.data), e.data);
      else bad++;
    }
    if (bad > 0) this.log.warn({ file: this.file, bad }, 'hash cache: dropped invalid entries');
  }

  private async save(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    await this.dropStale();
    const body = JSON.stringify({ version: 1, entries: [...this.entries.values()] });
    const tmp = `${this.file}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await fsp.mkdir(path.dirname(this.file), { recursive: true });
      await fsp.writeFile(tmp, body);
      await fsp.rename(tmp, this.file);
    } catch (err) {
      // Losing the cache costs a rehash, not data: warn and carry on.
      this.log.warn({ file: this.file, err: (err as Error).message }, 'could not save hash cache');
      await fsp.rm(tmp, { force: true }).catch(() => {});
    }
  }

  /** Drop entries whose file is gone or no longer matches (size, mtime or ctime changed). */
  private async dropStale(): Promise<void> {
    const list = [...this.entries];
    for (let i = 0; i < list.length; i += STAT_BATCH) {
      await Promise.all(
        list.slice(i, i + STAT_BATCH).map(async ([k, e]) => {
          const st = await fsp.lstat(e.path).catch(() => null);
          // Compare with the live entry: it may have been replaced while we were stating.
          const stale = !st || !st.isFile() || st.size !== e.size || st.mtimeMs !== e.mtimeMs || (e.ctimeMs !== undefined && st.ctimeMs !== e.ctimeMs);
          if (stale && this.entries.get(k) === e) this.entries.delete(k);
        }),
      );
    }
  }
}

function keyOf(k: { path: string; pieceLength: number }): string {
  return `${k.pieceLength}\0${path.resolve(k.path)}`;
}

function validPieces(e: Entry): boolean {
  const count = e.size === 0 ? 0 : Math.ceil(e.size / e.pieceLength);
  return Buffer.byteLength(e.pieces, 'base64') === count * 20;
}
