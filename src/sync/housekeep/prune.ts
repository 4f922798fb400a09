import type { ObjectInfo } from '../../store/store.js';
import type { SetContext } from '../context.js';
import { JOURNAL_PREFIX, segmentOf } from '../layout.js';
import type { Members } from './leader.js';
import { snapshotKey } from './snapshot.js';

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
 * segments back: it catches up from a snapshot when it returns. `storeTime` is the store's
 * time (gc.ts storeNow), so segment ages are store dates compared with a store date.
 */
export async function pruneSegments(
  ctx: SetContext,
  members: Members,
  segments: ObjectInfo[],
  covered: (owner: string) => number,
  storeTime: number,
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
    const old = storeTime - o.lastModified.getTime() > ctx.set.history;
    if (old && seg.seq <= limits.get(seg.node)!) drop.push(o.key);
    else kept.push(o);
  }
  if (drop.length > 0) {
    await ctx.store.delete(drop);
    ctx.log.info({ segments: drop.length }, 'pruned acknowledged journal segments');
  }
  return kept;
}
