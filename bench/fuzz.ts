/**
 * The decoders fuzzed by hand, for as long as you like: `npm run fuzz -- --seconds 3600`
 * (each decoder gets that long; `--only NAME` picks one; `--seed N` replays a run). Prints the
 * executions per decoder; a broken rule stops with fast-check's report (the shrunk input,
 * the seed and path to replay it) and exit code 1.
 */
import { Command } from 'commander';
import { TARGETS, fuzz } from '../test/fuzz/targets.js';

const program = new Command('fuzz')
  .option('--seconds <n>', 'how long each decoder is fuzzed', '60')
  .option('--only <text>', 'only the decoders whose name contains this')
  .option('--seed <n>', 'fast-check seed (to replay a run)')
  .parse();
const opts = program.opts<{ seconds: string; only?: string; seed?: string }>();
const seconds = Number(opts.seconds);
if (!(seconds > 0)) {
  console.error(`--seconds must be a positive number, got ${opts.seconds}`);
  process.exit(2);
}
const targets = TARGETS.filter((t) => !opts.only || t.name.includes(opts.only));
if (targets.length === 0) {
  console.error(`no decoder matches ${opts.only}; there are: ${TARGETS.map((t) => t.name).join(', ')}`);
  process.exit(2);
}
let failed = false;
console.log(`fuzzing ${targets.length} decoders, ${seconds} s each`);
for (const t of targets) {
  const rssBefore = process.memoryUsage().rss;
  const started = Date.now();
  try {
    const runs = fuzz(t, seconds * 1000, 2000, opts.seed === undefined ? undefined : Number(opts.seed));
    const secs = (Date.now() - started) / 1000;
    const rss = process.memoryUsage().rss;
    console.log(`${t.name.padEnd(44)} ${String(runs).padStart(10)} executions  ${Math.round(runs / secs).toString().padStart(7)}/s  rss ${Math.round(rss / 2 ** 20)} MiB (+${Math.round((rss - rssBefore) / 2 ** 20)})`);
  } catch (err) {
    failed = true;
    console.log(`${t.name}: BROKEN\n${(err as Error).message}`);
  }
}
process.exit(failed ? 1 : 0);
