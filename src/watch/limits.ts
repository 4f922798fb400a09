import { readFileSync } from 'node:fs';

/** The kernel's per-user inotify watch limit, or null where there is none to read. */
export function inotifyWatchLimit(file = '/proc/sys/fs/inotify/max_user_watches'): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * Whether `watches` fit the limit, leaving a tenth of it to the other programs of the same
 * user. The watcher holds one inotify watch per file and per directory.
 */
export function watchesFit(watches: number, limit: number | null): boolean {
  return limit === null || watches <= limit * 0.9;
}

export function inotifyAdvice(watches: number, limit: number): string {
  const want = Math.max(524288, 2 ** Math.ceil(Math.log2(watches * 2)));
  return (
    `the set needs ${watches} inotify watches (one per file and directory) but the limit is ${limit}: ` +
    `raise it with \`sysctl fs.inotify.max_user_watches=${want}\` (and persist it in /etc/sysctl.d/90-fedsync.conf); ` +
    'until then this set is kept in sync by periodic full scans'
  );
}
