/**
 * Folders of files for the multi-file tests: a tree with nested paths, many small files,
 * empty files, files smaller than a block and around a block, and a few larger ones, so
 * that pieces cross file boundaries everywhere; and a comparison of two trees byte for byte.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';

/** Relative path → size in bytes. */
export type TreeSpec = Record<string, number>;

const KiB = 1024;

/** The tree the multi-file tests share: about `count` files, `big` bytes in the larger ones. */
export function mixedTree(count = 120, big = 2 * 1024 * KiB): TreeSpec {
  const spec: TreeSpec = {
    'one-byte.txt': 1,
    'empty-at-top': 0,
    'block.bin': 16 * KiB,
    'block-plus-one.bin': 16 * KiB + 1,
    'under-a-block.bin': 16 * KiB - 1,
    'sub/empty-inside': 0,
    'sub/deep/er/still/nested.bin': 100_000,
    'sub/deep/empty-deep': 0,
    'media/video.mkv': big + 12_345,
    'media/audio.flac': Math.floor(big / 2) + 999,
    'docs/readme.txt': 700,
    // Names whose order differs by how it is compared: mktorrent sorts '/'-joined paths as bytes.
    // (No two differ by case only: libtorrent renames one of them, as on a case-blind disk.)
    'order/a-b/x': 3,
    'order/a/b': 4,
    'order/a.b': 5,
    'order/B': 6,
    'order/_u': 7,
    'order/\u00e9t\u00e9.txt': 8,
    'order/z': 9,
  };
  // Many small files: sizes chosen so that piece boundaries land inside, between and on them.
  for (let i = 0; i < count; i++) spec[`many/f${String(i).padStart(3, '0')}.dat`] = (i * 7919) % 5000;
  return spec;
}

/** Write `spec` under `root` with random bytes. */
export async function writeTree(root: string, spec: TreeSpec): Promise<void> {
  for (const [rel, size] of Object.entries(spec)) {
    const file = path.join(root, ...rel.split('/'));
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, randomBytes(size));
  }
}

/** Every regular file under `root` (relative '/'-paths, sorted). */
export async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const d of await fsp.readdir(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) await walk(path.join(dir, d.name), r);
      else out.push(r);
    }
  };
  await walk(root, '');
  return out.sort();
}

/** `got` holds exactly the files of `spec` (or the `only` ones), each with the bytes of the one under `original`. */
export async function expectSameTree(got: string, original: string, files: string[]): Promise<void> {
  expect(await listTree(got)).to.deep.equal([...files].sort());
  for (const rel of files) {
    const [a, b] = await Promise.all([fsp.readFile(path.join(got, rel)), fsp.readFile(path.join(original, rel))]);
    expect(a.equals(b), `${rel}: same bytes`).to.equal(true);
  }
}
