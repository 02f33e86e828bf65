/**
 * Which bytes a content read means: a shared file or folder, or a download (any state), and
 * for a multi-file torrent which of its files. A download still running is read from its
 * verified pieces (content.ts); anything complete streams from disk.
 */
import type { Readable } from 'node:stream';
import type { Metainfo } from '../metainfo/metainfo.js';
import type { SharedFile } from '../library/library.js';
import { resolveInside } from '../util/names.js';
import { checkRange, readFileRange, readVerified, UnknownContentError, type FileView, type ReadOptions } from './content.js';
import type { Download } from './download.js';

/** Where a node's content comes from: its downloads and its shared files. */
export interface ContentSources {
  download(infohash: string): Download | undefined;
  shared(infohash: string): SharedFile | undefined;
}

export interface ContentInfo {
  /** The file's name: a multi-file torrent's file is named by its path inside the torrent's folder. */
  name: string;
  length: number;
  pieceLength: number;
  /** Every byte is there (a shared file, or a download with every piece verified). */
  complete: boolean;
  /**
   * The torrent is a folder of `files` files (padding left out): its content is read one file
   * at a time. Asked without a file, the rest describes the torrent as a whole.
   */
  multiFile: boolean;
  files: number;
}

/** File `index` of `m` as a reader sees it; undefined when the torrent has no such file (or it is padding). */
export function fileView(m: Metainfo, index = 0): FileView | undefined {
  const f = m.files[index];
  if (!f || f.pad || !Number.isInteger(index)) return undefined;
  return { name: f.name, length: f.length, offset: f.offset, pieceLength: m.pieceLength };
}

/** Where file `index` of a complete torrent is on disk, `root` being its file or its folder. */
export function onDisk(root: string, m: Metainfo, index: number): string {
  return m.multiFile ? resolveInside(root, m.files[index]!.name) : root;
}

type Source = { path: string; view: FileView; metainfo: Metainfo } | { download: Download; view: FileView };

/** A download in progress (any state but done), else a complete file on disk; undefined when unknown. */
function sourceOf(src: ContentSources, infohash: string, file: number): Source | undefined {
  const h = infohash.toLowerCase();
  const d = src.download(h);
  const m = d?.metainfo ?? src.shared(h)?.metainfo;
  const view = m && fileView(m, file);
  if (!view) return undefined;
  if (d && d.state !== 'done' && d.part) return { download: d, view };
  const f = src.shared(h);
  if (f) return { path: onDisk(f.path, f.metainfo, file), view, metainfo: f.metainfo };
  // A finished download of some files has only those.
  if (d?.path && (d.selection()?.[file] ?? true)) return { path: onDisk(d.path, d.metainfo, file), view, metainfo: d.metainfo };
  return undefined;
}

/**
 * Name, size and piece length of a shared file or a download (any state), or of file `file`
 * of a multi-file torrent; undefined when there is none. Without `file`, a multi-file
 * torrent is described as a whole (multiFile: true): its bytes are read one file at a time.
 */
export function contentInfo(src: ContentSources, infohash: string, file?: number): ContentInfo | undefined {
  const h = infohash.toLowerCase();
  const m = src.download(h)?.metainfo ?? src.shared(h)?.metainfo;
  if (!m) return undefined;
  const files = m.files.filter((f) => !f.pad).length;
  if (file === undefined && m.multiFile) {
    const d = src.download(h);
    return { name: m.name, length: m.length, pieceLength: m.pieceLength, complete: !d?.active, multiFile: true, files };
  }
  const s = sourceOf(src, h, file ?? 0);
  if (!s) return undefined;
  const v = s.view;
  let complete = true;
  if ('download' in s) {
    const have = s.download.have;
    for (let i = Math.floor(v.offset / v.pieceLength); v.length > 0 && i <= Math.floor((v.offset + v.length - 1) / v.pieceLength); i++) if (!have.get(i)) complete = false;
  }
  return { name: v.name, length: v.length, pieceLength: v.pieceLength, complete, multiFile: m.multiFile, files };
}

/**
 * Bytes `start`..`end` (inclusive) of a file (`file` of a multi-file torrent). A complete file
 * streams from disk; a download gives verified pieces only (see readVerified). RangeError
 * outside the file, UnknownContentError for an unknown infohash or file,
 * ContentUnavailableError when a piece will not come.
 */
export async function readContent(src: ContentSources, infohash: string, start: number, end: number, opts: ReadOptions & { file?: number }): Promise<{ stream: Readable; end: number }> {
  const s = sourceOf(src, infohash, opts.file ?? 0);
  if (!s) throw new UnknownContentError(`no shared file or download has infohash ${infohash}${opts.file ? ` and a file ${opts.file}` : ''}`);
  if ('path' in s) {
    checkRange(s.view.length, start, end);
    return { stream: await readFileRange(s.path, s.view.length, start, end), end };
  }
  return readVerified(s.download.verifiedSource(opts.file ?? 0), start, end, opts);
}
