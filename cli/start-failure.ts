import { FolderLockedError, SharedFolderError } from '../network/index.js';

/**
 * Why a node could not start, as the one line node-cli and web print, and their exit status:
 * 2 for what the user must change in the command (folders), 1 for anything else.
 */
export function startFailure(err: unknown): { code: number; line: string } {
  if (err instanceof FolderLockedError) return { code: 2, line: `${err.message}; to run one more node, give it folders of its own: --downloads DIR --state DIR` };
  if (err instanceof SharedFolderError) return { code: 2, line: `${err.message}: name an existing folder with --shared DIR` };
  return { code: 1, line: `cannot start: ${err instanceof Error ? err.message : String(err)}` };
}
