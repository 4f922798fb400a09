import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { hashFile } from '../fsutil/hash.js';
import { mtimeMs, permBits, statKey } from '../fsutil/stat.js';
import { keptHashes } from '../manifest/kept-hashes.js';
import { placedView, type LocalEntry } from '../manifest/manifest.js';
import { mapLimit } from '../util/pool.js';
import type { SetContext } from './context.js';
import { parentsAreDirs } from './disk.js';
import { escapeBytes } from '../log/escape.js';
import { MARKER_DIR, pathProblem, recordProblem, sameState, targetProblem, type Entry } from './record.js';
import { parseHlc } from './hlc.js';
import { bumpVV, type VersionVector } from './vv.js';

/** A local change found by a scan: the path's new state and the stat it was seen with. */
export interface Change {
  entry: Entry;
  stat: string | null;
}

export interface ScanResult {
  /** New states to record and publish: deletions deepest first, then the rest parent-first. */
  changes: Change[];
  /** Paths whose content is unchanged but whose stat moved (touch-free rewrite, chmod back). */
  restat: [path: string, stat: string][];
  /** Files left for later because they are still being written. */
  settling: string[];
  /** Remote states an interrupted apply had put in place: recorded, not published. */
  applied: Change[];
  /** Paths not published because receivers would refuse them (DESIGN rule 8), with why. */
  skipped: { path: string; reason: string }[];
  /** The subtrees this scan walked (undefined: the whole tree). */
  roots?: string[];
}

/**
 * What the scan keeps of a changed path's stat. Not the BigIntStats itself: a first scan
 * keeps one per file until it is hashed, and 100,000 of those are most of its memory.
 */
interface Seen {
  kind: 'file' | 'symlink' | 'dir';
  key: string;
  size: number;
  mode: number;
  mtime: number;
  ctime: number;
}

function seenOf(kind: Seen['kind'], st: BigIntStats, key = statKey(st)): Seen {
  return { kind, key, size: Number(st.size), mode: permBits(st), mtime: mtimeMs(st), ctime: Number(st.ctimeNs / 1_000_000n) };
}

/**
 * Whether a file's change time says it may still be being written. The change time, not
 * mtime: the kernel sets it on every write and nobody can set it back or ahead (a copy that
 * keeps times, or a file applied from a node whose clock is ahead, has an mtime in the future
 * and would wait hours). One still ahead of now comes from a file system whose clock differs
 * (an NFS server's): it cannot be judged, and waiting for the clock to pass it could take hours.
 */
function recentlyChanged(ctime: number, settleBefore: number): boolean {
  return ctime > settleBefore && ctime <= Date.now() + 1000;
}

/**
 * Walks the tree (or only the subtrees in `only`: the watcher's dirty paths, conflict copies) and compares each entry's
 * stat with the manifest; only entries whose stat moved are hashed. Nothing is written: the
 * result is committed by `commitScan`, so a dry run and a real run share this code.
 *
 * A path whose entry is not placed here (wanted, or excluded before) is compared with what
 * this node last placed there, and a change to it is made on that version. Such a change is
 * left to `opts.absent` scans (receive's, which decide it against the federation's entry in
 * the same step): recorded on its own, it would replace that entry in the manifest.
 */
export async function scanTree(ctx: SetContext, only?: string[], opts: { ignoreSettle?: boolean; absent?: boolean } = {}): Promise<ScanResult> {
  const root = ctx.set.path;
  const roots = only ? collapse(only) : undefined;
  const known = ctx.manifest.statIndex(roots);
  const full = (rel: string): LocalEntry | undefined => (known.has(rel) ? placedView(ctx.manifest.getEntry(rel)) : undefined);
  // null: an unchanged file or symlink, whose stat need not be kept (100,000 of them are).
  const seen = new Map<string, Seen | null>();
  // Directories that could not be read: their known children are not taken as deleted.
  const unreadable: string[] = [];
  // Conflict handling hashes files even while they change: their state must be recorded now.
  const settleBefore = opts.ignoreSettle ? Infinity : Date.now() - ctx.set.settle;
  const skipped: ScanResult['skipped'] = [];
  const check = { allowExternalSymlinks: ctx.set.allowExternalSymlinks };

  const visit = (rel: string): void => {
    let st: BigIntStats;
    try {
      st = lstatSync(join(root, rel), { bigint: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') unreadable.push(rel);
      // Over the system's path limit: it can be neither read here nor written elsewhere.
      if (code === 'ENAMETOOLONG' && !ctx.excluded(rel, false)) skipped.push({ path: rel, reason: 'path is too long for this system (ENAMETOOLONG)' });
      return;
    }
    if (ctx.excluded(rel, st.isDirectory())) return;
    // A name receivers would refuse is not published, nor anything below it (DESIGN rule 8).
    const bad = pathProblem(rel);
    if (bad) {
      skipped.push({ path: rel, reason: bad });
      return;
    }
    if (st.isDirectory()) {
      seen.set(rel, seenOf('dir', st));
      walkDir(rel);
    } else if (st.isFile() || st.isSymbolicLink()) {
      const kind = st.isFile() ? 'file' : 'symlink';
      const row = known.get(rel);
      const key = statKey(st);
      seen.set(rel, row?.kind === kind && row.stat === key ? null : seenOf(kind, st, key));
    } else ctx.log.warn({ path: rel }, 'skipping a socket, FIFO or device file');
  };

  const walkDir = (rel: string): void => {
    let names: Buffer[];
    try {
      names = readdirSync(join(root, rel), { encoding: 'buffer' });
    } catch (err) {
      ctx.log.warn({ path: rel || '.', err: (err as Error).message }, 'cannot read directory; its entries are left as they are');
      unreadable.push(rel);
      return;
    }
    for (const raw of names) {
      const name = raw.toString('utf8');
      // A name that does not survive a UTF-8 round trip cannot be named in a record; it is
      // listed by its escaped form.
      if (!Buffer.from(name, 'utf8').equals(raw)) {
        skipped.push({ path: `${rel === '' ? '' : `${rel}/`}${escapeBytes(raw)}`, reason: 'name is not valid UTF-8' });
        continue;
      }
      if (rel === '' && name === MARKER_DIR) continue;
      visit(rel === '' ? name : `${rel}/${name}`);
    }
  };

  // A path below a symlink is not in the tree, whatever named it (a remote record may).
  if (roots) {
    for (const p of roots) if (parentsAreDirs(root, p)) visit(p);
  } else walkDir('');
  ctx.stats.scanned += seen.size;

  const changes: Change[] = [];
  const restat: [string, string][] = [];
  const toHash: { rel: string; s: Seen; prev?: LocalEntry }[] = [];
  const settling: string[] = [];
  const applied: Change[] = [];

  for (const [rel, s] of seen) {
    if (s === null) continue;
    const row = known.get(rel);
    if (row?.absent && !opts.absent) continue;
    const key = s.key;
    if (s.kind === 'dir') {
      if (row?.kind === 'dir' && row.mode === s.mode) {
        if (row.stat !== 'dir') restat.push([rel, 'dir']);
        continue;
      }
      changes.push({ entry: newEntry(ctx, rel, full(rel), { kind: 'dir', mode: s.mode, mtime: 0 }), stat: 'dir' });
    } else if (s.kind === 'symlink') {
      if (row?.kind === 'symlink' && row.stat === key) continue;
      const prev = full(rel);
      const target = readlinkSync(join(root, rel));
      const problem = targetProblem(rel, target, ctx.set.allowExternalSymlinks);
      if (problem) {
        skipped.push({ path: rel, reason: problem });
        continue;
      }
      const next = { kind: 'symlink' as const, target, mode: 0o777, mtime: s.mtime };
      if (prev && sameState(prev, { ...next, digest: null })) restat.push([rel, key]);
      else changes.push({ entry: newEntry(ctx, rel, prev, next), stat: key });
    } else {
      if (row?.kind === 'file' && row.stat === key) continue;
      if (recentlyChanged(s.ctime, settleBefore)) {
        settling.push(rel);
        continue;
      }
      toHash.push({ rel, s, prev: full(rel) });
    }
  }

  const kept = toHash.length > 0 ? keptHashes(ctx.manifest) : null;
  await mapLimit(toHash, 4, async ({ rel, s, prev }) => {
    const abs = join(root, rel);
    // Hashed by a cycle the max-delete rail refused, and unchanged since: not read again.
    let hashed = kept?.(rel, s.key);
    if (!hashed) {
      try {
        hashed = await hashFile(abs, s.size);
      } catch (err) {
        ctx.log.warn({ path: rel, err: (err as Error).message }, 'cannot read file; left for the next cycle');
        return;
      }
      ctx.stats.hashed++;
    }
    // A file that changed while it was read is still being written: next cycle.
    const after = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
    if (!after || statKey(after) !== s.key) {
      settling.push(rel);
      return;
    }
    const next = { kind: 'file' as const, digest: hashed.digest, size: hashed.size, mode: s.mode, mtime: s.mtime, target: null };
    // Put in place by an apply that crashed before recording it: that remote state, not a change.
    const interrupted = ctx.manifest.applying(rel);
    if (interrupted && sameState(interrupted, next)) applied.push({ entry: interrupted, stat: s.key });
    else if (prev && sameState(prev, next)) restat.push([rel, s.key]);
    else changes.push({ entry: newEntry(ctx, rel, prev, next), stat: s.key });
  });

  const deletions: Change[] = [];
  // `known` holds exactly the scanned scope: what it has and the walk did not see is gone.
  for (const [rel, row] of known) {
    if (row.kind === 'deleted' || seen.has(rel) || (row.absent && !opts.absent)) continue;
    if (ctx.excluded(rel, row.kind === 'dir')) continue;
    // Recorded by an older version that published it: no valid record can delete it either.
    if (pathProblem(rel)) continue;
    if (unreadable.some((u) => u === '' || rel === u || rel.startsWith(`${u}/`))) continue;
    deletions.push({ entry: newEntry(ctx, rel, full(rel), { kind: 'deleted', mode: 0, mtime: 0 }), stat: null });
  }
  deletions.sort((a, b) => (a.entry.path < b.entry.path ? 1 : -1));
  changes.sort((a, b) => (a.entry.path < b.entry.path ? -1 : 1));
  // Record order is apply order: children go before their parent directory is deleted,
  // and a parent directory exists before its children are created.
  let ordered = [...deletions, ...changes];
  // HLCs are drawn in that order, so the journal is in HLC order too.
  for (const c of ordered) c.entry.hlc = ctx.clock.tick();
  // Every record is checked as receivers will check it (a time past the year 5000, say): one they
  // would refuse is not published.
  ordered = ordered.filter((c) => {
    const problem = recordProblem(c.entry, check);
    if (problem) skipped.push({ path: c.entry.path, reason: problem.startsWith(`${c.entry.path}: `) ? problem.slice(c.entry.path.length + 2) : problem });
    return !problem;
  });
  ctx.stats.settling += settling.length;
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { changes: ordered, restat, settling, applied, skipped, roots };
}

function newEntry(ctx: SetContext, path: string, prev: LocalEntry | undefined, next: Partial<Entry> & Pick<Entry, 'kind'>): Entry {
  return {
    path,
    kind: next.kind,
    digest: next.digest ?? null,
    size: next.size ?? 0,
    mode: next.mode ?? 0,
    mtime: next.mtime ?? 0,
    target: next.target ?? null,
    vv: prev ? bumpVV(prev.vv, ctx.nodeId) : firstVV(ctx),
    hlc: '', // drawn once the changes are ordered
    author: ctx.nodeId,
  };
}

/**
 * The vector of a path's first version this node knows of. Its counter starts at the clock's
 * wall time, not at 1: housekeeping forgets old tombstones (after history + node_timeout), and
 * another node may still hold one of this path when this node, having forgotten it, creates
 * the path again. Counted from 1 again, the new version would rank below that tombstone there
 * and never arrive; counted from the time, it is newer than anything this node wrote before.
 */
function firstVV(ctx: SetContext): VersionVector {
  return { [ctx.nodeId]: Math.max(Date.now(), parseHlc(ctx.clock.current).wall) };
}

/** Dirty paths without those already covered by a dirty ancestor. */
export function collapse(paths: string[]): string[] {
  const set = new Set(paths);
  if (set.has('')) return [''];
  const covered = (p: string): boolean => {
    for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) if (set.has(p.slice(0, i))) return true;
    return false;
  };
  return [...set].filter((p) => !covered(p)).sort();
}
