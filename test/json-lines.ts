/**
 * A child process that reports JSON lines on stdout (test/lt_peer.py, test/webtorrent-peer.ts):
 * keeps every event, and waits for the first one that matches, failing at once when the
 * process exits first, with its last stderr and events in the message.
 */
import type { ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export interface JsonEvent {
  event: string;
  [field: string]: unknown;
}

export interface JsonLinesChild {
  child: ChildProcess;
  events: JsonEvent[];
  /** Resolves with the first event for which `pred` holds; rejects after `ms` or when the process exits first. */
  waitFor(pred: (e: JsonEvent) => boolean, ms: number, what: string): Promise<JsonEvent>;
  exited: Promise<number | null>;
  stderr(): string;
}

export function jsonLines(child: ChildProcess, who: string): JsonLinesChild {
  const events: JsonEvent[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as JsonEvent);
    } catch {
      return;
    }
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      resolve(code);
      for (const w of [...waiters]) w();
    }),
  );
  const waitFor = (pred: (e: JsonEvent) => boolean, ms: number, what: string): Promise<JsonEvent> =>
    new Promise((resolve, reject) => {
      const done = (): void => {
        const hit = events.find(pred);
        if (hit) {
          finish();
          resolve(hit);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          finish();
          reject(new Error(`${who} exited (${child.exitCode ?? child.signalCode}) before ${what}: ${stderr || JSON.stringify(events.slice(-3))}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${who}: no ${what} within ${ms} ms (last: ${JSON.stringify(events.slice(-2))}) ${stderr}`));
      }, ms);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
      };
      waiters.add(done);
      done();
    });
  return { child, events, waitFor, exited, stderr: () => stderr };
}
