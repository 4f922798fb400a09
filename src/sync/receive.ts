import { catchUp } from './bootstrap.js';
import { step, type SetContext } from './context.js';
import { META } from './outbox.js';
import { fetchPeers, type PeerBatch } from './pull.js';
import { KeptWanted, receiveApply } from './receive-apply.js';
import { planRecords } from './reconcile.js';

const SYNCED = 'synced_at';

/** Whether this node has never completed a receive: its disk predates the federation's state. */
export function isFresh(ctx: SetContext): boolean {
  return !ctx.manifest.getMeta(SYNCED);
}

/**
 * The receiving half of a cycle: catch up from a snapshot when new or too far behind, fetch
 * the peers' new segments, decide (with the wanted records due for a retry) and apply, then
 * move the cursors: every record fetched is then applied, kept wanted or superseded, so even
 * a record that cannot be applied (a full disk) does not hold back the others.
 */
export async function receive(ctx: SetContext, opts: { force?: boolean }): Promise<void> {
  const started = Date.now();
  const fresh = isFresh(ctx);
  let trouble: KeptWanted | null = null;
  // Records a catch-up could not apply are kept wanted: the cycle goes on and reports it.
  const catchingUp = async (fn: () => Promise<boolean>): Promise<boolean> => {
    try {
      return await step('bootstrap', fn);
    } catch (err) {
      if (!(err instanceof KeptWanted)) throw err;
      trouble ??= err;
      return true;
    }
  };
  if (fresh) await catchingUp(() => catchUp(ctx, { ...opts, fresh }, false));
  let batches = await step('pull', () => fetchPeers(ctx));
  if (batches.some((b) => b.gap)) {
    // The snapshot must reach, for every such peer, the segment before its first kept one.
    const needs = new Map(batches.filter((b) => b.gap).map((b) => [b.peer.node, (b.firstKept ?? Infinity) - 1]));
    if (await catchingUp(() => catchUp(ctx, { ...opts, fresh }, true, needs))) batches = await step('pull', () => fetchPeers(ctx));
    for (const b of batches.filter((x) => x.gap)) {
      ctx.log.error({ peer: b.head.name || b.peer.node }, 'journal pruned past this node\'s cursor and no snapshot covers it; its updates are paused');
    }
  }
  const forced = new Set(batches.flatMap((b) => [...(b.forced ?? [])]));
  const decisions = await step('plan', () => planRecords(ctx, batches.flatMap((b) => b.records), { ...opts, fresh, forced, retry: started }));
  try {
    await step('apply', () => receiveApply(ctx, decisions));
  } catch (err) {
    if (!(err instanceof KeptWanted)) throw err;
    trouble ??= err;
  }
  saveCursors(ctx, batches);
  if (trouble) throw trouble;
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
