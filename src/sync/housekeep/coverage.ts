import type { ObjectInfo } from '../../store/store.js';
import type { SetContext } from '../context.js';
import type { Head } from '../head.js';
import { segmentOf } from '../layout.js';
import { readSnapshot, type Snapshot } from './snapshot.js';

/** For each node, the last of its journal segments a snapshot includes. */
export type Cursors = Record<string, number>;

const CACHE_KEY = 'snapshot_cursors';

/**
 * The cursors of each named snapshot. Snapshots never change once written, so each is read
 * once and its cursors remembered in the manifest; one that does not read is left out (no
 * catching-up node can start from it either).
 */
export async function snapshotCursors(ctx: SetContext, names: string[], known: Snapshot[] = []): Promise<Map<string, Cursors>> {
  let cache: Record<string, Cursors> = {};
  try {
    cache = JSON.parse(ctx.manifest.getMeta(CACHE_KEY) ?? '{}') as Record<string, Cursors>;
  } catch {
    // a damaged cache is only a cache: read the snapshots again
  }
  for (const s of known) cache[s.name] = s.cursors;
  const out = new Map<string, Cursors>();
  for (const name of names) {
    let cursors: Cursors | undefined = cache[name];
    if (!cursors) {
      try {
        cursors = (await readSnapshot(ctx, name, { allowExternalSymlinks: true }))?.cursors;
      } catch (err) {
        ctx.log.warn({ snapshot: name, reason: (err as Error).message }, 'a snapshot does not read; it covers nothing');
      }
    }
    if (cursors) out.set(name, cursors);
  }
  ctx.manifest.setMeta(CACHE_KEY, JSON.stringify(Object.fromEntries(out)));
  return out;
}

/**
 * How far each journal is already pruned: the segment before its oldest kept one, or the
 * head's seq when none is kept. A catching-up node needs one snapshot reaching all of these.
 */
export function prunedThrough(segments: ObjectInfo[], heads: Head[]): Map<string, number> {
  const oldest = new Map<string, number>();
  for (const o of segments) {
    const seg = segmentOf(o.key);
    if (seg && seg.seq < (oldest.get(seg.node) ?? Infinity)) oldest.set(seg.node, seg.seq);
  }
  const through = new Map<string, number>();
  for (const h of heads) through.set(h.node, h.seq);
  for (const [node, seq] of oldest) through.set(node, seq - 1);
  return through;
}

export function covers(cursors: Cursors, through: Map<string, number>): boolean {
  return [...through].every(([node, seq]) => (cursors[node] ?? 0) >= seq);
}

/** The newest snapshot that reaches everything already pruned: the one a new node starts from. */
export function newestCovering(names: string[], cursors: Map<string, Cursors>, through: Map<string, number>): string | null {
  for (const name of [...names].reverse()) {
    const c = cursors.get(name);
    if (c && covers(c, through)) return name;
  }
  return null;
}

/**
 * How far each journal may be pruned as far as snapshots go: what every kept snapshot covers.
 * Bounding by one snapshot is not enough when two leaders run at once (clock skew): each
 * would prune up to its own fresh snapshot, and with their cursors crossed no single snapshot
 * would reach both prunings. Both leaders list the older kept snapshots, so bounding by all
 * of them keeps one snapshot that reaches everything pruned.
 */
export function pruneBound(kept: string[], cursors: Map<string, Cursors>): (node: string) => number {
  const readable = kept.map((n) => cursors.get(n)).filter((c): c is Cursors => c !== undefined);
  return (node) => (readable.length === 0 ? 0 : Math.min(...readable.map((c) => c[node] ?? 0)));
}
