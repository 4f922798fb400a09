import { IntegrityError } from '../../fsutil/hash.js';
import type { ObjectInfo } from '../../store/store.js';
import type { SetContext } from '../context.js';
import { BLOBS_PREFIX, BUNDLES_PREFIX, JOURNAL_PREFIX, segmentOf } from '../layout.js';
import { decodeSegment } from '../segment.js';
import type { Members } from './leader.js';
import { listSnapshots, loadSnapshot, snapshotKey, type Snapshot } from './snapshot.js';

const KEEP_NEWEST_SNAPSHOTS = 3;
const DAY = 86_400_000;

async function listAll(ctx: SetContext, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of ctx.store.list(prefix)) out.push(o);
  return out;
}

/**
 * Snapshots kept: the newest few, the newest of each day within `history`, and `covering`,
 * the newest that reaches every journal's pruned segments (a newer one written by a leader
 * that was behind may not). Returns the names kept (oldest first) after deleting the others.
 */
export async function pruneSnapshots(ctx: SetContext, names: string[], now: number, covering: string | null): Promise<string[]> {
  const keep = new Set(names.slice(-KEEP_NEWEST_SNAPSHOTS));
  if (covering) keep.add(covering);
  const perDay = new Map<number, string>();
  for (const n of names) {
    const wall = Number(n.slice(0, 13));
    if (now - wall <= ctx.set.history) perDay.set(Math.floor(wall / DAY), n);
  }
  for (const n of perDay.values()) keep.add(n);
  const drop = names.filter((n) => !keep.has(n));
  if (drop.length > 0) {
    await ctx.store.delete(drop.map(snapshotKey));
    ctx.log.info({ snapshots: drop.length }, 'pruned old snapshots');
  }
  return names.filter((n) => keep.has(n));
}

export function listJournals(ctx: SetContext): Promise<ObjectInfo[]> {
  return listAll(ctx, JOURNAL_PREFIX);
}

/**
 * Journal segments are deleted once every live node has acknowledged them, the kept
 * snapshots cover them (`covered`, see coverage.ts) and they are older than `history`. A
 * node's own acks are its cursors; a silent node (past `node_timeout`) no longer holds
 * segments back: it catches up from a snapshot when it returns.
 */
export async function pruneSegments(
  ctx: SetContext,
  members: Members,
  segments: ObjectInfo[],
  covered: (owner: string) => number,
  now: number,
): Promise<ObjectInfo[]> {
  const myCursors = new Map(ctx.manifest.peers().map((p) => [p.node, p.cursor]));
  const acked = (owner: string): number => {
    let min = Infinity;
    for (const h of members.live) {
      // A publish-only node never reads journals, so it has nothing to acknowledge.
      if (h.node === owner || h.role === 'publish') continue;
      const ack = h.node === ctx.nodeId ? (myCursors.get(owner) ?? 0) : (h.acks[owner] ?? 0);
      min = Math.min(min, ack);
    }
    return min;
  };
  const limits = new Map<string, number>();
  const drop: string[] = [];
  const kept: ObjectInfo[] = [];
  for (const o of segments) {
    const seg = segmentOf(o.key);
    if (!seg) continue;
    if (!limits.has(seg.node)) limits.set(seg.node, Math.min(acked(seg.node), covered(seg.node)));
    const old = now - o.lastModified.getTime() > ctx.set.history;
    if (old && seg.seq <= limits.get(seg.node)!) drop.push(o.key);
    else kept.push(o);
  }
  if (drop.length > 0) {
    await ctx.store.delete(drop);
    ctx.log.info({ segments: drop.length }, 'pruned acknowledged journal segments');
  }
  return kept;
}

/**
 * Deletes blobs and bundles that nothing kept references, once older than `gc_grace` (so a
 * blob uploaded just before its segment, or a bundle just before its snapshot, is never
 * swept). Blobs are listed first and references read after, so anything referenced by the
 * time the references are read is seen; if a referenced object cannot be read (another
 * leader pruning it right now), collection is abandoned for this round.
 */
export async function collectGarbage(ctx: SetContext, keptSnapshots: string[], keptSegments: ObjectInfo[], now: number): Promise<void> {
  const blobs = await listAll(ctx, BLOBS_PREFIX);
  const bundles = await listAll(ctx, BUNDLES_PREFIX);
  // Snapshots are listed again now, after the blobs: one another leader wrote since this
  // housekeeping began references blobs whose segments it may already have pruned.
  const listed = await listSnapshots(ctx.store);
  keptSnapshots = [...new Set([...keptSnapshots.filter((n) => listed.includes(n)), ...listed])];
  const referenced = new Set<string>();
  const usedBundles = new Set<string>();
  for (const name of keptSnapshots) {
    let snap: Snapshot | null;
    try {
      snap = await loadSnapshot(ctx.store, name, { allowExternalSymlinks: true });
    } catch (err) {
      return abandon(ctx, (err as Error).message);
    }
    if (!snap) return abandon(ctx, `snapshot ${name} vanished`);
    for (const e of snap.entries) if (e.digest) referenced.add(e.digest);
    for (const b of snap.bundles) usedBundles.add(`${BUNDLES_PREFIX}${b.bundle}`);
  }
  for (const o of keptSegments) {
    let digests = ctx.manifest.segmentDigests(o.key);
    if (!digests) {
      let body: Buffer | null;
      try {
        body = await ctx.store.get(o.key);
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        return abandon(ctx, err.message);
      }
      if (!body) return abandon(ctx, `segment ${o.key} vanished`);
      const [, owner, seq] = o.key.split('/') as [string, string, string];
      try {
        digests = [...new Set(decodeSegment(body, owner, Number(seq), { allowExternalSymlinks: true }).records.flatMap((r) => (r.digest ? [r.digest] : [])))];
      } catch (err) {
        return abandon(ctx, (err as Error).message);
      }
      ctx.manifest.cacheSegmentDigests(o.key, digests);
    }
    for (const d of digests) referenced.add(d);
  }
  ctx.manifest.forgetSegments(new Set(keptSegments.map((o) => o.key)));
  const expired = (o: ObjectInfo) => now - o.lastModified.getTime() > ctx.set.gcGrace;
  const keys = new Set([...referenced].map((d) => ctx.blobKey(d)));
  const dropBlobs = blobs.filter((o) => !keys.has(o.key) && expired(o)).map((o) => o.key);
  const dropBundles = bundles.filter((o) => !usedBundles.has(o.key) && expired(o)).map((o) => o.key);
  if (dropBlobs.length + dropBundles.length > 0) {
    await ctx.store.delete([...dropBlobs, ...dropBundles]);
    ctx.log.info({ blobs: dropBlobs.length, bundles: dropBundles.length }, 'deleted unreferenced blobs and bundles');
  }
}

function abandon(ctx: SetContext, why: string): void {
  ctx.log.warn({ why }, 'garbage collection skipped this round');
}
