import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/types.js';
import { escapeText } from '../log/escape.js';
import { EXIT, UserError } from './common.js';
import { cronCommand } from './cron.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { historyCommand, restoreCommand } from './history.js';
import { forgetNodeCommand, housekeepCommand, nodesCommand } from './housekeep.js';
import { initCommand } from './init.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { watchCommand } from './watch.js';

const VERSION = '0.1.0';

function program(): Command {
  const p = new Command('fedsync')
    .description('Keep one directory identical on every node of a cluster through a shared S3 bucket')
    .version(VERSION)
    .option('-c, --config <file>', 'config file (default: $FEDSYNC_CONFIG, then /etc/fedsync/fedsync.toml)')
    .showHelpAfterError()
    // Options before the command are fedsync's own (-c, --version); `restore --version ID`
    // after it belongs to the command.
    .enablePositionalOptions()
    .exitOverride();
  const global = () => p.opts<{ config?: string }>();

  p.command('init')
    .description('prepare this node: state, node id, root marker, and the store (first node)')
    .option('--set <name>', 'only this sync set')
    .action(async (o: { set?: string }) => done(await initCommand({ ...global(), ...o })));
  p.command('run')
    .description('one sync cycle for the heavyweight sets (run it from cron every minute)')
    .option('--set <name>', 'only this sync set (any mode)')
    .option('--dry-run', 'print what would be published and applied; change nothing')
    .option('--loop', 'repeat every `interval` until stopped (for service managers)')
    .option('--force', 'go ahead even if more than max_delete would be deleted')
    .action(async (o: { set?: string; dryRun?: boolean; loop?: boolean; force?: boolean }) => done(await runCommand({ ...global(), ...o })));
  p.command('watch')
    .description('daemon for the lightweight sets: watch, publish after `delay`, poll every `poll`')
    .option('--set <name>', 'only this sync set (any mode)')
    .action(async (o: { set?: string }) => done(await watchCommand({ ...global(), ...o })));
  p.command('status')
    .description('last cycle, pending changes and peers of each set; exit 0 healthy, 1 failed, 2 stale')
    .option('--json', 'machine-readable output')
    .option('--set <name>', 'only this sync set')
    .action(async (o: { json?: boolean; set?: string }) => done(await statusCommand({ ...global(), ...o })));
  p.command('housekeep')
    .description('snapshot, prune journals and collect garbage now (the leader), and tidy local state')
    .option('--set <name>', 'only this sync set')
    .action(async (o: { set?: string }) => done(await housekeepCommand({ ...global(), ...o })));
  p.command('history')
    .description("list the kept versions of a path (a file, or everything under a directory)")
    .requiredOption('--set <name>', 'the sync set')
    .option('--json', 'machine-readable output')
    .argument('<path>', 'relative to the set root, or absolute inside it')
    .action(async (path: string, o: { set: string; json?: boolean }) => done(await historyCommand(path, { ...global(), ...o })));
  p.command('restore')
    .description('bring back a file or directory as of a time or version, in place (published) or to DEST')
    .requiredOption('--set <name>', 'the sync set')
    .option('--at <time>', 'as of this time: ISO date/time, or how long ago ("2h", "3d")')
    .option('--version <id>', 'a version id from `fedsync history`')
    .option('--to <dest>', 'write there instead of in place')
    .argument('<path>', 'relative to the set root, or absolute inside it')
    .action(async (path: string, o: { set: string; at?: string; version?: string; to?: string }) => done(await restoreCommand(path, { ...global(), ...o })));
  const nodes = p
    .command('nodes')
    .description('list the nodes of each set')
    .option('--set <name>', 'only this sync set')
    .action(async (o: { set?: string }) => done(await nodesCommand({ ...global(), ...o })));
  nodes
    .command('forget')
    .description('retire a node that will not come back (its acks no longer hold journals)')
    .argument('<id>', 'the node id (see `fedsync nodes`)')
    .option('--set <name>', 'only this sync set')
    .option('--force', 'even if it looks live')
    .action(async (id: string, o: { set?: string; force?: boolean }) => done(await forgetNodeCommand(id, { ...global(), ...o })));
  p.command('cron')
    .description('print the /etc/cron.d entries for this config; --install writes /etc/cron.d/fedsync')
    .option('--install', 'write /etc/cron.d/fedsync (atomically; left alone when unchanged)')
    .option('--uninstall', 'remove /etc/cron.d/fedsync')
    .option('--systemd', 'print the drop-in (ReadWritePaths=) the systemd units need for this config instead')
    .action(async (o: { install?: boolean; uninstall?: boolean; systemd?: boolean }) => done(await cronCommand({ ...global(), ...o })));
  p.command('doctor')
    .description('check config, store access, clock, roots, disk, manifests and permissions; exit 1 if any check fails')
    .option('--set <name>', 'only this sync set')
    .action(async (o: { set?: string }) => done(await doctorCommand({ ...global(), ...o })));
  p.command('demo')
    .description('build a three-node federation in a temp directory and show it converge')
    .option('--keep', 'keep the demo directory afterwards')
    .action(async (o: { keep?: boolean }) => done(await demoCommand(o)));
  return p;
}

let exitCode = 0;
function done(code: number): void {
  exitCode = code;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT.usage;
    // Messages may quote paths: shown escaped, never as raw control characters.
    if (err instanceof ConfigError) {
      process.stderr.write(`fedsync: ${escapeText(err.message)}\n`);
      return EXIT.usage;
    }
    if (err instanceof UserError) {
      process.stderr.write(`fedsync: ${escapeText(err.message)}\n`);
      return err.exitCode;
    }
    process.stderr.write(`fedsync: ${escapeText((err as Error).message ?? String(err))}\n`);
    if (process.env.FEDSYNC_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return EXIT.failed;
  }
}
