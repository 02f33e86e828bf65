/**
 * Where the bootstrap registry survives a restart: one small file per node
 * (`<dir>/<node id>.json`), each written atomically (network/util/atomic.ts) when that node
 * changes, deleted when it leaves. A change costs the bytes of one node, never those of the
 * whole registry: at half a million files one JSON document of everything no longer even
 * serialises (V8's string limit), and writing it on every change stalled the server for
 * seconds. Writes are debounced and batched (a node that changes ten times in the delay is
 * written once), a few at a time, with the event loop free between them.
 *
 * What is read back is schema-checked like any request; a damaged file is kept as
 * `<file>.bad` and skipped. Node ids are the file names: [A-Za-z0-9_-] only (checked), so
 * no id names a path elsewhere. Plain heartbeats write nothing (loaded nodes get a fresh
 * TTL anyway).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../network/util/atomic.js';
import type { Logger } from '../network/util/log.js';
import { DownloadSchema, FileEntrySchema, HostSchema, InstanceSchema, NodeIdSchema } from '../network/wire/bootstrap-api.js';
import type { NodeRecord } from './registry.js';

export const DEFAULT_SAVE_DELAY_MS = 500;
/** Files written at once. */
const WRITES_AT_ONCE = 8;
const FILE_RE = /^[A-Za-z0-9_-]{1,64}\.json$/;

const PersistedNodeSchema = z.object({
  version: z.literal(2),
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
export type PersistedNode = z.output<typeof PersistedNodeSchema>;

export interface RegistryStoreInit {
  /** The folder of node files. */
  dir: string;
  /** The node's record now, or undefined when it is gone. */
  record: (id: string) => NodeRecord | undefined;
  logger: Logger;
  saveDelayMs?: number;
}

export class RegistryStore {
  readonly dir: string;
  private readonly dirty = new Set<string>();
  private saveTimer: NodeJS.Timeout | null = null;
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly init: RegistryStoreInit) {
    this.dir = init.dir;
  }

  /** Every saved node that reads back whole; damaged files are renamed `.bad` and skipped. */
  async read(): Promise<{ nodes: PersistedNode[]; damaged: number }> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { nodes: [], damaged: 0 };
      throw err;
    }
    const nodes: PersistedNode[] = [];
    let damaged = 0;
    for (const name of names) {
      if (!FILE_RE.test(name)) continue;
      const file = path.join(this.dir, name);
      try {
        const parsed = PersistedNodeSchema.safeParse(JSON.parse(await fsp.readFile(file, 'utf8')));
        if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'invalid');
        if (`${parsed.data.id}.json` !== name) throw new Error(`holds node ${parsed.data.id}`);
        nodes.push(parsed.data);
      } catch (err) {
        damaged++;
        this.init.logger.error({ file, err: (err as Error).message }, `registry: damaged node file, skipped and kept as ${file}.bad`);
        await fsp.rename(file, `${file}.bad`).catch(() => {});
      }
    }
    return { nodes, damaged };
  }

  /** Node `id` changed (or left): write (or delete) its file soon. */
  changed(id: string): void {
    this.dirty.add(id);
    if (!this.saveTimer) {
      this.saveTimer = setTimeout(() => void this.save(), this.init.saveDelayMs ?? DEFAULT_SAVE_DELAY_MS);
      this.saveTimer.unref();
    }
  }

  /** What is on disk is what the registry holds (just loaded): nothing to write. */
  inStep(): void {
    this.dirty.clear();
    this.cancelTimer();
  }

  /** Write every change now (after any write in progress). */
  save(): Promise<void> {
    this.cancelTimer();
    this.saving = this.saving.then(() => this.flush());
    return this.saving;
  }

  private async flush(): Promise<void> {
    const failed: string[] = [];
    while (this.dirty.size > 0) {
      const batch = [...this.dirty].slice(0, WRITES_AT_ONCE);
      for (const id of batch) this.dirty.delete(id);
      const ok = await Promise.all(batch.map((id) => this.writeOne(id)));
      batch.forEach((id, i) => ok[i] || failed.push(id));
    }
    for (const id of failed) this.changed(id); // tried again after the delay
  }

  private async writeOne(id: string): Promise<boolean> {
    const file = path.join(this.dir, `${id}.json`);
    const r = this.init.record(id);
    try {
      if (!r) {
        await fsp.rm(file, { force: true });
        return true;
      }
      const node: PersistedNode = {
        version: 2, id: r.id, instance: r.instance, name: r.name, host: r.host, port: r.port, source: r.source,
        files: r.files, downloads: r.downloads, registeredAt: r.registeredAt, lastSeen: r.lastSeen,
      };
      await writeFileAtomic(file, JSON.stringify(node));
      return true;
    } catch (err) {
      this.init.logger.error({ file, err: (err as Error).message }, 'registry: could not save a node');
      return false;
    }
  }

  private cancelTimer(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
  }
}
