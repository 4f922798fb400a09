import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { stateFileError } from './state-error.js';

/**
 * Writes `content` to `file` through a temp file in the same directory and a rename, so a
 * reader (cron, node_exporter, a monitoring check) sees the old file or the new one, never a
 * half-written one. The temp name starts with a dot: cron and node_exporter both skip it. A
 * failed write leaves no temp file, and its error names `file` (not the temp) and the errno.
 */
export function writeFileAtomic(file: string, content: string, mode: number, dirMode?: number): void {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${process.pid}.tmp`);
  try {
    mkdirSync(dir, { recursive: true, mode: dirMode });
    writeFileSync(tmp, content, { mode });
    chmodSync(tmp, mode); // the umask must not decide what cron or node_exporter may read
    renameSync(tmp, file);
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // a directory that refused the write may refuse this too; the write's error is the one to tell
    }
    throw stateFileError(file, 'write', err);
  }
}
