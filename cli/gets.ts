import os from 'node:os';
import { AmbiguousTargetError, BadTargetError, MagnetError, MetainfoError, SelectionError, type DownloadInfo, type Logger, type Node } from '../network/index.js';

/** How `node-cli` reports on its `--get`s: a JSON event or a plain line (see main.ts). */
export type Emit = (event: string, data: Record<string, unknown>, text: string) => void;

/** A `--get` that had no peer and received no byte within its time. */
export class NoSourceError extends Error {
  override name = 'NoSourceError';
}

export interface GetsInit {
  node: Node;
  log: Logger;
  emit: Emit;
  /** How long a target may take to resolve, and a started download to find a source. */
  resolveTimeoutMs: number;
  /** `--exit-when-done`: a download without a source fails (and its empty .part goes); else it keeps waiting. */
  exitWhenDone: boolean;
  /** True once the node is stopping: retries give up quietly. */
  stopping(): boolean;
  /** --only: the files of each target to fetch (every file when empty). */
  only?: string[];
}

const POLL_MS = 500;

/**
 * The `--get` targets of one run: each is resolved (retried while peers come up), then waited
 * for until its file is verified. A download that finds no peer and gets no byte within
 * `--resolve-timeout` fails with a NoSourceError instead of waiting silently for ever; a
 * signal that ends the run first names every target still unfinished.
 */
export class Gets {
  /** Targets not finished yet, with their infohash once the download runs. */
  private readonly pending = new Map<string, string | null>();

  constructor(private readonly init: GetsInit) {}

  /** Run every target; resolves true when all of them completed. Failures are emitted as `failed`. */
  async run(targets: string[]): Promise<boolean> {
    const results = await Promise.all(
      targets.map((t) =>
        this.get(t).then(
          () => true,
          (err: Error) => {
            if (this.init.stopping()) return false; // interrupted(): already said
            this.pending.delete(t);
            this.init.emit('failed', { target: t, error: err.message }, `failed ${t}: ${err.message}`);
            return false;
          },
        ),
      ),
    );
    return results.every(Boolean);
  }

  /**
   * A signal stops the run: one `failed` per target left unfinished, and the conventional
   * status 128 + signal number (130 for SIGINT, 143 for SIGTERM). 0 when nothing was pending.
   */
  interrupted(signal: NodeJS.Signals): number {
    if (this.pending.size === 0) return 0;
    for (const [target, infohash] of this.pending) {
      const d = infohash === null ? undefined : this.info(infohash);
      const how = d ? `${percent(d)}% verified` : 'not started yet';
      const error = `interrupted by ${signal} before it finished (${how})`;
      this.init.emit('failed', { target, ...(infohash !== null && { infohash }), error }, `failed ${target}: ${error}`);
    }
    this.pending.clear();
    return 128 + (os.constants.signals[signal as keyof typeof os.constants.signals] ?? 0);
  }

  /** Resolve a target, retrying while peers come up, then wait for the verified file. */
  private async get(target: string): Promise<void> {
    const { node, log, resolveTimeoutMs } = this.init;
    this.pending.set(target, null);
    const deadline = Date.now() + resolveTimeoutMs;
    let infohash: string;
    for (;;) {
      try {
        infohash = await node.download(target, { only: this.init.only });
        break;
      } catch (err) {
        // A target that can never work is final; anything else (nobody has it yet, a peer did not answer) may change.
        const final = err instanceof BadTargetError || err instanceof MagnetError || err instanceof MetainfoError || err instanceof AmbiguousTargetError || err instanceof SelectionError;
        if (final || this.init.stopping() || Date.now() >= deadline) throw err;
        log.debug({ target, err: (err as Error).message }, 'not resolvable yet; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    this.pending.set(target, infohash);
    // A download that started late in the resolve time still gets a few seconds to dial.
    const sourceDeadline = Math.max(deadline, Date.now() + Math.min(resolveTimeoutMs, 5000));
    const watch = new AbortController();
    try {
      await Promise.race([node.whenDone(infohash), this.sourceWatch(target, infohash, sourceDeadline, watch.signal)]);
    } catch (err) {
      // Nothing verified is kept for a later start: an empty .part would only resume a failed --get.
      if (err instanceof NoSourceError && this.info(infohash)?.verified === 0) await node.cancel(infohash).catch(() => false);
      throw err;
    } finally {
      watch.abort();
    }
    this.pending.delete(target);
  }

  /**
   * Rejects with NoSourceError when the download has had no peer and no byte by `deadline`;
   * never settles otherwise (whenDone decides). Without --exit-when-done it only says so.
   */
  private async sourceWatch(target: string, infohash: string, deadline: number, signal: AbortSignal): Promise<never> {
    let reached = false;
    while (!signal.aborted) {
      const d = this.info(infohash);
      if (d && (d.peers > 0 || d.downloaded > 0 || d.state !== 'downloading')) reached = true;
      if (!reached && Date.now() >= deadline) {
        const seconds = Math.round(this.init.resolveTimeoutMs / 1000);
        if (!this.init.exitWhenDone) {
          this.init.emit('waiting', { target, infohash }, `waiting ${target}: no peer or tracker has answered after ${seconds} s; still trying (cancel ${infohash} to give up)`);
          return new Promise<never>(() => {});
        }
        throw new NoSourceError(`no source: no peer or tracker answered within ${seconds} s (--resolve-timeout)`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    return new Promise<never>(() => {});
  }

  private info(infohash: string): DownloadInfo | undefined {
    return this.init.node.listDownloads().find((x) => x.infohash === infohash);
  }
}

export const percent = (d: Pick<DownloadInfo, 'verified' | 'pieces'>) => ((100 * d.verified) / Math.max(1, d.pieces)).toFixed(1);
