import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { Writable } from 'node:stream';

export type { Logger };

export interface LoggerInit {
  level?: string;
  name?: string;
  /** Human-readable lines (default) or raw JSON lines. */
  json?: boolean;
  /** File descriptor to write to; 2 (stderr) by default. */
  fd?: number;
  /**
   * Where human-readable lines go instead of `fd`: a front end that owns the terminal (the
   * console's live view) prints them above its progress bars. Colours as on a terminal.
   */
  lines?: (text: string) => void;
}

/**
 * The node's logger. Remote misbehaviour is logged at `warn`, local failures at `error`;
 * `SHOAL_LOG` (trace..silent) overrides the level, which is how tests and benchmarks quiet it.
 */
export function createLogger(init: LoggerInit = {}): Logger {
  const level = process.env.SHOAL_LOG ?? init.level ?? 'info';
  const fd = init.fd ?? 2;
  if (init.json) return pino({ level, name: init.name }, pino.destination({ fd, sync: true }));
  const lines = init.lines;
  const destination = lines
    ? new Writable({
        write(chunk: Buffer, _enc, done) {
          lines(chunk.toString().replace(/\n+$/, ''));
          done();
        },
      })
    : fd;
  const stream = pretty({
    destination,
    sync: true,
    colorize: lines !== undefined || process.stderr.isTTY === true,
    translateTime: 'HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
  return pino({ level, name: init.name }, stream);
}

/** A logger that drops everything: for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Warnings about what remote clients send, at most `perMinute` a minute: the rest are
 * counted and summarised in one line when the next minute starts, so a flood of bad
 * requests cannot flood the log.
 */
export class WarnLimiter {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    readonly perMinute: number,
  ) {}

  warn(fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - this.windowStart >= 60_000) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed }, 'more bad requests in the last minute were not logged');
      this.windowStart = now;
      this.count = 0;
      this.suppressed = 0;
    }
    if (this.count++ < this.perMinute) this.log.warn(fields, msg);
    else this.suppressed++;
  }
}
