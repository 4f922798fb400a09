/**
 * Logging: JSON lines (pino) to a file or stderr, or short human lines on an interactive
 * terminal. Writes are synchronous, so nothing is lost when a cron run exits or crashes.
 */
import { writeSync } from 'node:fs';
import { pino } from 'pino';
import type { LogLevel } from '../config/types.js';
import { escapeText } from './escape.js';

export type Logger = pino.Logger;

/** The logger made by {@link createLogger}; children share its destination. */
export type RootLogger = Logger & {
  /** Reopens the log file by name (after logrotate moved it); a no-op on stderr. */
  reopen(): void;
};

export interface LoggerOptions {
  /** Absolute path of the log file (its directory is made); stderr when unset. */
  file?: string;
  level: LogLevel;
  /** Human-readable lines on stderr instead of JSON (ignored when `file` is set). */
  pretty?: boolean;
}

const SECRETS = ['secretAccessKey', 'sessionToken', 'passphrase', 'password', 'credentials', 'authorization'];
/** Redacted at the top level of a log call's object and one level down (`{ s3: { credentials } }`). */
export const REDACT_PATHS = SECRETS.flatMap((k) => [k, `*.${k}`]);

export function createLogger(opts: LoggerOptions): RootLogger {
  const pretty = opts.pretty && !opts.file;
  const dest = opts.file
    ? // 0640 like the logrotate file's `create`: file names are in it, not for every local user.
      pino.destination({ dest: opts.file, mkdir: true, sync: true, mode: 0o640 })
    : pretty
      ? { write: (line: string) => void writeSync(2, formatLine(line)) }
      : pino.destination({ dest: 2, sync: true });
  const logger = pino(
    {
      level: opts.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      ...(pretty ? { base: undefined } : {}),
    },
    dest,
  );
  return Object.assign(logger, {
    reopen: () => {
      if (opts.file) (dest as ReturnType<typeof pino.destination>).reopen();
    },
  });
}

/**
 * Reopens the log on SIGHUP (the logrotate convention). Returns a function that removes the
 * handler. A failed reopen is logged to the old file, which stays open.
 */
export function reopenOnSighup(logger: RootLogger): () => void {
  const onHup = () => {
    try {
      logger.reopen();
      logger.debug('log file reopened');
    } catch (err) {
      logger.error({ err }, 'cannot reopen the log file; still writing to the old one');
    }
  };
  process.on('SIGHUP', onHup);
  return () => void process.off('SIGHUP', onHup);
}

const OMIT = new Set(['time', 'level', 'msg', 'pid', 'hostname']);

/**
 * A value on a terminal line: bare when it is plain, else quoted with every control or
 * invisible character escaped (a path may hold a newline or an escape sequence).
 */
function shownValue(v: unknown): string {
  if (typeof v !== 'string') return escapeText(JSON.stringify(v) ?? String(v));
  if (/^[^\s"=\\]+$/.test(v) && escapeText(v) === v) return v;
  return `"${escapeText(v.replace(/\\/g, '\\\\').replace(/"/g, '\\"'))}"`;
}

/** One pino JSON line as `HH:MM:SS level msg key=value ...` (an error shows its message). */
export function formatLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : json + '\n';
  }
  const t = new Date(typeof rec.time === 'string' || typeof rec.time === 'number' ? rec.time : Date.now());
  const time = [t.getHours(), t.getMinutes(), t.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const parts = [time, String(rec.level ?? '').padEnd(5), escapeText(String(rec.msg ?? ''))];
  for (const [k, v] of Object.entries(rec)) {
    if (OMIT.has(k) || v === undefined) continue;
    const shown = v instanceof Object && 'message' in v && k === 'err' ? v.message : v;
    parts.push(`${k}=${shownValue(shown)}`);
  }
  return parts.join(' ') + '\n';
}
