import type { Node } from '../network/index.js';

/** How a program reports each `--seed`: a JSON event or a plain line. */
export type Emit = (event: string, data: Record<string, unknown>, text: string) => void;

/**
 * Seed every `--seed` torrent from the data here, once the node runs: a `seeding` event for
 * each one seeded, a `failed` one (saying how many pieces are here) for each that is not.
 * Resolves true when every one is seeded.
 */
export async function seedAll(node: Node, torrents: string[], emit: Emit): Promise<boolean> {
  const results = await Promise.all(
    torrents.map(async (t) => {
      try {
        const { infohash, path } = await node.seed(t);
        emit('seeding', { torrent: t, infohash, path }, `seeding ${t} (${infohash}) from ${path}`);
        return true;
      } catch (err) {
        emit('failed', { target: t, error: (err as Error).message }, `failed ${t}: ${(err as Error).message}`);
        return false;
      }
    }),
  );
  return results.every(Boolean);
}
