import { catchUp } from './bootstrap.js';
import { step, type SetContext } from './context.js';
import { META } from './outbox.js';
import { fetchPeers, type PeerBatch } from './pull.js';
import { receiveApply } from './receive-apply.js';
import { planRecords } from './reconcile.js';

const SYNCED = 'synced_at';

/** Whether this node has never completed a receive: its disk predates the federation's state. */
export function isFresh(ctx: SetContext): boolean {
  return !ctx.manifest.getMeta(SYNCED);
}

/**
 * The receiving half of a cycle: catch up from a snapshot when new or too far behind, fetch
 * the peers' new segments, decide and apply, then move the cursors — only once everything
 * fetched is applied or rejected for good, so a failure is retried from the same place.
 */
export async function receive(ctx: SetContext, opts: { force?: boolean }): Promise<void> {
  const fresh = isFresh(ctx);
  if (fresh) await step('bootstrap', () => catchUp(ctx, { ...opts, fresh }, false));
  let batches = await step('pull', () => fetchPeers(ctx));
  if (batches.some((b) => b.gap)) {
    // The snapshot must reach, for every such peer, the segment before its first kept one.
    const needs = new Map(batches.filter((b) => b.gap).map((b) => [b.peer.node, (b.firstKept ?? Infinity) - 1]));
    if (await step('bootstrap', () => catchUp(ctx, { ...opts, fresh }, true, needs))) batches = await step('pull', () => fetchPeers(ctx));
    for (const b of batches.filter((x) => x.gap)) {
      ctx.log.error({ peer: b.head.name || b.peer.node }, 'journal pruned past this node\'s cursor and no snapshot covers it; its updates are paused');
    }
  }
  const forced = new Set(batches.flatMap((b) => [...(b.forced ?? [])]));
  const decisions = await step('plan', () => planRecords(ctx, batches.flatMap((b) => b.records), { ...opts, fresh, forced }));
  await step('apply', () => receiveApply(ctx, decisions));
  saveCursors(ctx, batches);
}

function saveCursors(ctx: SetContext, batches: PeerBatch[]): void {
  ctx.manifest.transaction(() => {
    for (const b of batches) {
      ctx.manifest.putPeer({ ...b.peer, cursor: b.through, headEtag: b.complete ? b.etag : b.peer.headEtag });
    }
    ctx.manifest.setMeta(META.hlc, ctx.clock.current);
    ctx.manifest.setMeta(SYNCED, new Date().toISOString());
  });
}
