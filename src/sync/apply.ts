import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError } from '../fsutil/hash.js';
import { resolveOwner } from '../fsutil/owner.js';
import { Progress } from '../log/progress.js';
import { mapLimit } from '../util/pool.js';
import type { SetContext } from './context.js';
import { diskMatches, diskState, RejectedRecord } from './disk.js';
import { MissingBlob, Writer, type Placed, type Ready } from './place.js';
import type { Decision } from './plan.js';
import { MARKER_DIR } from './record.js';

const DOWNLOADS_IN_FLIGHT = 8;
/** Files and symlinks put in place per pair of manifest commits (see `install`). */
const LEAVES_PER_COMMIT = 256;

export interface ApplyOutcome extends Placed {
  /**
   * The first failure that is this node's or the store's trouble (not the record's content):
   * the cycle reports it. Its record, like every record not applied, is kept wanted.
   */
  retryable: Error | null;
}

/**
 * Carries out the decisions (`prestaged`: digest → verified temp file, e.g. from bundles; a
 * file handed to a path leaves the map, renamed into place or removed here, and the caller
 * removes what is left): deletions deepest first, then directories parent first, then
 * files and symlinks (downloads in parallel). Every write goes to `<root>/.fedsync/tmp`, is
 * verified, given its mode and mtime, and renamed into place; the manifest records the stat
 * the tool itself produced, so nothing echoes back as a local change.
 */
export async function applyDecisions(ctx: SetContext, decisions: Decision[], prestaged: Map<string, string> = new Map()): Promise<ApplyOutcome> {
  const out: ApplyOutcome = { keptAside: [], madeParents: [], retryable: null };
  const tmpDir = join(ctx.set.path, MARKER_DIR, 'tmp');
  mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
  const owner = ctx.set.owner && process.getuid?.() === 0 ? resolveOwner(ctx.set.owner) : null;
  const w = new Writer(ctx, tmpDir, owner, out);

  // Nothing received is dropped: a record not applied now stays wanted (DESIGN rule 7).
  // An error the first time, a warning on each retry: status counts them meanwhile.
  const reject = (d: Decision, err: unknown): void => {
    const record = err instanceof RejectedRecord || err instanceof IntegrityError || err instanceof MissingBlob;
    const tries = keepWanted(ctx, d, (err as Error).message);
    const line = { path: d.path, from: d.final.author, reason: (err as Error).message, tries };
    if (tries === 1) ctx.log.error(line, 'cannot apply a remote record now; it stays wanted and is retried');
    else ctx.log.warn(line, 'a wanted record still cannot be applied; retried later');
    if (!record) out.retryable ??= err as Error;
  };
  const guarded = async (d: Decision, fn: () => Promise<void> | void): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      reject(d, err);
    }
  };

  const records = decisions.filter((d) => d.op === 'record');
  const deletes = decisions.filter((d) => d.op === 'delete').sort((a, b) => (a.path < b.path ? 1 : -1));
  // A path below one this batch turns into a file or symlink waits until that is in place:
  // run alongside it, it would recreate its parent as a directory under the other's feet.
  const leafPaths = new Set(decisions.filter((d) => (d.op === 'write' || d.op === 'meta') && d.final.kind !== 'dir').map((d) => d.path));
  const deferred = (d: Decision) => (d.op === 'write' || d.op === 'meta') && parentsOf(d.path).some((p) => leafPaths.has(p));
  const later = decisions.filter(deferred).sort((a, b) => (a.path < b.path ? -1 : 1));
  const dirs = decisions.filter((d) => d.op !== 'record' && d.op !== 'delete' && d.final.kind === 'dir' && !deferred(d)).sort((a, b) => (a.path < b.path ? -1 : 1));
  const leaves = decisions.filter((d) => (d.op === 'write' || d.op === 'meta') && d.final.kind !== 'dir' && !deferred(d));

  ctx.manifest.transaction(() => {
    for (const d of records) ctx.manifest.putEntry(d.final, d.local?.stat ?? null);
  });
  // Content already on this disk (a rename elsewhere, a copy) is taken before deletions run.
  // Several at a time: each ends in a datasync, and a bootstrap stages thousands of files.
  const staged = new Map<Decision, string>();
  await mapLimit(
    leaves.filter((d) => d.op === 'write' && d.final.kind === 'file'),
    DOWNLOADS_IN_FLIGHT,
    (d) =>
      guarded(d, async () => {
        const tmp = (await w.copyStaged(prestaged.get(d.final.digest!))) ?? (await w.copyLocal(d.final));
        if (tmp) staged.set(d, tmp);
      }),
  );
  // Those are this function's now (`staged` below): the caller need not remove them one by one.
  for (const [digest, tmp] of prestaged) if (w.took(tmp)) prestaged.delete(digest);
  for (const d of deletes) await guarded(d, () => w.remove(d));
  for (const d of dirs) await guarded(d, () => w.dir(d));
  const toFetch = new Set(leaves.filter((d) => d.op === 'write' && d.final.kind === 'file' && !staged.has(d)));
  const fetched = (d: Decision) => (toFetch.has(d) ? d.final.size : 0);
  const progress = new Progress({ label: `${ctx.set.name}: download` });
  progress.start(leaves.length, leaves.reduce((n, d) => n + fetched(d), 0));
  try {
    // In chunks: a chunk's contents are fetched and made ready in parallel, then put in place
    // in a row with two manifest commits for the whole chunk instead of two per file.
    for (let i = 0; i < leaves.length; i += LEAVES_PER_COMMIT) {
      const chunk = leaves.slice(i, i + LEAVES_PER_COMMIT);
      const ready: Ready[] = [];
      await mapLimit(chunk, DOWNLOADS_IN_FLIGHT, (d) =>
        guarded(d, async () => {
          ready.push(await w.prepare(d, staged.get(d)));
          staged.delete(d);
        }),
      );
      w.install(ready, (r, err) => reject(r.d, err));
      for (const d of chunk) progress.tick(1, fetched(d));
    }
  } finally {
    progress.done();
  }
  for (const d of later) {
    await guarded(d, async () => {
      if (d.final.kind === 'dir') return w.dir(d);
      w.install([await w.prepare(d, undefined)], (r, err) => reject(r.d, err));
    });
  }
  for (const tmp of staged.values()) await rm(tmp, { force: true });
  // Versions a former id of this node wrote and this disk lost (identity.ts `heirOf`).
  for (const d of decisions) {
    for (const v of d.heirCopies ?? []) {
      try {
        await w.keepHeirCopy(d.path, v);
      } catch (err) {
        ctx.log.error({ path: d.path, version: v.hlc, reason: (err as Error).message }, 'cannot keep a version this node published before its state went back in time; `fedsync history` lists it');
        out.retryable ??= err as Error;
      }
    }
  }
  return out;
}

/** `a/b/c` → `a`, `a/b`. */
function parentsOf(path: string): string[] {
  const segs = path.split('/');
  return segs.slice(1).map((_, i) => segs.slice(0, i + 1).join('/'));
}

/** Tries of a wanted record made every cycle before the backoff starts. */
const RETRY_EVERY_CYCLE = 3;
const FIRST_BACKOFF_MS = 60_000;
/** The backoff's cap: a wanted record is retried at least hourly. */
const MAX_BACKOFF_MS = 3_600_000;

/**
 * Keeps a record that could not be applied as the path's wanted entry: its state is the
 * federation's, retried every cycle at first, then with a doubling backoff up to an hour,
 * until it applies or a newer record supersedes it (returns the tries so far; a newer record
 * starts again from one). What this node had placed at the path
 * stays its base, unless this attempt already moved it away (nothing is there any more).
 */
export function keepWanted(ctx: SetContext, d: Decision, reason: string, now = Date.now()): number {
  const e = ctx.manifest.getEntry(d.path);
  const prev = e?.wanted;
  // The path stays wanted since its first failure; a newer record gets its own quick tries.
  const same = e !== undefined && e.hlc === d.final.hlc && e.author === d.final.author;
  const tries = (same ? (prev?.tries ?? 0) : 0) + 1;
  const delay = tries <= RETRY_EVERY_CYCLE ? 0 : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (tries - RETRY_EVERY_CYCLE - 1));
  const disk = diskState(ctx.set.path, d.path);
  const gone = disk === null && d.local !== undefined && d.local.kind !== 'deleted' && !diskMatches(d.local, null);
  const base = d.local && !gone ? { ...d.local, ...(d.keepLocal ? { keepLocal: true } : {}) } : null;
  ctx.manifest.putAbsent(d.final, 'wanted', base, { since: prev?.since ?? now, retryAt: now + delay, tries, reason: reason.slice(0, 500) });
  return tries;
}
