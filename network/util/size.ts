/**
 * Sizes as people write them on a command line or in a config file: "1M", "512k", "1.5g",
 * "1000" (bytes). Binary multiples (k = 1024), an optional "i" and "b" ("MiB", "kb").
 */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)i?b?$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: ${text}`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}
