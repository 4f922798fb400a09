import { chmodSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Runs `fn`, which adds, renames or removes an entry of the directory holding `abs`. A
 * directory received from a peer may deny its owner write access (mode 0555): root writes
 * into it anyway, a normal user gets EACCES, and the change would be retried forever. So on
 * EACCES, if this process owns that directory, it lends itself write and search permission
 * for the one change and puts the mode back, the way `cp -r` copies a read-only tree.
 */
export function inDirOf<T>(abs: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
    const dir = dirname(abs);
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (!st?.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o300) === 0o300) throw err;
    chmodSync(dir, (st.mode & 0o7777) | 0o300);
    try {
      return fn();
    } finally {
      chmodSync(dir, st.mode & 0o7777);
    }
  }
}
