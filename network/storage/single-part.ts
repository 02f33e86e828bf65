import { promises as fsp, type promises } from 'node:fs';
import path from 'node:path';
import type { Metainfo } from '../metainfo/metainfo.js';
import { candidateName, exists, renameNoClobber } from './stores.js';
import { localName } from '../util/names.js';

/**
 * The bytes of a single-file download: `downloads/<name>.part`, written at piece offsets,
 * sparse at its full length from the start, renamed to `<name>` once every piece is verified.
 */
export class SinglePart {
  private constructor(
    private readonly fd: promises.FileHandle,
    readonly partPath: string,
    private readonly m: Metainfo,
  ) {}

  /** Open the .part an earlier run left (`recorded`), or make a new one. */
  static async open(dir: string, m: Metainfo, recorded: string | null): Promise<{ bytes: SinglePart; fresh: boolean }> {
    let partPath = recorded ? path.join(dir, recorded) : null;
    let fresh = false;
    if (!partPath || !(await exists(partPath))) {
      partPath = await freePartPath(dir, m);
      fresh = true;
    }
    const fd = await fsp.open(partPath, fresh ? 'w+' : 'r+');
    const { size } = await fd.stat();
    if (size !== m.length) await fd.truncate(m.length); // sparse: holes cost nothing
    return { bytes: new SinglePart(fd, partPath, m), fresh };
  }

  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return this.fd.read(buf, offset, length, position);
  }

  async write(data: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const { bytesWritten } = await this.fd.write(data, offset + done, length - done, position + done);
      done += bytesWritten;
    }
  }

  async close(): Promise<void> {
    await this.fd.close().catch(() => {});
  }

  async discard(): Promise<void> {
    await this.close();
    await fsp.rm(this.partPath, { force: true });
  }

  /** Move the .part to its final name, never replacing an existing file (`name (1).ext` and so on). */
  async finish(): Promise<string> {
    await this.fd.close();
    const dir = path.dirname(this.partPath);
    const name = localName(this.m.name).name;
    for (let n = 0; n < 1000; n++) {
      const target = path.join(dir, candidateName(name, n));
      if (await renameNoClobber(this.partPath, target)) return target;
    }
    throw new Error(`no free name for ${name} in ${dir}`);
  }
}

/** `<name>.part`, unless another download already uses that name. */
async function freePartPath(dir: string, m: Metainfo): Promise<string> {
  const name = localName(m.name).name;
  const plain = path.join(dir, `${name}.part`);
  if (!(await exists(plain))) return plain;
  return path.join(dir, `${name}.${m.infoHashHex.slice(0, 8)}.part`);
}
