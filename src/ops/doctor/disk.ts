import { statfsSync } from 'node:fs';
import { fail, ok, warn, why, type CheckResult } from './check.js';

const GiB = 1024 ** 3;

/**
 * Free space and inodes on the filesystem holding `path`. A full disk stops downloads (the
 * temp file cannot be written) and SQLite commits; a webroot of small files can run out of
 * inodes first.
 */
export function freeSpace(path: string, what: string): CheckResult {
  let s: ReturnType<typeof statfsSync>;
  try {
    s = statfsSync(path);
  } catch (err) {
    return fail(`cannot stat the filesystem of ${path}: ${why(err)}`);
  }
  const free = s.bavail * s.bsize;
  const total = s.blocks * s.bsize;
  const share = total > 0 ? free / total : 1;
  const inodeShare = s.files > 0 ? s.ffree / s.files : 1;
  const text = `${gib(free)} GiB free of ${gib(total)} GiB (${pct(share)}), ${pct(inodeShare)} of inodes free, on the filesystem of ${what} ${path}`;
  const fix = 'free some space (old backups, logs, `apt-get clean`) or grow the filesystem';
  if (free === 0 || (s.files > 0 && s.ffree === 0)) return fail(text, fix);
  if (free < GiB || share < 0.05 || inodeShare < 0.05) return warn(text, fix);
  return ok(text);
}

const gib = (n: number) => (n / GiB).toFixed(1);
const pct = (x: number) => `${Math.floor(x * 100)}%`;
