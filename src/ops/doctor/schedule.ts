import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../../config/types.js';
import { cronPath, cronTable } from '../cron.js';
import { ok, warn, type CheckResult } from './check.js';

export const SYSTEMD_DIR = '/etc/systemd/system';

/**
 * Something must start the cycles: the cron.d file (`fedsync cron --install`, and up to date
 * with the config) or the systemd units (enabled). Only a warning: a supervisor of one's own
 * is fine, and a node being set up has not scheduled anything yet.
 */
export function scheduled(config: Config, systemdDir = SYSTEMD_DIR): CheckResult {
  const heavy = config.sets.some((s) => s.mode === 'heavyweight');
  const light = config.sets.some((s) => s.mode === 'lightweight');
  const timer = existsSync(`${systemdDir}/timers.target.wants/fedsync-run.timer`);
  const service = existsSync(`${systemdDir}/multi-user.target.wants/fedsync-watch.service`);
  const file = cronPath();
  let cron: string | null = null;
  try {
    cron = readFileSync(file, 'utf8');
  } catch {
    // not installed
  }
  const missing: string[] = [];
  if (heavy && !timer && !cron?.includes(' run ')) missing.push('nothing runs `fedsync run` for the heavyweight sets');
  if (light && !service && !cron?.includes(' watch ')) missing.push('nothing starts `fedsync watch` for the lightweight sets');
  if (missing.length > 0) return warn(missing.join('; '), '`fedsync cron --install`, or enable fedsync-run.timer / fedsync-watch.service (docs/operations.md)');
  if (cron !== null && cron !== cronTable(config, resolve(process.argv[1] ?? 'fedsync'), process.execPath).text) {
    return warn(`${file} differs from what \`fedsync cron\` prints for this config`, 'run `fedsync cron --install` to update it');
  }
  const how = [cron !== null ? file : '', timer ? 'fedsync-run.timer' : '', service ? 'fedsync-watch.service' : ''].filter(Boolean).join(', ');
  return ok(`scheduled by ${how || 'nothing needed'}`);
}
