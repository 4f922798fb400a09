import type { SetContext } from './context.js';
import { recordJson, recordProblem } from './record.js';
import type { Change } from './scan.js';
import { MAX_SEGMENT_RECORDS } from './segment.js';

/** Manifest meta keys of the publishing side. */
export const META = {
  /** The seq of the last head this node wrote: what the federation can see. */
  publishedSeq: 'published_seq',
  /** The highest segment stored; a stored segment is never rewritten with other content. */
  storedSeq: 'stored_seq',
  hlc: 'hlc',
  headAt: 'head_at',
  headAcks: 'head_acks',
  /** Outbox segments up to this seq hold deletions recorded with --force. */
  forcedSeq: 'forced_seq',
  /**
   * The highest seq whose upload may have started: committed (durably) before the PUT, so
   * no later change is ever added to it, and `reservedBody` is what a retry sends again.
   */
  reservedSeq: 'reserved_seq',
  reservedBody: 'reserved_body',
  /** The ETag of the last head this node wrote (DESIGN rule 6 compares the listing with it). */
  headEtag: 'head_etag',
  /** The sha256 of a head being written, committed before the PUT; cleared with its ETag. */
  headPending: 'head_pending',
  /** 'yes' or 'no': whether the store honours conditional writes, learnt once. */
  conditional: 'store_conditional',
} as const;

export function metaNumber(ctx: SetContext, key: string): number {
  return Number(ctx.manifest.getMeta(key) ?? 0);
}

/**
 * Records local changes (DESIGN rule 2, first step): in one manifest transaction each new
 * state becomes the path's entry and is queued in the outbox under the segment it will be
 * published in. After this commit a crash cannot lose the change: the next run publishes it.
 */
export function recordChanges(ctx: SetContext, changes: Change[], restat: [string, string][] = [], applied: Change[] = []): void {
  const m = ctx.manifest;
  // The last line of DESIGN rule 8 (the scan has checked already): nothing receivers would
  // refuse enters the outbox, where it would be published for good.
  const check = { allowExternalSymlinks: ctx.set.allowExternalSymlinks };
  changes = changes.filter((c) => {
    const problem = recordProblem(c.entry, check);
    if (problem) ctx.log.error({ path: c.entry.path, reason: problem }, 'not publishing a record other nodes would refuse');
    return !problem;
  });
  m.transaction(() => {
    for (const a of applied) {
      m.putEntry(a.entry, a.stat);
      m.clearApplying(a.entry.path);
    }
    let pending = changes.map((c) => {
      m.putEntry(c.entry, c.stat);
      return recordJson(c.entry);
    });
    for (const [path, stat] of restat) m.setStat(path, stat);
    while (pending.length > 0) {
      const { seq, room } = openSegment(ctx);
      m.addToOutbox(seq, pending.slice(0, room));
      pending = pending.slice(room);
    }
    m.setMeta(META.hlc, ctx.clock.current);
  });
}

/** The outbox segment new records go into, and how many more it takes. */
function openSegment(ctx: SetContext): { seq: number; room: number } {
  // A seq whose upload may have started takes nothing more: its segment is write-once.
  const stored = Math.max(metaNumber(ctx, META.storedSeq), metaNumber(ctx, META.publishedSeq), metaNumber(ctx, META.reservedSeq));
  const last = ctx.manifest.outboxSegments().at(-1);
  if (last && last.seq > stored && last.count < MAX_SEGMENT_RECORDS) return { seq: last.seq, room: MAX_SEGMENT_RECORDS - last.count };
  return { seq: Math.max(stored, last?.seq ?? 0) + 1, room: MAX_SEGMENT_RECORDS };
}
