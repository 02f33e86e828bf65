/**
 * Where a torrent's bytes are: its files laid end to end make one byte stream, the pieces cut
 * it. These pure functions map between the two (a piece's bytes as segments of files, a
 * file's pieces) and say which pieces a selection of files needs. Empty files own no byte
 * and no piece.
 */
import { Bitfield } from '../wire/bitfield.js';
import type { Metainfo, TorrentFile } from '../metainfo/metainfo.js';

/** Part of one file inside a run of torrent bytes. */
export interface Segment {
  /** Index of the file in the torrent. */
  file: number;
  /** Where the segment starts in that file. */
  fileOffset: number;
  length: number;
  /** Where the segment starts in the run (0 for the run's first byte). */
  at: number;
}

type Geometry = Pick<Metainfo, 'files' | 'pieceLength' | 'pieceCount' | 'length'>;

/** The index of the file holding torrent byte `pos` (never an empty file), by binary search. */
export function fileAt(files: readonly TorrentFile[], pos: number): number {
  let lo = 0;
  let hi = files.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (files[mid]!.offset <= pos) lo = mid;
    else hi = mid - 1;
  }
  // Empty files share their offset with the next one: step past them.
  while (lo < files.length - 1 && files[lo]!.offset + files[lo]!.length <= pos) lo++;
  return lo;
}

/** The file segments of torrent bytes `pos` .. `pos + length - 1`, in order (no empty files). */
export function segments(files: readonly TorrentFile[], pos: number, length: number): Segment[] {
  const out: Segment[] = [];
  if (length <= 0) return out;
  for (let f = fileAt(files, pos), at = 0; at < length && f < files.length; f++) {
    const file = files[f]!;
    if (file.length === 0) continue;
    const from = pos + at - file.offset;
    const n = Math.min(file.length - from, length - at);
    out.push({ file: f, fileOffset: from, length: n, at });
    at += n;
  }
  return out;
}

/** Bytes `start` .. `end - 1` of the torrent that piece `index` covers. */
export function pieceSpan(g: Pick<Metainfo, 'pieceLength' | 'length'>, index: number): { start: number; end: number } {
  const start = index * g.pieceLength;
  return { start, end: Math.min(g.length, start + g.pieceLength) };
}

/** The pieces holding a byte of file `f`: first..last, or null for an empty file. */
export function filePieces(g: Geometry, f: number): { first: number; last: number } | null {
  const file = g.files[f]!;
  if (file.length === 0) return null;
  return { first: Math.floor(file.offset / g.pieceLength), last: Math.floor((file.offset + file.length - 1) / g.pieceLength) };
}

/** The files holding a byte of piece `index` (never an empty file). */
export function pieceFiles(g: Geometry, index: number): number[] {
  const { start, end } = pieceSpan(g, index);
  return segments(g.files, start, end - start).map((s) => s.file);
}

/**
 * The pieces a selection of files needs: every piece holding a byte of a selected file.
 * Padding files are never selected. Everything when `selected` is null.
 */
export function wantedPieces(g: Geometry, selected: readonly boolean[] | null): Bitfield {
  if (!selected) return Bitfield.full(g.pieceCount);
  const out = new Bitfield(g.pieceCount);
  g.files.forEach((file, f) => {
    if (!selected[f] || file.pad) return;
    const span = filePieces(g, f);
    if (span) for (let i = span.first; i <= span.last; i++) out.set(i);
  });
  return out;
}

/**
 * The pieces whose every byte lies in a selected file (or padding): what a finished download
 * of those files can still serve once the bytes of the files it skipped are gone.
 */
export function coveredPieces(g: Geometry, selected: readonly boolean[] | null): Bitfield {
  if (!selected) return Bitfield.full(g.pieceCount);
  const out = new Bitfield(g.pieceCount);
  for (let i = 0; i < g.pieceCount; i++) if (pieceFiles(g, i).every((f) => selected[f] || g.files[f]!.pad)) out.set(i);
  return out;
}

/** How many bits are set in both. */
export function countBoth(a: Bitfield, b: Bitfield): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a.get(i) && b.get(i)) n++;
  return n;
}

/** Bytes of the pieces set in `bits` (the last piece may be short). */
export function bytesOf(g: Pick<Metainfo, 'pieceLength' | 'length' | 'pieceCount'>, bits: Bitfield): number {
  let n = bits.count() * g.pieceLength;
  if (g.pieceCount > 0 && bits.get(g.pieceCount - 1)) n -= g.pieceCount * g.pieceLength - g.length;
  return n;
}
