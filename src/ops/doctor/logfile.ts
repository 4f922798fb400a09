import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { fail, ok, why, type CheckResult } from './check.js';

/** The log file must be appendable, or every run dies before it logs why. */
export function logFile(file: string | undefined): CheckResult {
  if (!file) return ok('no log_file: logs go to stderr (cron.d appends them to its log; systemd to the journal)');
  try {
    if (!existsSync(dirname(file))) mkdirSync(dirname(file), { recursive: true });
    closeSync(openSync(file, 'a'));
  } catch (err) {
    return fail(`cannot append to ${file}: ${why(err)}`, `create ${dirname(file)} and make it writable by the user fedsync runs as`);
  }
  return ok(`${file} is writable`);
}
