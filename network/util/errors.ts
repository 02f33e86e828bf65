/**
 * The two failures every waiting callback can meet (STYLE lesson 5): the answer did not come
 * in time, or the other end (a peer, a worker pool, the library) closed first. One class of
 * each for the whole code base, so `instanceof TimeoutError` means the same everywhere; the
 * message says who timed out or closed.
 */

/** No answer within the time allowed (connect time included where there is a connection). */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** The other end, or the thing waited on, closed before it answered. */
export class ClosedError extends Error {
  override name = 'ClosedError';
}

/** The errno code when `err` says the disk (or the user's quota) is full, else null. */
export function diskFullCode(err: unknown): 'ENOSPC' | 'EDQUOT' | null {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' ? code : null;
}
