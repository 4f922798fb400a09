import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { step, type SetContext } from '../context.js';
import { META, metaNumber } from '../outbox.js';
import { buildBundles } from './bundles.js';
import { readMembers } from './leader.js';
import { newestCovering, pruneBound, prunedThrough, snapshotCursors } from './coverage.js';
import { collectGarbage, listGarbage, newestOf, storeNow } from './gc.js';
import { listJournals, pruneSegments, pruneSnapshots } from './prune.js';
import { encodeSnapshot, listSnapshots, readSnapshot, snapshotKey, snapshotName, type Snapshot } from './snapshot.js';
import { MARKER_DIR, recordProblem } from '../record.js';
import { stateOf } from '../../manifest/manifest.js';

const HOUSEKEEP_AT = 'housekeep_at';
const SNAPSHOT_AT = 'snapshot_at';
/** When a node's first cycle left housekeeping to the next one. */
const FIRST_CYCLE_AT = 'first_cycle_at';

export interface HousekeepResult {
  leader: boolean;
  snapshot: string | null;
}

/** Housekeeping runs inside a cycle at most every `snapshot_every` (and at most hourly). */
export function housekeepingDue(ctx: SetContext, now = Date.now()): boolean {
  const last = Number(ctx.manifest.getMeta(HOUSEKEEP_AT) ?? 0);
  return now - last >= Math.min(ctx.set.snapshotEvery, 3_600_000);
}

/**
 * True, once, in a node's first cycle: that cycle publishes or fetches the whole tree and is
 * long enough already, so the snapshot (a second upload of every small file, in bundles) and
 * the garbage collection wait for the next cycle, a minute later under cron.
 */
export function deferFirstHousekeeping(ctx: SetContext, now = Date.now()): boolean {
  if (ctx.manifest.getMeta(HOUSEKEEP_AT) !== undefined || ctx.manifest.getMeta(FIRST_CYCLE_AT) !== undefined) return false;
  ctx.manifest.setMeta(FIRST_CYCLE_AT, now);
  return true;
}

/**
 * Housekeeping (DESIGN "History"), as steps: every node tidies its own temp files and
 * manifest; the leader also writes a snapshot when enough has changed, prunes old snapshots,
 * prunes journal segments every live node has acknowledged, and collects unreferenced blobs.
 * Every step is idempotent and safe to interrupt, and two leaders at once only repeat work.
 */
export async function housekeep(ctx: SetContext, opts: { force?: boolean } = {}): Promise<HousekeepResult> {
  const now = Date.now();
  await step('housekeep: local', () => tidyLocal(ctx, now));
  const members = await step('housekeep: members', () => readMembers(ctx, now));
  const result: HousekeepResult = { leader: members.leader === ctx.nodeId, snapshot: null };
  if (result.leader) {
    let names = await step('housekeep: list snapshots', () => listSnapshots(ctx.store));
    const newestName = names.at(-1);
    let newest: Snapshot | null = null;
    try {
      newest = newestName ? await readSnapshot(ctx, newestName, { allowExternalSymlinks: true }) : null;
    } catch (err) {
      ctx.log.error({ snapshot: newestName, reason: (err as Error).message }, 'the newest snapshot does not read; writing a new one');
    }
    // Listed again just before writing: another leader (clock skew) may have written one
    // meanwhile, and a leader that is behind it must not shadow it with a staler one.
    const latest = snapshotDue(ctx, newest, now, opts.force ?? false) ? (await listSnapshots(ctx.store)).at(-1) : undefined;
    if (latest && latest !== newestName) {
      try {
        newest = await readSnapshot(ctx, latest, { allowExternalSymlinks: true });
        names = [...new Set([...names, latest])].sort();
      } catch {
        // unreadable: judged against the one read before
      }
    }
    if (snapshotDue(ctx, newest, now, opts.force ?? false)) {
      newest = await step('housekeep: snapshot', () => writeSnapshot(ctx, newest));
      result.snapshot = newest.name;
      names = [...names, newest.name];
    }
    if (newest) {
      // Blobs first: every reference (journals, snapshots, bundles) is read after this listing.
      const garbage = await step('housekeep: list blobs', () => listGarbage(ctx));
      const journals = await step('housekeep: list journals', () => listJournals(ctx));
      const storeTime = storeNow(now, members.newest, garbage.newest, newestOf(journals));
      const cursors = await step('housekeep: read snapshot cursors', () => snapshotCursors(ctx, names, [newest!]));
      const covering = newestCovering(names, cursors, prunedThrough(journals, members.heads));
      const kept = await step('housekeep: prune snapshots', () => pruneSnapshots(ctx, names, now, covering));
      const segments = await step('housekeep: prune journals', () => pruneSegments(ctx, members, journals, pruneBound(kept, cursors), storeTime));
      await step('housekeep: collect garbage', () => collectGarbage(ctx, garbage, kept, segments, storeTime));
    }
  }
  ctx.manifest.setMeta(HOUSEKEEP_AT, now);
  return result;
}

/** A snapshot is due when the last one is older than `snapshot_every` and the state moved since. */
function snapshotDue(ctx: SetContext, newest: Snapshot | null, now: number, force: boolean): boolean {
  if (ctx.manifest.outboxSegments().length > 0) return false; // only published state goes in
  if (!newest) return true;
  const cursors = currentCursors(ctx);
  const moved = Object.entries(cursors).some(([n, s]) => (newest.cursors[n] ?? 0) < s);
  // Behind the newest snapshot somewhere (another leader's): this state would cover less.
  const behind = Object.entries(newest.cursors).some(([n, s]) => (cursors[n] ?? 0) < s);
  if (!moved || behind) return false;
  if (force) return true;
  const last = Math.max(Number(ctx.manifest.getMeta(SNAPSHOT_AT) ?? 0), Number(newest.name.slice(0, 13)));
  return now - last >= ctx.set.snapshotEvery;
}

function currentCursors(ctx: SetContext): Record<string, number> {
  const cursors: Record<string, number> = { [ctx.nodeId]: metaNumber(ctx, META.publishedSeq) };
  for (const p of ctx.manifest.peers()) cursors[p.node] = p.cursor;
  return cursors;
}

/**
 * The leader's manifest, with its outbox empty, is the federation's state at its cursors:
 * that is the snapshot. Every entry goes in, placed on this disk or not (paths the leader
 * excludes, records it could not apply yet): never the leader's disk or filters. Bundles are
 * written before it, and the snapshot is the commit point.
 */
async function writeSnapshot(ctx: SetContext, previous: Snapshot | null): Promise<Snapshot> {
  const hlc = ctx.clock.tick();
  const name = snapshotName(hlc, ctx.nodeId);
  const check = { allowExternalSymlinks: true };
  let invalid = 0;
  const entries = [...ctx.manifest.allEntries().values()]
    .filter((e) => Object.keys(e.vv).length > 0)
    .map(stateOf)
    // What receivers would refuse (kept by an older version) stays out (DESIGN rule 8).
    .filter((e) => {
      const ok = [e, ...(e.versions ?? [])].every((v) => recordProblem(v, check) === null);
      if (!ok) invalid++;
      return ok;
    })
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  if (invalid > 0) ctx.log.warn({ entries: invalid }, 'left invalid entries out of the snapshot');
  const bundles = await buildBundles(ctx, name, entries, previous);
  const snap: Snapshot = { name, node: ctx.nodeId, hlc, created: new Date().toISOString(), cursors: currentCursors(ctx), entries, bundles };
  await ctx.store.put(snapshotKey(name), encodeSnapshot(snap));
  ctx.manifest.setMeta(SNAPSHOT_AT, Date.now());
  ctx.manifest.setMeta(META.hlc, ctx.clock.current);
  ctx.log.info({ snapshot: name, entries: entries.length, bundled: bundles.length }, 'wrote a snapshot');
  return snap;
}

/** Every node: stale temp files, old tombstones and blob notes, a compact manifest. */
function tidyLocal(ctx: SetContext, now: number): void {
  const tmp = join(ctx.set.path, MARKER_DIR, 'tmp');
  for (const name of safeList(tmp)) {
    const p = join(tmp, name);
    // Only what no cycle can still be writing (the cycle holds the lock; the age is a second guard).
    if (now - statSync(p).mtimeMs > 3_600_000) rmSync(p, { recursive: true, force: true });
  }
  const { tombstones } = ctx.manifest.compact(now - ctx.set.history - ctx.set.nodeTimeout, now - ctx.set.gcGrace);
  if (tombstones > 0) ctx.log.info({ tombstones }, 'forgot old tombstones');
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
