import type { Logger } from '../network/index.js';

/** Something to stop on the way out, named for the log when its stop fails. */
export interface StopStep {
  what: string;
  stop: () => Promise<unknown> | unknown;
}

export interface Shutdown {
  /** Stop every step once, in order, then exit with `code`. */
  (code: number): Promise<never>;
  /** True once a shutdown has begun (a retry loop should give up). */
  readonly stopping: boolean;
}

/** A stop that hangs this long exits anyway. */
export const FORCE_EXIT_MS = 10_000;

/**
 * The clean exit both mains share (node-cli, web): SIGTERM and a first Ctrl-C stop the
 * steps in order and exit with what `onSignal` says (0 for a node stopped on purpose; an
 * `--exit-when-done` run cut short says 130 or 143 and what it left unfinished); a second
 * Ctrl-C exits 130 at once.
 */
export function shutdownOnSignals(log: Logger, steps: StopStep[], onSignal: (signal: NodeJS.Signals) => number = () => 0): Shutdown {
  let stopping = false;
  const shutdown = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      setTimeout(() => process.exit(code || 1), FORCE_EXIT_MS).unref();
      for (const { what, stop } of steps) {
        try {
          await stop();
        } catch (err) {
          log.error({ err: (err as Error).message }, `error while stopping ${what}`);
        }
      }
    }
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(stopping ? 130 : onSignal('SIGINT')));
  process.on('SIGTERM', () => void shutdown(stopping ? 143 : onSignal('SIGTERM')));
  return Object.defineProperty(shutdown, 'stopping', { get: () => stopping }) as Shutdown;
}
