/**
 * The cron.d file for this node, derived from the configuration: one line a minute running
 * `fedsync run` when there are heavyweight sets, one `@reboot` line starting `fedsync watch`
 * when there are lightweight sets.
 */
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/types.js';
import { parseStoreUrl } from '../store/index.js';
import { writeIfChanged } from './atomic.js';

export const DEFAULT_CRON_DIR = '/etc/cron.d';
/** Overrides the cron.d directory (tests, packaging into a staging root). */
export const CRON_DIR_ENV = 'FEDSYNC_CRON_DIR';
/** No dot in the name: Debian's cron ignores /etc/cron.d files whose names have one. */
export const CRON_FILE = 'fedsync';
/** Where cron's output goes when the config sets no log_file. */
export const DEFAULT_LOG_FILE = '/var/log/fedsync/fedsync.log';
/** Written by the @reboot line, read by logrotate's postrotate to send SIGHUP. */
export const WATCH_PIDFILE = '/run/fedsync-watch.pid';

export interface CronTable {
  text: string;
  /** Where the entries send their output: make sure its directory exists. */
  logFile: string;
  warnings: string[];
  /** A shell command that starts the watch daemon now, as the @reboot line will at boot. */
  startWatch: string | null;
}

export function cronDir(env: NodeJS.ProcessEnv = process.env): string {
  return env[CRON_DIR_ENV] || DEFAULT_CRON_DIR;
}

export function cronPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(cronDir(env), CRON_FILE);
}

/**
 * The file's text. `bin` is the fedsync executable to run and `nodeBin` the node that runs
 * it: cron's PATH is only /usr/bin:/bin, and `#!/usr/bin/env node` must find the same node.
 */
export function cronTable(config: Config, bin: string, nodeBin: string): CronTable {
  const heavy = config.sets.filter((s) => s.mode === 'heavyweight').map((s) => s.name);
  const light = config.sets.filter((s) => s.mode === 'lightweight').map((s) => s.name);
  const logFile = config.logFile ?? DEFAULT_LOG_FILE;
  const warnings: string[] = [];
  if (!config.logFile && light.length > 0) {
    warnings.push(
      `log_file is not set in ${config.file}: the watch daemon then logs to its stderr, which cannot be reopened after logrotate; set log_file = "${DEFAULT_LOG_FILE}"`,
    );
  }
  const fedsync = `${sh(bin)} -c ${sh(config.file)}`;
  // Everything, stderr included, is appended to the log: a successful run prints nothing, and
  // a failing one every minute must not become 1,440 mails a day. Monitoring reads `fedsync
  // status` or the metrics. Only a shell that cannot start fedsync at all still mails root.
  const out = `>>${sh(logFile)} 2>&1`;
  const lines = [
    `# /etc/cron.d/${CRON_FILE}: written by \`fedsync cron --install\` from ${config.file}.`,
    '# Run that command again after changing the sets or moving fedsync; edits here are overwritten.',
    `# Output is appended to ${logFile}; nothing is mailed unless cron cannot start fedsync.`,
    'SHELL=/bin/sh',
    `PATH=${[...new Set([dirname(nodeBin), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])].join(':')}`,
  ];
  if (heavy.length > 0) {
    lines.push('', `# heavyweight sets (${heavy.join(', ')}): a cycle every minute; a run that finds the previous one still busy skips it`);
    lines.push(`* * * * * root ${fedsync} run ${out}`);
  }
  // `exec` keeps the shell's pid, so the pid file names the daemon itself.
  const watch = `echo $$ >${WATCH_PIDFILE}; exec ${fedsync} watch ${out}`;
  if (light.length > 0) {
    lines.push('', `# lightweight sets (${light.join(', ')}): the watch daemon, from boot; logrotate sends SIGHUP to the pid in ${WATCH_PIDFILE}`);
    lines.push(`@reboot root ${watch}`);
  }
  const startWatch = light.length > 0 ? `setsid -f /bin/sh -c ${sh(watch)} </dev/null` : null;
  return { text: cronEscape(lines.join('\n')) + '\n', logFile, warnings, startWatch };
}

/** Writes the file atomically with mode 0644; false when it was already identical. */
export function installCron(file: string, text: string): boolean {
  return writeIfChanged(file, text, 0o644);
}

/** Removes the file; false when there was none. */
export function uninstallCron(file: string): boolean {
  try {
    rmSync(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** A shell word: as is when plain, single-quoted otherwise. */
function sh(word: string): string {
  return /^[A-Za-z0-9_\/.,:+=@%-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** cron turns an unescaped `%` in a command into a newline. */
function cronEscape(text: string): string {
  return text
    .split('\n')
    .map((l) => (l.startsWith('#') || !l.includes(' root ') ? l : l.replace(/%/g, '\\%')))
    .join('\n');
}

/** What the units' StateDirectory= and LogsDirectory= already make writable. */
const UNIT_STATE_DIR = '/var/lib/fedsync';
const UNIT_LOGS_DIR = '/var/log/fedsync';

/**
 * The drop-in the systemd units need for this config: ProtectSystem=strict leaves only the
 * state and log directories writable, so every root (and a state dir, log directory or
 * file:// store elsewhere) must be listed.
 */
export function systemdDropIn(config: Config): string {
  const inside = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);
  const paths = config.sets.map((s) => s.path);
  if (!inside(config.stateDir, UNIT_STATE_DIR)) paths.push(config.stateDir);
  if (config.logFile && !inside(dirname(config.logFile), UNIT_LOGS_DIR)) paths.push(dirname(config.logFile));
  const url = parseStoreUrl(config.store.url);
  if (url.kind === 'file') paths.push(url.dir);
  const lines = [
    `# fedsync: written by \`fedsync cron --systemd\` from ${config.file}. Install it for both units:`,
    '#   /etc/systemd/system/fedsync-run.service.d/paths.conf',
    '#   /etc/systemd/system/fedsync-watch.service.d/paths.conf',
    '# then `systemctl daemon-reload`. Run the command again after adding a set.',
    // A root on a volume that is not mounted yet would be refused (no marker) anyway; waiting is kinder.
    '[Unit]',
    ...config.sets.map((s) => `RequiresMountsFor=${unitPath(s.path)}`),
    '',
    '[Service]',
    ...[...new Set(paths)].map((p) => `ReadWritePaths=${unitPath(p)}`),
  ];
  return lines.join('\n') + '\n';
}

/** systemd path lists split on spaces: quote a path that has one. */
function unitPath(p: string): string {
  return /[\s"\\]/.test(p) ? `"${p.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : p;
}
