import cliProgress from 'cli-progress';

/** 1536 -> "1.5 KiB" */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function rate(bps: number): string {
  return `${bytes(bps)}/s`;
}

/** Seconds left, always with a unit: "36 s", "2 min 05 s", "1 h 03 min"; "--" when unknown (stalled, paused). */
export function eta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  if (s >= 100 * 3600) return `${Math.floor(s / 86400)} d`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** What a progress bar shows of a download. */
export interface BarInfo {
  name: string;
  length: number;
  pieces: number;
  verified: number;
  downloadRate: number;
  peers: number;
  state: string;
  eta: number | null;
}

const FULL = '\u2588'.repeat(100);
const EMPTY = '\u2591'.repeat(100);

/**
 * One download as a line of at most `columns` characters: name, bar, percent of the size,
 * speed, peers and ETA, every figure with its unit. The name gives way first, then the bar.
 */
export function progressLine(d: BarInfo, columns: number): string {
  const done = d.pieces > 0 ? d.verified / d.pieces : d.state === 'done' ? 1 : 0;
  const pct = `${(100 * done).toFixed(1)}%`.padStart(6);
  const tail =
    d.state === 'downloading'
      ? `${pct} of ${bytes(d.length)} | ${rate(d.downloadRate).padStart(11)} | ${d.peers} peer${d.peers === 1 ? '' : 's'} | ETA ${eta(d.eta)}`
      : `${pct} of ${bytes(d.length)} | ${d.state}`;
  const width = Math.max(10, columns - 1); // never the last column: a full row would wrap on some terminals
  const room = width - tail.length - 4; // the brackets and two spaces
  const barsize = Math.max(0, Math.min(24, room - 8));
  const nameRoom = Math.max(0, room - barsize);
  const name = d.name.length <= nameRoom ? d.name.padEnd(nameRoom) : nameRoom >= 2 ? `${d.name.slice(0, nameRoom - 1)}\u2026` : '';
  const bar = barsize > 0 ? cliProgress.Format.BarFormat(done, { barsize, barCompleteString: FULL, barIncompleteString: EMPTY, barGlue: '' }) : '';
  return `${name} [${bar}] ${tail}`.slice(0, width);
}

/** "1M", "512k", "1000" -> bytes: the same rule as the config file's (network/util/size.ts). */
export { parseSize } from '../network/index.js';

export function hostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1]!, port };
}
