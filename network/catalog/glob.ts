/**
 * Shell-style name patterns for `watch`: `*` is any run of characters, `?` one character,
 * everything else literal, case-insensitive. A pattern without `/` is matched against the
 * file's base name, one with `/` against its whole relative name.
 *
 * Matched with the classic two-pointer walk (backtrack only to the last `*`), never by
 * building a RegExp from user text, so no pattern can be made slow: time is at most
 * O(pattern × name) and both are bounded.
 */
export const MAX_PATTERN_LENGTH = 256;

export class PatternError extends Error {
  override name = 'PatternError';
}

export function checkPattern(pattern: string): string {
  if (pattern.length === 0) throw new PatternError('empty pattern');
  if (pattern.length > MAX_PATTERN_LENGTH) throw new PatternError(`pattern longer than ${MAX_PATTERN_LENGTH} characters`);
  if (/[\0-\x1f]/.test(pattern)) throw new PatternError('pattern contains control characters');
  return pattern;
}

export function globMatch(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const subject = (p.includes('/') ? name : name.slice(name.lastIndexOf('/') + 1)).toLowerCase();
  let pi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < subject.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === subject[si])) {
      pi++;
      si++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = si;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}
