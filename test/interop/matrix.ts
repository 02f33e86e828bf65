/**
 * The interop matrix: every case of the interop suite records what happened to it
 * (client × direction × case → pass, fail or skip, with its time) in one JSON file, which
 * `test/interop/write-doc.ts` turns into the table of docs/interop.md. Each test file adds
 * its own rows (read, merge, write), so running one client's file refreshes that client's
 * rows only and keeps the others.
 *
 * The file is `SHOAL_INTEROP_REPORT` when set, else `<tmp>/shoal-interop.json`.
 */
import { execFileSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers.js';

export type Direction = 'to-shoal' | 'from-shoal';
export type Status = 'pass' | 'fail' | 'skip';

export interface Row {
  client: string;
  direction: Direction;
  case: string;
  status: Status;
  /** Seconds from the case's start to its bytes compared (pass) or its failure. */
  seconds?: number;
  /** Why it skipped or failed, or a measurement worth keeping. */
  note?: string;
  /** ISO time of the run. */
  at: string;
}

export interface Report {
  updated: string;
  shoal: { version: string; commit: string };
  /** Client name → the version that ran. */
  clients: Record<string, string>;
  /** `client|direction|case` → row. */
  rows: Record<string, Row>;
  /** Test file → seconds its whole run took (namespace set-up included). */
  files: Record<string, number>;
  /** Anything measured for a target (e.g. the libtorrent magnet start). */
  measurements: Record<string, string>;
}

export function reportPath(): string {
  return process.env.SHOAL_INTEROP_REPORT ?? path.join(os.tmpdir(), 'shoal-interop.json');
}

function shoalIdentity(): { version: string; commit: string } {
  const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    /* not a git checkout */
  }
  return { version, commit };
}

export async function readReport(file = reportPath()): Promise<Report> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as Report;
  } catch {
    return { updated: new Date().toISOString(), shoal: shoalIdentity(), clients: {}, rows: {}, files: {}, measurements: {} };
  }
}

export const rowKey = (r: Pick<Row, 'client' | 'direction' | 'case'>): string => `${r.client}|${r.direction}|${r.case}`;

/** What a case gives the matrix when it passes: a remark or a measurement, and its time when it ran earlier. */
export interface CaseResult {
  note?: string;
  seconds?: number;
}

/** A failure of a case that ran earlier, with the time it took. */
export class CaseError extends Error {
  constructor(
    message: string,
    readonly seconds: number,
  ) {
    super(message);
  }
}

/** What one test file collects and merges into the report when it is done. */
export class Matrix {
  private readonly rows: Row[] = [];
  private readonly clients: Record<string, string> = {};
  private readonly measurements: Record<string, string> = {};
  /** When the file's work began (its `before`): mocha makes every file's Matrix when it loads them all. */
  private startedAt = Date.now();

  constructor(private readonly file: string) {}

  /** The file's own work begins now (call it first in `before`). */
  begin(): void {
    this.startedAt = Date.now();
  }

  client(name: string, version: string): void {
    this.clients[name] = version;
  }

  record(row: Omit<Row, 'at'>): void {
    this.rows.push({ ...row, at: new Date().toISOString() });
  }

  measure(what: string, value: string): void {
    this.measurements[what] = value;
  }

  /**
   * Run one case as a mocha test: a skip reason (feature missing, client missing) records a
   * skip, prints the reason and skips; otherwise the body runs, timed, and records pass or
   * fail (the failure is thrown on to mocha as it is). A body that ran its case earlier (a
   * batch run at once) says how long the case took, in its result or its error.
   */
  async run(ctx: Mocha.Context, key: Pick<Row, 'client' | 'direction' | 'case'>, skip: string | null, body: () => Promise<CaseResult>): Promise<void> {
    if (skip !== null) {
      this.record({ ...key, status: 'skip', note: skip });
      console.log(`      (skipped: ${skip})`);
      ctx.skip();
    }
    const t0 = Date.now();
    try {
      const r = await body();
      const note = r.note;
      this.record({ ...key, status: 'pass', seconds: r.seconds ?? (Date.now() - t0) / 1000, ...(note ? { note } : {}) });
    } catch (err) {
      const message = (err as Error).message.split('\n')[0]!.slice(0, 300);
      const seconds = err instanceof CaseError ? err.seconds : (Date.now() - t0) / 1000;
      this.record({ ...key, status: 'fail', seconds, note: message });
      throw err;
    }
  }

  /** Merge this file's rows into the report on disk and print them. */
  async save(): Promise<void> {
    const file = reportPath();
    const report = await readReport(file);
    report.updated = new Date().toISOString();
    report.shoal = shoalIdentity();
    Object.assign(report.clients, this.clients);
    Object.assign(report.measurements, this.measurements);
    for (const r of this.rows) report.rows[rowKey(r)] = r;
    report.files[this.file] = Math.round((Date.now() - this.startedAt) / 100) / 10;
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, JSON.stringify(report, null, 2) + '\n');
    if (this.rows.length > 0) {
      const counts = (s: Status) => this.rows.filter((r) => r.status === s).length;
      console.log(`      interop matrix: ${counts('pass')} pass, ${counts('fail')} fail, ${counts('skip')} skip in ${report.files[this.file]} s; written to ${file}`);
    }
  }
}
