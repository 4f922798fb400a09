import { newestSnapshot, stageSnapshot } from './bootstrap.js';
import { step, type SetContext } from './context.js';
import { unstage } from './housekeep/bundles.js';
import { META } from './outbox.js';
import { logPlan } from './plan-lines.js';
import { fetchPeers } from './pull.js';
import { KeptWanted, receiveApply } from './receive-apply.js';
import { carryOut, planIncoming, type Incoming } from './reconcile.js';

const SYNCED = 'synced_at';

/** Whether this node has never completed a receive: its disk predates the federation's state. */
export function isFresh(ctx: SetContext): boolean {
  return !ctx.manifest.getMeta(SYNCED);
}

/**
 * What a receive takes in. A node that has never synced starts from the newest snapshot and
 * the journals after it: together they are the federation's current state, which its
 * pre-existing files are adopted against (DESIGN rule 9). A node whose cursor points before
 * a peer's oldest kept segment starts from a snapshot that reaches it, the same way.
 */
export async function fetchIncoming(ctx: SetContext, fresh: boolean, dryRun = false): Promise<Incoming> {
  let snap = fresh ? await step('bootstrap', () => newestSnapshot(ctx, new Map())) : null;
  let behind = false;
  let batches = await step('pull', () => fetchPeers(ctx, { dryRun, from: snap?.cursors }));
  if (batches.some((b) => b.gap)) {
    // The snapshot must reach, for every such peer, the segment before its first kept one.
    const needs = new Map(batches.filter((b) => b.gap).map((b) => [b.peer.node, (b.firstKept ?? Infinity) - 1]));
    const older = await step('bootstrap', () => newestSnapshot(ctx, needs));
    if (older) {
      snap = older;
      behind = !fresh;
      batches = await step('pull', () => fetchPeers(ctx, { dryRun, from: older.cursors }));
    }
    for (const b of batches.filter((x) => x.gap)) {
      ctx.log.error({ peer: b.head.name || b.peer.node }, 'journal pruned past this node\'s cursor and no snapshot covers it; its updates are paused');
    }
  }
  return { snap, behind, batches };
}

/**
 * The receiving half of a cycle: fetch (a snapshot when new or too far behind, and the
 * peers' new segments), plan (with the wanted records due for a retry), carry out the plan's
 * own writes and apply, then move the cursors: every record fetched is then applied, kept
 * wanted or superseded, so even a record that cannot be applied (a full disk) does not hold
 * back the others. A dry run makes the same plan (dry-run.ts) and prints it instead.
 */
export async function receive(ctx: SetContext, opts: { force?: boolean }): Promise<void> {
  const started = Date.now();
  const fresh = isFresh(ctx);
  const inc = await fetchIncoming(ctx, fresh);
  const plan = await step('plan', () => planIncoming(ctx, inc, { ...opts, fresh, retry: started }));
  logPlan(ctx, plan, inc);
  await step('plan', () => carryOut(ctx, plan));
  let trouble: KeptWanted | null = null;
  const staged = inc.snap ? await step('bootstrap', () => stageSnapshot(ctx, inc.snap!, plan.decisions)) : undefined;
  try {
    await step('apply', () => receiveApply(ctx, plan.decisions, staged));
  } catch (err) {
    // What could not be applied is kept wanted: the cursors move on all the same.
    if (!(err instanceof KeptWanted)) throw err;
    trouble = err;
  } finally {
    if (staged) await unstage(staged);
  }
  saveCursors(ctx, inc);
  if (trouble) throw trouble;
}

function saveCursors(ctx: SetContext, inc: Incoming): void {
  ctx.manifest.transaction(() => {
    const peers = new Map(ctx.manifest.peers().map((p) => [p.node, p]));
    // The snapshot stands for every segment up to its cursors; headEtag cleared so the head
    // of a peer not fetched this cycle is read again and its journal on from the new cursor.
    for (const [node, seq] of Object.entries(inc.snap?.cursors ?? {})) {
      if (node === ctx.nodeId) continue;
      const p = peers.get(node) ?? { node, name: '', role: '', cursor: 0, headEtag: null, headSeq: 0, heartbeat: null, error: null };
      if (seq > p.cursor) ctx.manifest.putPeer({ ...p, cursor: seq, headEtag: null });
    }
    for (const b of inc.batches) {
      ctx.manifest.putPeer({ ...b.peer, cursor: b.through, headEtag: b.complete ? b.etag : b.peer.headEtag });
    }
    ctx.manifest.setMeta(META.hlc, ctx.clock.current);
    ctx.manifest.setMeta(SYNCED, new Date().toISOString());
  });
}
