#!/usr/bin/env node
/**
 * `shoal`: one program in front of the others, so that a global install puts one Shoal name on
 * the PATH. `shoal node ...` is `node-cli ...`, `shoal web ...` is `web ...`, `shoal bootstrap
 * ...` is `bootstrap ...` (each entry point runs as it is, in this process, with the
 * arguments after the subcommand), and `shoal create` / `shoal info` are node-cli's tools.
 */
import { Command, CommanderError } from 'commander';
import { programName, setProgramName, VERSION } from '../network/index.js';
import { isTool, runTool, type Tool } from './tools.js';

/** Start an entry point as if it had been run with `args`. */
async function launch(entry: 'node' | 'web' | 'bootstrap', args: string[]): Promise<void> {
  setProgramName(`shoal ${entry}`);
  process.argv = [process.argv[0]!, process.argv[1]!, ...args];
  // The entry points parse process.argv when they load. bootstrap/ is a separate program:
  // this launcher is the one place in cli/ that starts it.
  if (entry === 'node') await import('./main.js');
  else if (entry === 'web') await import('./web.js');
  else await import('../bootstrap/main.js');
}

const program = new Command('shoal')
  .description('Shoal: hybrid peer-to-peer file sharing (LAN multicast + bootstrap discovery, BitTorrent peer wire)')
  .version(VERSION, '-V, --version', 'print the version and exit')
  .enablePositionalOptions()
  .exitOverride()
  .configureOutput({ writeErr: () => {} })
  .showHelpAfterError(false)
  .configureHelp({ subcommandTerm: (cmd) => `${cmd.name()} ${cmd.usage()}` })
  .addHelpText('after', '\nEach command has its own --help, e.g. shoal node --help.');

/** A subcommand that hands everything after its name, options and --help included, to `run`. */
const passThrough = (name: string, args: string, summary: string, run: (rest: string[]) => Promise<void>) =>
  program
    .command(name)
    .usage(`${args}`)
    .summary(summary)
    .description(summary)
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .argument('[args...]')
    .action(async (_args: string[], _opts: unknown, cmd: Command) => run(cmd.args));

passThrough('node', '[ip] <port> [options]', 'run a node with its console (node-cli)', (rest) => launch('node', rest));
passThrough('web', '--peer-port <port> [options]', 'run a node with its web dashboard (web)', (rest) => launch('web', rest));
passThrough('seed', '<X.torrent...> [ip] <port> [options]', 'run a node that seeds .torrent files made elsewhere from the data here (node-cli seed)', (rest) => launch('node', ['seed', ...rest]));
passThrough('bootstrap', '[options]', 'run the bootstrap server: registry, index, tracker, monitor (bootstrap)', (rest) => launch('bootstrap', rest));
for (const [tool, args, summary] of [
  ['create', '<file> [options]', 'make a .torrent of a file and print its magnet link'],
  ['info', '<torrent>', 'print what a .torrent holds'],
] as Array<[Tool, string, string]>)
  passThrough(tool, args, summary, async (rest) => {
    if (isTool(tool)) process.exitCode = await runTool(tool, rest, 'shoal');
  });

if (process.argv.length <= 2) {
  // A bare `shoal`: say what it can do (on stdout, where a user looks), as a usage error.
  program.outputHelp();
  process.exit(2);
}
try {
  await program.parseAsync(process.argv.slice(2), { from: 'user' });
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
  process.stderr.write(`${programName('shoal')}: ${err.message.replace(/^error: /, '')} (see shoal --help)\n`);
  process.exit(2);
}
