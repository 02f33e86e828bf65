/**
 * Which files of a torrent to download: by patterns (`--only`, `download(target, { only })`)
 * or by index (the dashboard's checkboxes), and how far each file is.
 */
import type { Metainfo } from '../metainfo/metainfo.js';
import type { Bitfield } from '../wire/bitfield.js';
import { checkPattern, globMatch } from '../catalog/glob.js';
import { SelectionError } from '../errors.js';
import { pieceSpan, filePieces } from '../storage/layout.js';

/** One file of a download, as the front ends show it. */
export interface DownloadFile {
  /** Its index in the torrent (what `select` and `?file=` take). */
  index: number;
  /** Path inside the torrent's folder, '/'-separated; the name for a single-file torrent. */
  path: string;
  length: number;
  selected: boolean;
  /** Bytes of it in verified pieces. */
  verified: number;
}

/**
 * The files `patterns` select (shell patterns, as for `--watch`: one without `/` matches a
 * file's name, one with `/` its path inside the torrent's folder). SelectionError when a
 * pattern is bad or no file matches any.
 */
export function selectByPatterns(m: Metainfo, patterns: readonly string[]): boolean[] {
  checkPatterns(patterns);
  const selected = m.files.map((f) => !f.pad && patterns.some((p) => globMatch(p, f.name)));
  if (!selected.some(Boolean)) {
    const some = m.files.filter((f) => !f.pad).slice(0, 5).map((f) => f.name);
    throw new SelectionError(`no file of ${m.name} matches ${patterns.map((p) => JSON.stringify(p)).join(' or ')} (its files: ${some.join(', ')}${m.files.length > some.length ? ', ...' : ''})`);
  }
  return selected;
}

/** SelectionError for a pattern that is empty, too long or holds control characters. */
export function checkPatterns(patterns: readonly string[]): void {
  try {
    patterns.forEach(checkPattern);
  } catch (err) {
    throw new SelectionError(`--only: ${(err as Error).message}`);
  }
}

/** The files listed by index (what the dashboard sends). SelectionError for an index the torrent does not have, or none. */
export function selectByIndex(m: Metainfo, indices: readonly number[]): boolean[] {
  const selected = m.files.map(() => false);
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= m.files.length || m.files[i]!.pad) throw new SelectionError(`${m.name} has no file ${i} (its files are 0 to ${m.files.length - 1})`);
    selected[i] = true;
  }
  if (!selected.some(Boolean)) throw new SelectionError('select at least one file');
  return selected;
}

/** Every file (padding left out) with its progress; `selection` null means every file. */
export function fileViews(m: Metainfo, have: Bitfield, selection: readonly boolean[] | null): DownloadFile[] {
  const out: DownloadFile[] = [];
  m.files.forEach((f, index) => {
    if (f.pad) return;
    let verified = 0;
    const span = filePieces(m, index);
    if (span) {
      for (let i = span.first; i <= span.last; i++) {
        if (!have.get(i)) continue;
        const p = pieceSpan(m, i);
        verified += Math.min(p.end, f.offset + f.length) - Math.max(p.start, f.offset);
      }
    }
    out.push({ index, path: f.name, length: f.length, selected: selection ? selection[index] === true : true, verified });
  });
  return out;
}
