/**
 * Where the bootstrap registry survives a restart: one JSON file, written atomically,
 * debounced after changes and at close. What is read back is schema-checked like any
 * request; a damaged file is kept as `<file>.bad` and the registry starts empty.
 */
import { promises as fsp } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../network/util/atomic.js';
import type { Logger } from '../network/util/log.js';
import { DownloadSchema, FileEntrySchema, HostSchema, InstanceSchema, NodeIdSchema } from '../network/wire/bootstrap-api.js';
import type { NodeRecord } from './registry.js';

export const DEFAULT_SAVE_DELAY_MS = 500;

const PersistedNodeSchema = z.object({
  id: NodeIdSchema,
  instance: InstanceSchema,
  name: z.string().max(64),
  host: HostSchema,
  port: z.number().int().min(1).max(65535),
  source: z.string().min(1).max(64),
  files: z.array(FileEntrySchema),
  downloads: z.array(DownloadSchema),
  registeredAt: z.number(),
  lastSeen: z.number(),
});
const PersistedSchema = z.object({ version: z.literal(1), savedAt: z.number(), nodes: z.array(PersistedNodeSchema) });

export type PersistedNode = z.output<typeof PersistedNodeSchema>;

export interface RegistryFileInit {
  path: string;
  /** The nodes to write, read at save time. */
  nodes: () => Iterable<NodeRecord>;
  logger: Logger;
  now: () => number;
  saveDelayMs?: number;
}

export class RegistryFile {
  readonly path: string;
  private saveTimer: NodeJS.Timeout | null = null;
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(private readonly init: RegistryFileInit) {
    this.path = init.path;
  }

  /** The saved nodes; null when there is no file yet, or it was damaged (and is now `.bad`). */
  async read(): Promise<PersistedNode[] | null> {
    const file = this.path;
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      const result = PersistedSchema.safeParse(JSON.parse(text));
      if (!result.success) throw new Error(result.error.issues[0]?.message ?? 'invalid');
      return result.data.nodes;
    } catch (err) {
      this.init.logger.error({ file, err: (err as Error).message }, `registry file is damaged: starting empty, kept it as ${file}.bad`);
      await fsp.rename(file, `${file}.bad`).catch(() => {});
      return null;
    }
  }

  /** The registry changed: write it soon. */
  changed(): void {
    this.dirty = true;
    if (!this.saveTimer) {
      this.saveTimer = setTimeout(() => void this.save(), this.init.saveDelayMs ?? DEFAULT_SAVE_DELAY_MS);
      this.saveTimer.unref();
    }
  }

  /** What is on disk is what the registry holds (just loaded): nothing to write. */
  inStep(): void {
    this.dirty = false;
    this.cancelTimer();
  }

  /** Write now (after any write in progress), if anything changed. */
  save(): Promise<void> {
    this.cancelTimer();
    this.saving = this.saving.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const nodes = [...this.init.nodes()].map((r) => ({
        id: r.id, instance: r.instance, name: r.name, host: r.host, port: r.port, source: r.source,
        files: r.files, downloads: r.downloads, registeredAt: r.registeredAt, lastSeen: r.lastSeen,
      }));
      try {
        await writeFileAtomic(this.path, JSON.stringify({ version: 1, savedAt: this.init.now(), nodes }));
      } catch (err) {
        this.dirty = true;
        this.init.logger.error({ file: this.path, err: (err as Error).message }, 'could not save the registry');
      }
    });
    return this.saving;
  }

  private cancelTimer(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
  }
}
