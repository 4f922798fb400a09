import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { cronPath, cronTable, installCron, systemdDropIn, uninstallCron } from '../ops/cron.js';
import { EXIT, print, UserError, type GlobalOptions } from './common.js';

export interface CronOptions extends GlobalOptions {
  install?: boolean;
  uninstall?: boolean;
  systemd?: boolean;
}

/**
 * `fedsync cron`: prints the cron.d entries for this config; `--install` writes them to
 * /etc/cron.d/fedsync (only when they changed), `--uninstall` removes that file. With
 * `--systemd` it prints the drop-in the systemd units need instead (the roots they may write).
 */
export async function cronCommand(opts: CronOptions): Promise<number> {
  if (opts.install && opts.uninstall) throw new UserError('--install and --uninstall exclude each other', EXIT.usage);
  const file = cronPath();
  if (opts.uninstall) {
    print(guard(file, () => uninstallCron(file)) ? `removed ${file}` : `${file} was not installed`);
    return EXIT.ok;
  }
  const config = loadConfig(opts.config);
  if (opts.systemd) {
    if (opts.install) throw new UserError('--systemd only prints the drop-in; install it with `systemctl edit` (see docs/operations.md)', EXIT.usage);
    process.stdout.write(systemdDropIn(config));
    return EXIT.ok;
  }
  // The path as invoked, not its realpath: npm's /usr/local/bin/fedsync symlink survives upgrades.
  const bin = resolve(process.argv[1] ?? 'fedsync');
  const table = cronTable(config, bin, process.execPath);
  for (const w of table.warnings) process.stderr.write(`fedsync: warning: ${w}\n`);
  if (!opts.install) {
    process.stdout.write(table.text);
    return EXIT.ok;
  }
  guard(dirname(table.logFile), () => mkdirSync(dirname(table.logFile), { recursive: true, mode: 0o755 }));
  const wrote = guard(file, () => installCron(file, table.text));
  print(wrote ? `installed ${file}` : `${file} is up to date; not rewritten`);
  if (wrote && table.startWatch) {
    print(`the watch daemon starts at the next boot; to start it now:\n  ${table.startWatch}`);
  }
  return EXIT.ok;
}

/** File-system errors as one line that says what to do. */
function guard<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const hint = e.code === 'EACCES' || e.code === 'EPERM' ? ' (run as root)' : '';
    throw new UserError(`cannot write ${path}: ${e.message}${hint}`);
  }
}
