import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** Paths remembered to leave out repeats; past this many, a repeat is listed again (harmless, memory bounded). */
const DEDUP_LIMIT = 100_000;
/** Bytes gathered before a write: a large apply writes the list in chunks, never whole in memory. */
const FLUSH_AT = 64 * 1024;

/**
 * The paths a cycle (or a daemon's run of cycles) changed on this disk from other nodes'
 * records, written as it goes to a file of NUL-terminated names (as `find -print0` writes,
 * since a name may hold a newline) for the set's `on_apply` hook. The file is made on the
 * first path, so a cycle that applied nothing leaves no trace.
 */
export class ChangedPaths {
  private fd: number | null = null;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private readonly seen = new Set<string>();
  /** Paths listed (repeats past the dedup limit included). */
  count = 0;
  readonly file: string;

  constructor(dir: string) {
    this.file = join(dir, `changed-${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  add(rel: string): void {
    if (this.seen.has(rel)) return;
    if (this.seen.size < DEDUP_LIMIT) this.seen.add(rel);
    const bytes = Buffer.from(`${rel}\0`);
    this.buffered.push(bytes);
    this.bufferedBytes += bytes.length;
    this.count++;
    if (this.bufferedBytes >= FLUSH_AT) this.flush();
  }

  private flush(): void {
    if (this.bufferedBytes === 0) return;
    if (this.fd === null) {
      mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
      this.fd = openSync(this.file, 'wx', 0o600);
    }
    const all = Buffer.concat(this.buffered);
    for (let off = 0; off < all.length; ) off += writeSync(this.fd, all, off);
    this.buffered = [];
    this.bufferedBytes = 0;
  }

  /** Writes what is left and closes the file: it is complete, for the hook to read. */
  close(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.seen.clear();
  }

  remove(): void {
    this.close();
    rmSync(this.file, { force: true });
  }
}

/** The directory of a set's change lists: `<state_dir>/<set>/on-apply/`. */
export function changedDir(stateDir: string, set: string): string {
  return join(stateDir, set, 'on-apply');
}

/** Removes lists left by processes that died before their hook ran (their pid is gone). */
export function removeStaleLists(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^changed-(\d+)-/.exec(name)?.[1]);
    if (pid && pid !== process.pid && !alive(pid)) rmSync(join(dir, name), { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
