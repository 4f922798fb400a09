import { IntegrityError } from '../../fsutil/hash.js';
import type { ObjectInfo } from '../../store/store.js';
import { mapLimit } from '../../util/pool.js';
import type { SetContext } from '../context.js';
import { BLOBS_PREFIX, BUNDLES_PREFIX } from '../layout.js';
import { decodeSegment } from '../segment.js';
import { listSnapshots, readSnapshot, type Snapshot } from './snapshot.js';

/** Candidates whose date is re-checked, then deleted, together: the window between is short. */
const CHECK_BATCH = 100;
const CHECKS_IN_FLIGHT = 8;

/** Every blob and bundle with the store's dates: listed before anything that references them. */
export interface GarbageListing {
  blobs: ObjectInfo[];
  bundles: ObjectInfo[];
  /** The newest date among them (ms, the store's clock; 0 when none). */
  newest: number;
}

async function listAll(ctx: SetContext, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of ctx.store.list(prefix)) out.push(o);
  return out;
}

export function newestOf(objects: ObjectInfo[]): number {
  return objects.reduce((n, o) => Math.max(n, o.lastModified.getTime()), 0);
}

/**
 * The first step of garbage collection, before journals and snapshots are listed: a segment
 * or snapshot published after this listing is then seen by the steps that read references,
 * and a blob stored after it is no candidate at all.
 */
export async function listGarbage(ctx: SetContext): Promise<GarbageListing> {
  const blobs = await listAll(ctx, BLOBS_PREFIX);
  const bundles = await listAll(ctx, BUNDLES_PREFIX);
  return { blobs, bundles, newest: Math.max(newestOf(blobs), newestOf(bundles)) };
}

/**
 * The time store dates are judged against: the newest date the store gave any object this
 * housekeeping listed (the store's own clock, so a leader whose clock runs ahead cannot make
 * young objects look old), never later than this node's clock (so one object with a bogus
 * future date cannot either). Lagging behind real time (at most about one heartbeat, since
 * every live node rewrites its head that often) only delays collection.
 */
export function storeNow(now: number, ...newest: number[]): number {
  return Math.min(now, Math.max(0, ...newest));
}

interface References {
  digests: Set<string>;
  bundles: Set<string>;
  snapshots: Set<string>;
}

/**
 * Deletes blobs and bundles that nothing kept references, once older than `gc_grace` (so a
 * blob uploaded just before its segment, or a bundle just before its snapshot, is never
 * swept). `listing` was made before the journals were listed and every reference here is read
 * after it, so anything referenced by then is seen; each candidate blob's date is read again
 * just before it is deleted, so one stored again meanwhile (a node reusing old content
 * refreshes it before publishing a segment naming it) is kept. If a referenced object cannot
 * be read (another leader pruning it right now), collection is abandoned for this round.
 * `now` is the store's time (storeNow).
 */
export async function collectGarbage(ctx: SetContext, listing: GarbageListing, keptSnapshots: string[], keptSegments: ObjectInfo[], now: number): Promise<void> {
  const refs: References = { digests: new Set(), bundles: new Set(), snapshots: new Set() };
  // Snapshots are listed again now, after the blobs: one another leader wrote since this
  // housekeeping began references blobs whose segments it may already have pruned.
  const listed = await listSnapshots(ctx.store);
  const names = [...new Set([...keptSnapshots.filter((n) => listed.includes(n)), ...listed])];
  if (!(await readSnapshots(ctx, names, refs))) return;
  if (!(await readSegments(ctx, keptSegments, refs))) return;
  const expired = (at: Date) => now - at.getTime() > ctx.set.gcGrace;
  const candidates = () => {
    const keys = new Set([...refs.digests].map((d) => ctx.blobKey(d)));
    return {
      blobs: listing.blobs.filter((o) => !keys.has(o.key) && expired(o.lastModified)),
      bundles: listing.bundles.filter((o) => !refs.bundles.has(o.key) && expired(o.lastModified)),
    };
  };
  const first = candidates();
  if (first.blobs.length + first.bundles.length === 0) return;
  // Last, the snapshots once more: one written meanwhile (another leader's) may name some.
  const later = (await listSnapshots(ctx.store)).filter((n) => !refs.snapshots.has(n));
  if (!(await readSnapshots(ctx, later, refs))) return;
  const { blobs, bundles } = candidates();
  const dropped = await deleteUnlessRefreshed(ctx, blobs, expired);
  // Bundles are never stored again under the same key, and a missing one only makes a
  // bootstrap fetch its files one by one: no re-check.
  if (bundles.length > 0) await ctx.store.delete(bundles.map((o) => o.key));
  // `refreshed`: candidates found stored again (or gone) when re-checked, and so kept.
  if (blobs.length + bundles.length > 0) ctx.log.info({ blobs: dropped, bundles: bundles.length, refreshed: blobs.length - dropped }, 'deleted unreferenced blobs and bundles');
}

/**
 * Deletes the candidate blobs whose date, read again now, is still the listed one and still
 * past the grace period. Dates are compared to the second: HEAD answers carry whole seconds
 * where listings may carry milliseconds.
 */
async function deleteUnlessRefreshed(ctx: SetContext, blobs: ObjectInfo[], expired: (at: Date) => boolean): Promise<number> {
  const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
  let dropped = 0;
  for (let i = 0; i < blobs.length; i += CHECK_BATCH) {
    const batch = blobs.slice(i, i + CHECK_BATCH);
    const now = await mapLimit(batch, CHECKS_IN_FLIGHT, (o) => ctx.store.stat(o.key));
    const drop = batch.filter((o, j) => {
      const st = now[j];
      return st !== null && st !== undefined && seconds(st.lastModified) <= seconds(o.lastModified) && expired(st.lastModified);
    });
    if (drop.length === 0) continue;
    await ctx.store.delete(drop.map((o) => o.key));
    dropped += drop.length;
  }
  return dropped;
}

async function readSnapshots(ctx: SetContext, names: string[], refs: References): Promise<boolean> {
  for (const name of names) {
    let snap: Snapshot | null;
    try {
      snap = await readSnapshot(ctx, name, { allowExternalSymlinks: true });
    } catch (err) {
      return abandon(ctx, (err as Error).message);
    }
    if (!snap) return abandon(ctx, `snapshot ${name} vanished`);
    refs.snapshots.add(name);
    for (const e of snap.entries) if (e.digest) refs.digests.add(e.digest);
    // A line left out as invalid may still name content someone wants back: kept, not swept.
    for (const r of snap.rejected ?? []) if (r.digest) refs.digests.add(r.digest);
    for (const b of snap.bundles) refs.bundles.add(`${BUNDLES_PREFIX}${b.bundle}`);
  }
  return true;
}

/**
 * The digests each kept segment names. Segments never change once written, so each is read
 * once and its digests cached in the manifest, keyed by key and ETag: bytes stored under a
 * key again (a node rolled back reusing a seq) are read again, never judged by the old ones.
 */
async function readSegments(ctx: SetContext, segments: ObjectInfo[], refs: References): Promise<boolean> {
  const cacheKey = (o: ObjectInfo) => `${o.key}#${o.etag}`;
  for (const o of segments) {
    let digests = ctx.manifest.segmentDigests(cacheKey(o));
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
      ctx.manifest.cacheSegmentDigests(cacheKey(o), digests);
    }
    for (const d of digests) refs.digests.add(d);
  }
  ctx.manifest.forgetSegments(new Set(segments.map(cacheKey)));
  return true;
}

function abandon(ctx: SetContext, why: string): false {
  ctx.log.warn({ why }, 'garbage collection skipped this round');
  return false;
}
