import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `content` to `file` through a temp file in the same directory and a rename, so a
 * reader (cron, node_exporter, a monitoring check) sees the old file or the new one, never a
 * half-written one. The temp name starts with a dot: cron and node_exporter both skip it.
 */
export function writeFileAtomic(file: string, content: string, mode: number): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, content, { mode });
    chmodSync(tmp, mode); // the umask must not decide what cron or node_exporter may read
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Like {@link writeFileAtomic}, but leaves an identical file alone; true when it wrote. */
export function writeIfChanged(file: string, content: string, mode: number): boolean {
  let current: string | null = null;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // absent or unreadable: write it
  }
  if (current === content) return false;
  writeFileAtomic(file, content, mode);
  return true;
}
