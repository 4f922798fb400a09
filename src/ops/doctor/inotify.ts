import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { excludeMatcher } from '../../config/exclude.js';
import type { SetConfig } from '../../config/types.js';
import { MARKER_DIR } from '../../sync/record.js';
import { inotifyAdvice, inotifyWatchLimit, watchesFit } from '../../watch/limits.js';
import { fail, ok, skip, type CheckResult } from './check.js';

/** The watcher needs one inotify watch per directory; short of them it falls back to full scans. */
export function inotifyWatches(set: SetConfig, limitFile?: string): CheckResult {
  const limit = inotifyWatchLimit(limitFile);
  if (limit === null) return skip('no inotify watch limit to read on this system');
  const dirs = countDirs(set);
  if (!watchesFit(dirs, limit)) return fail(`${dirs} directories to watch, limit ${limit}`, inotifyAdvice(dirs, limit));
  return ok(`${dirs} director${dirs === 1 ? 'y' : 'ies'} to watch, limit ${limit}`);
}

/** Directories under the root the watcher would watch: the root itself, less `.fedsync/` and excluded ones. */
export function countDirs(set: SetConfig): number {
  const excluded = excludeMatcher(set.exclude);
  let n = 0;
  const walk = (abs: string, rel: string) => {
    n++;
    let names;
    try {
      names = readdirSync(abs, { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of names) {
      if (!d.isDirectory()) continue; // symlinks are not followed, as by the watcher
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (r === MARKER_DIR || excluded(r, true)) continue;
      walk(join(abs, d.name), r);
    }
  };
  walk(set.path, '');
  return n;
}
