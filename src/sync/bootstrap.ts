import { join } from 'node:path';
import type { SetContext } from './context.js';
import { diskMatches, diskState } from './disk.js';
import { stageFromBundles, unstage } from './housekeep/bundles.js';
import { listSnapshots, readSnapshot, type Snapshot } from './housekeep/snapshot.js';
import { META, metaNumber } from './outbox.js';
import type { Decision } from './plan.js';
import { MARKER_DIR } from './record.js';
import { KeptWanted, receiveApply } from './receive-apply.js';
import { placedView, stateOf } from '../manifest/manifest.js';
import { planRecords, type PlanOptions } from './reconcile.js';

/**
 * Catch-up from the newest snapshot, for a node that has never synced or whose cursors point
 * before the oldest kept segment of a peer (DESIGN "History"). The snapshot's entries are
 * reconciled with disk and manifest exactly like journal records; the contents come from the
 * snapshot's bundles where that saves requests; then the cursors jump to the snapshot's and
 * the journals after it are replayed as usual. Returns false when there is no snapshot.
 */
export async function catchUp(ctx: SetContext, opts: PlanOptions, behind: boolean, needs: Map<string, number> = new Map()): Promise<boolean> {
  const names = await listSnapshots(ctx.store);
  // The newest snapshot that reads and reaches every segment `needs` names: a malformed or
  // unauthentic one is reported and skipped (a writer could name one far in the future to
  // stay "newest" for good), and so is one written by a leader that was behind (two leaders
  // at once), whose cursors stop short of what the other pruned.
  let snap: Snapshot | null = null;
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
      snap = s;
      break;
    }
  }
  if (!snap) return false;
  ctx.log.info({ snapshot: snap.name, entries: snap.entries.length }, 'catching up from a snapshot');
  // An entry standing for several concurrent versions is replayed as those versions, so this
  // node ranks later records against them exactly as the others do.
  const decisions = await planRecords(ctx, snap.entries.flatMap((e) => (e.versions?.length ? e.versions : [e])), opts);
  if (behind) decisions.push(...deletedMeanwhile(ctx, snap));
  const needed = new Set(decisions.filter((d) => d.op === 'write' && d.final.kind === 'file').map((d) => d.final.digest!));
  const staged = await stageFromBundles(ctx, snap.bundles, needed, join(ctx.set.path, MARKER_DIR, 'tmp'));
  let trouble: KeptWanted | null = null;
  try {
    await receiveApply(ctx, decisions, staged);
  } catch (err) {
    // What could not be applied is kept wanted: the cursors may still jump.
    if (!(err instanceof KeptWanted)) throw err;
    trouble = err;
  } finally {
    await unstage(staged);
  }
  ctx.manifest.transaction(() => {
    const peers = new Map(ctx.manifest.peers().map((p) => [p.node, p]));
    for (const [node, seq] of Object.entries(snap.cursors)) {
      if (node === ctx.nodeId) continue;
      const p = peers.get(node) ?? { node, name: '', role: '', cursor: 0, headEtag: null, headSeq: 0, heartbeat: null, error: null };
      // headEtag cleared: the head is fetched again and the journal read on from the new cursor.
      if (seq > p.cursor) ctx.manifest.putPeer({ ...p, cursor: seq, headEtag: null });
    }
  });
  if (trouble) throw trouble;
  return true;
}

/**
 * A node back from a long absence knows paths the snapshot no longer has at all: deleted
 * while it was away, their tombstones since pruned. When everything this node has seen is
 * covered by the snapshot, such a path, unchanged on disk since the node last synced, is
 * deleted here too rather than resurrected. A path changed on disk meanwhile is left to the
 * next scan, which publishes it as the local change it is.
 */
function deletedMeanwhile(ctx: SetContext, snap: Snapshot): Decision[] {
  const covered =
    ctx.manifest.peers().every((p) => p.cursor <= (snap.cursors[p.node] ?? 0)) &&
    metaNumber(ctx, META.publishedSeq) <= (snap.cursors[ctx.nodeId] ?? 0);
  if (!covered) return [];
  const inSnapshot = new Set(snap.entries.map((e) => e.path));
  // A path whose entry was left out as invalid is not known to be deleted: kept.
  for (const r of snap.rejected ?? []) if (r.path !== undefined) inSnapshot.add(r.path);
  // Paths with a change queued here (edited while away) are local changes, not deletions.
  for (const { seq } of ctx.manifest.outboxSegments()) {
    for (const r of ctx.manifest.outboxRecords(seq)) inSnapshot.add((JSON.parse(r.record) as { path: string }).path);
  }
  const out: Decision[] = [];
  for (const e of ctx.manifest.allEntries().values()) {
    if (e.kind === 'deleted' || inSnapshot.has(e.path)) continue;
    const final = { ...stateOf(e), kind: 'deleted' as const, digest: null, size: 0, mode: 0, mtime: 0, target: null };
    delete final.versions;
    if (e.absent === 'excluded' || (!e.absent && ctx.excluded(e.path, e.kind === 'dir'))) {
      // Kept as the federation's state, never placed: it is forgotten there, so here too.
      ctx.manifest.putAbsent(final, 'excluded', placedView(e) ?? null);
      continue;
    }
    const local = placedView(e);
    const unchanged = diskMatches(e, diskState(ctx.set.path, e.path));
    if (local && local.kind !== 'deleted' && unchanged) out.push({ path: e.path, local, final, op: 'delete', keepLocal: false });
    // Nothing of it here, or changed here (left to the next scan, as a file beside a tombstone).
    else if (e.absent) out.push({ path: e.path, local: unchanged ? local : undefined, final, op: 'record', keepLocal: false });
  }
  return out;
}
