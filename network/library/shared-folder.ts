/**
 * The shared folder must be a folder this node can read: a path that does not exist, or is a
 * file, would start a node that shares nothing and says nothing about it. Checked once at
 * start; a folder that goes away later is the library's to notice (it logs and carries on).
 */
import { promises as fsp } from 'node:fs';
import { SharedFolderError } from '../errors.js';

/** Resolves when `dir` is a readable folder (made first when `create` and missing); SharedFolderError otherwise. */
export async function checkSharedFolder(dir: string, create = false): Promise<void> {
  if (create) await fsp.mkdir(dir, { recursive: true }).catch(() => {}); // a failure is reported below
  let isDir: boolean;
  try {
    isDir = (await fsp.stat(dir)).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SharedFolderError(dir, `the shared folder ${dir} does not exist`);
    if (code === 'ENOTDIR') throw new SharedFolderError(dir, `the shared folder ${dir} is not a folder (a part of its path is a file)`);
    throw new SharedFolderError(dir, `cannot use the shared folder ${dir}: ${code ?? (err as Error).message}`);
  }
  if (!isDir) throw new SharedFolderError(dir, `the shared folder ${dir} is a file, not a folder`);
  try {
    await (await fsp.opendir(dir)).close();
  } catch (err) {
    throw new SharedFolderError(dir, `cannot read the shared folder ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
