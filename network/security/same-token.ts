import { createHash, timingSafeEqual } from 'node:crypto';

/** Equal strings, in time that does not depend on where they differ (nor on their lengths). */
export function sameToken(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
