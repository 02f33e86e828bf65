/**
 * What a node lets a user change while it runs (the dashboard's Settings page, PATCH
 * /api/settings): the upload rate limit, the shared folders, the discovery sources
 * (multicast on or off, the bootstrap server), and the dashboard's access token (rotated).
 *
 * A change is checked whole, then written to the config file, then applied: a change the
 * file cannot keep is not made, so what runs is what the next start runs. Keys the command
 * line set still win at a start; `fromCommandLine` names them, so a page can say so.
 * Changes run one at a time.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from '../util/log.js';
import { describeIssue } from '../util/http-error.js';
import type { NodeInit } from '../node-init.js';
import { saveConfigKeys, CONFIG_FILE_NAME, type ConfigKey } from './config-file.js';
import { AccessTokenStore } from './access-token.js';

/** The most folders a node shares besides its downloads folder. */
export const MAX_SHARED_FOLDERS = 64;
/** 1 TiB/s: above any link, below any rounding trouble. */
export const MAX_RATE = 2 ** 40;

/** A setting that cannot be taken as given (the value is wrong, the folder is missing): the caller's to fix. */
export class SettingsError extends Error {
  override name = 'SettingsError';
}

/**
 * A change of settings, every field optional. `shared` is the whole new list of folders
 * (absolute paths). Room is left for a download rate limit: one more field beside
 * `maxUploadRate`, one more key of the config file.
 */
export const SettingsChangeSchema = z.strictObject({
  /** Upload limit of the whole node in bytes per second; 0 = none. */
  maxUploadRate: z.number().int('a whole number of bytes per second').min(0).max(MAX_RATE).optional(),
  /** The folders to share besides the downloads folder (which always is), absolute paths. */
  shared: z.array(z.string().min(1).max(4096)).max(MAX_SHARED_FOLDERS).optional(),
  /** LAN discovery by multicast beacons. */
  multicast: z.boolean().optional(),
  /** The bootstrap server (http://host:port), or null for none. */
  bootstrap: z.string().regex(/^https?:\/\/[^/\s]+/, 'must be an http(s) URL').max(2048).nullable().optional(),
});
export type SettingsChange = z.output<typeof SettingsChangeSchema>;

/** A node's settings as they are now. */
export interface NodeSettings {
  maxUploadRate: number;
  shared: string[];
  /** The downloads folder: always shared, set at start only. */
  downloads: string;
  multicast: boolean;
  bootstrap: string | null;
  /** Where changes are kept. */
  configFile: string;
  /** Keys the command line set: at the next start they win over what is kept in the file. */
  fromCommandLine: string[];
}

/** The parts a change reaches. */
export interface SettingsTargets {
  uploadRate: { get(): number; set(bytesPerSecond: number): void };
  addFolder(dir: string): Promise<void>;
  removeFolder(dir: string): Promise<void>;
  /** Restart discovery with these sources. */
  discovery(sources: { multicast: boolean; bootstrap: string | null }): Promise<void>;
}

export interface SettingsInit {
  /** How the node was started: its shared folders, discovery sources, config file. */
  node: Pick<NodeInit, 'sharedDir' | 'multicast' | 'bootstrap' | 'configFile' | 'fromCommandLine'>;
  stateDir: string;
  downloadDir: string;
  targets: SettingsTargets;
  /** After every change that was made. */
  changed(settings: NodeSettings): void;
  log: Logger;
}

export class Settings {
  readonly configFile: string;
  private readonly fromCommandLine: string[];
  private shared: string[];
  private multicast: boolean;
  private bootstrap: string | null;
  private readonly tokens: AccessTokenStore;
  private token: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly init: SettingsInit) {
    const n = init.node;
    this.configFile = path.resolve(n.configFile ?? path.join(init.stateDir, CONFIG_FILE_NAME));
    this.fromCommandLine = [...(n.fromCommandLine ?? [])];
    this.shared = [...new Set((typeof n.sharedDir === 'string' ? [n.sharedDir] : n.sharedDir).map((d) => path.resolve(d)))];
    this.multicast = n.multicast !== false;
    this.bootstrap = n.bootstrap ?? null;
    this.tokens = new AccessTokenStore(init.stateDir, init.log);
  }

  get(): NodeSettings {
    return {
      maxUploadRate: this.init.targets.uploadRate.get(),
      shared: [...this.shared],
      downloads: this.init.downloadDir,
      multicast: this.multicast,
      bootstrap: this.bootstrap,
      configFile: this.configFile,
      fromCommandLine: [...this.fromCommandLine],
    };
  }

  /** The shared folders now (absolute), besides the downloads folder. */
  get sharedFolders(): string[] {
    return [...this.shared];
  }

  /** The discovery sources to run. */
  get sources(): { multicast: boolean; bootstrap: string | null } {
    return { multicast: this.multicast, bootstrap: this.bootstrap };
  }

  /**
   * Check, keep and apply a change (`unknown`: straight from a request). SettingsError for a
   * value that cannot be taken, ConfigError when the config file cannot keep it; either way
   * nothing changed.
   */
  change(input: unknown): Promise<NodeSettings> {
    return this.serial(async () => {
      const r = SettingsChangeSchema.safeParse(input);
      if (!r.success) {
        const issue = r.error.issues[0];
        if (issue?.code === 'unrecognized_keys') throw new SettingsError(`unknown setting "${issue.keys[0]}" (the settings are ${Object.keys(SettingsChangeSchema.shape).join(', ')})`);
        throw new SettingsError(describeIssue(r.error));
      }
      const c = r.data;
      const now = this.get();
      const next = {
        maxUploadRate: c.maxUploadRate ?? now.maxUploadRate,
        shared: c.shared === undefined ? now.shared : await this.checkFolders(c.shared),
        multicast: c.multicast ?? now.multicast,
        bootstrap: c.bootstrap === undefined ? now.bootstrap : c.bootstrap === null ? null : c.bootstrap.replace(/\/+$/, ''),
      };
      const save: Partial<Record<ConfigKey, unknown>> = {};
      if (next.maxUploadRate !== now.maxUploadRate) save.maxUploadRate = next.maxUploadRate;
      if (next.shared.join('\n') !== now.shared.join('\n')) save.shared = next.shared;
      if (next.multicast !== now.multicast) save.multicast = next.multicast;
      if (next.bootstrap !== now.bootstrap) save.bootstrap = next.bootstrap ?? undefined;
      const keys = Object.keys(save);
      if (keys.length === 0) return now;
      await saveConfigKeys(this.configFile, save);

      const t = this.init.targets;
      if ('maxUploadRate' in save) t.uploadRate.set(next.maxUploadRate);
      if ('shared' in save) {
        const [before, after] = [new Set(now.shared), new Set(next.shared)];
        this.shared = next.shared;
        for (const d of now.shared) if (!after.has(d)) await t.removeFolder(d);
        for (const d of next.shared) if (!before.has(d)) await t.addFolder(d);
      }
      if ('multicast' in save || 'bootstrap' in save) {
        [this.multicast, this.bootstrap] = [next.multicast, next.bootstrap];
        await t.discovery(this.sources);
      }
      const settings = this.get();
      this.init.log.info({ changed: keys, file: this.configFile }, 'settings changed');
      this.init.changed(settings);
      return settings;
    });
  }

  /** The dashboard's access token, the same across restarts (kept in the state folder). */
  accessToken(): string {
    this.token ??= this.tokens.load();
    return this.token;
  }

  /**
   * A new access token, kept in the state folder; an `httpToken` in the config file, which
   * would bring the old one back at the next start, is removed from it first.
   */
  rotateAccessToken(): Promise<string> {
    return this.serial(async () => {
      await saveConfigKeys(this.configFile, { httpToken: undefined });
      this.token = await this.tokens.rotate();
      this.init.log.info({ file: this.tokens.file }, 'dashboard access token rotated');
      return this.token;
    });
  }

  /** The new list of shared folders, each absolute, existing, and not the node's own. */
  private async checkFolders(dirs: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const d of dirs) {
      const where = `field "shared": ${JSON.stringify(d)}`;
      if (!path.isAbsolute(d)) throw new SettingsError(`${where}: not an absolute path`);
      const abs = path.resolve(d);
      if (out.includes(abs)) continue;
      const { downloadDir, stateDir } = this.init;
      if (abs === downloadDir) throw new SettingsError(`${where}: the downloads folder is always shared`);
      if (abs === stateDir || abs.startsWith(stateDir + path.sep)) throw new SettingsError(`${where}: that is the node's state folder`);
      if (!this.shared.includes(abs)) {
        const st = await fsp.stat(abs).catch((err: NodeJS.ErrnoException) => err);
        if (st instanceof Error) throw new SettingsError(`${where}: ${st.code === 'ENOENT' ? 'no such folder' : st.message}`);
        if (!st.isDirectory()) throw new SettingsError(`${where}: not a folder`);
      }
      out.push(abs);
    }
    return out;
  }

  /** Run `job` after every change before it. */
  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => {});
    return run;
  }
}
