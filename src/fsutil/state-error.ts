import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Errno codes that say the file system refuses a write (read-only, immutable, not ours, full),
 * as opposed to damaged data: the fix is on the machine, never in deleting state.
 */
export const UNWRITABLE_CODES = ['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'EDQUOT'] as const;

/** SQLite's codes for a database file it cannot open or write, whatever the errno under it. */
const SQLITE_UNWRITABLE = /^SQLITE_(CANTOPEN|READONLY|FULL|IOERR|PERM)/;

export function isUnwritable(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string') return false;
  return (UNWRITABLE_CODES as readonly string[]).includes(code) || SQLITE_UNWRITABLE.test(code);
}

/** What to do about a refused write, by errno. */
export function unwritableAdvice(code: string | undefined, dir: string): string {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'SQLITE_FULL':
      return `the file system of ${dir} is full: free some space there`;
    case 'EROFS':
      return `the file system of ${dir} is mounted read-only: remount it read-write`;
    case 'EPERM':
    case 'EACCES':
      return `${dir} refuses writes: check its owner and mode, and \`lsattr -d ${dir}\` (immutable)`;
    default:
      return `check that ${dir} is writable and its file system neither read-only nor full`;
  }
}

/**
 * An error from writing or opening one of the node's state files, rewritten to name that file
 * (Node names the temp file, SQLite names nothing) and what to do. The code is kept, so a
 * caller can still tell a refused write from a damaged file.
 */
export function stateFileError(file: string, verb: 'write' | 'open', err: unknown, dir = dirname(file)): Error {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  // Node's message is "ENOSPC: no space left on device, open '<temp file>'": keep the first part.
  const text = String(e?.message ?? err).replace(/, \w+ '[^']*'(?: -> '[^']*')?$/, '');
  const reason = code && !text.startsWith(code) ? `${code}: ${text}` : text;
  const out = new Error(`cannot ${verb} ${file}: ${reason}; ${unwritableAdvice(code, dir)}`, { cause: err });
  (out as Error & { code?: string }).code = code;
  return out;
}

/** Enough bytes to need a data block: an empty file can be created on a full file system. */
const PROBE_BYTES = 4096;

/**
 * Whether `dir` takes a write now: creates, fills and removes a uniquely named file. Null when
 * it does, else the error (its code kept) naming the directory and what to do.
 */
export function probeWritable(dir: string): Error | null {
  const probe = join(dir, `.write-probe.${process.pid}.tmp`);
  try {
    writeFileSync(probe, Buffer.alloc(PROBE_BYTES), { mode: 0o600 });
  } catch (err) {
    try {
      rmSync(probe, { force: true });
    } catch {
      // refused like the write: nothing was left
    }
    return stateFileError(`in ${dir}`, 'write', err, dir);
  }
  rmSync(probe, { force: true });
  return null;
}
