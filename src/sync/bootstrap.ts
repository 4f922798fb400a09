import { join } from 'node:path';
import type { SetContext } from './context.js';
import { diskMatches, diskState } from './disk.js';
import { stageFromBundles } from './housekeep/bundles.js';
import { listSnapshots, readSnapshot, type Snapshot } from './housekeep/snapshot.js';
import { META, metaNumber } from './outbox.js';
import type { Decision, Resolved } from './plan.js';
import { MARKER_DIR, type Entry } from './record.js';
import { placedView, stateOf, type LocalEntry } from '../manifest/manifest.js';

/**
 * The snapshot a catch-up starts from, for a node that has never synced or whose cursors
 * point before the oldest kept segment of a peer (DESIGN "History"): the newest one that
 * reads and reaches every segment `needs` names. A malformed or unauthentic one is reported
 * and skipped (a writer could name one far in the future to stay "newest" for good), and so
 * is one written by a leader that was behind (two leaders at once), whose cursors stop short
 * of what the other pruned. Null when there is none.
 */
export async function newestSnapshot(ctx: SetContext, needs: Map<string, number>): Promise<Snapshot | null> {
  const names = await listSnapshots(ctx.store);
  for (const name of names.reverse()) {
    let s: Snapshot | null;
    try {
      s = await readSnapshot(ctx, name, { allowExternalSymlinks: ctx.set.allowExternalSymlinks });
    } catch (err) {
      ctx.stats.rejected++;
      ctx.log.error({ snapshot: name, reason: (err as Error).message }, 'rejected a snapshot; trying an older one');
      continue;
    }
    if (s && [...needs].every(([node, seq]) => (s!.cursors[node] ?? 0) >= seq)) {
      ctx.log.info({ snapshot: s.name, entries: s.entries.length }, 'catching up from a snapshot');
      return s;
    }
  }
  return null;
}

/**
 * A snapshot's entries as received records, planned like journal records and before the
 * journals after it. An entry standing for several concurrent versions is replayed as those
 * versions, so this node ranks later records against them exactly as the others do.
 */
export function snapshotRecords(snap: Snapshot): Entry[] {
  return snap.entries.flatMap((e) => (e.versions?.length ? e.versions : [e]));
}

/** The contents of the files the decisions write, from the snapshot's bundles where that saves requests. */
export function stageSnapshot(ctx: SetContext, snap: Snapshot, decisions: Decision[]): Promise<Map<string, string>> {
  const needed = new Set(decisions.filter((d) => d.op === 'write' && d.final.kind === 'file').map((d) => d.final.digest!));
  return stageFromBundles(ctx, snap.bundles, needed, join(ctx.set.path, MARKER_DIR, 'tmp'));
}

/**
 * A node back from a long absence knows paths the snapshot no longer has at all: deleted
 * while it was away, their tombstones since pruned. When everything this node has seen is
 * covered by the snapshot, such a path, unchanged on disk since the node last synced, is
 * deleted here too rather than resurrected. A path changed on disk meanwhile is left to the
 * next scan, which publishes it as the local change it is. `planned`: paths the journals
 * after the snapshot (or the snapshot itself) speak of, decided with them.
 */
export function deletedMeanwhile(ctx: SetContext, snap: Snapshot, planned: Set<string>): { decisions: Decision[]; excluded: { final: Resolved; base: LocalEntry | null }[] } {
  const out: Decision[] = [];
  const excluded: { final: Resolved; base: LocalEntry | null }[] = [];
  const covered =
    ctx.manifest.peers().every((p) => p.cursor <= (snap.cursors[p.node] ?? 0)) &&
    metaNumber(ctx, META.publishedSeq) <= (snap.cursors[ctx.nodeId] ?? 0);
  if (!covered) return { decisions: out, excluded };
  const inSnapshot = new Set([...planned, ...snap.entries.map((e) => e.path)]);
  // A path whose entry was left out as invalid is not known to be deleted: kept.
  for (const r of snap.rejected ?? []) if (r.path !== undefined) inSnapshot.add(r.path);
  // Paths with a change queued here (edited while away) are local changes, not deletions.
  for (const { seq } of ctx.manifest.outboxSegments()) {
    for (const r of ctx.manifest.outboxRecords(seq)) inSnapshot.add((JSON.parse(r.record) as { path: string }).path);
  }
  for (const e of ctx.manifest.allEntries().values()) {
    if (e.kind === 'deleted' || inSnapshot.has(e.path)) continue;
    const final = { ...stateOf(e), kind: 'deleted' as const, digest: null, size: 0, mode: 0, mtime: 0, target: null };
    delete final.versions;
    if (e.absent === 'excluded' || (!e.absent && ctx.excluded(e.path, e.kind === 'dir'))) {
      // Kept as the federation's state, never placed: it is forgotten there, so here too.
      excluded.push({ final, base: placedView(e) ?? null });
      continue;
    }
    const local = placedView(e);
    const unchanged = diskMatches(e, diskState(ctx.set.path, e.path));
    if (local && local.kind !== 'deleted' && unchanged) out.push({ path: e.path, local, final, op: 'delete', keepLocal: false });
    // Nothing of it here, or changed here (left to the next scan, as a file beside a tombstone).
    else if (e.absent) out.push({ path: e.path, local: unchanged ? local : undefined, final, op: 'record', keepLocal: false });
  }
  return { decisions: out, excluded };
}
