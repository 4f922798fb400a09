import type { SetContext } from '../context.js';
import { decodeHead, type Head } from '../head.js';
import { HEADS_PREFIX, headNode } from '../layout.js';

/** The federation's members as their heads say, and which of them are live. */
export interface Members {
  heads: Head[];
  live: Head[];
  /** The live node with the smallest id that applies remote changes (it can snapshot). */
  leader: string | null;
  /** The newest date the store gave a head (ms, the store's clock; 0 when none). */
  newest: number;
}

/**
 * Reads every head. Live = heartbeat within `node_timeout`; this node counts as live. The
 * leader is chosen by every node from the same facts, so normally exactly one node leads;
 * with skewed clocks two may briefly both lead, which every housekeeping step tolerates.
 */
export async function readMembers(ctx: SetContext, now = Date.now()): Promise<Members> {
  const heads: Head[] = [];
  let newest = 0;
  for await (const o of ctx.store.list(HEADS_PREFIX)) {
    newest = Math.max(newest, o.lastModified.getTime());
    const node = headNode(o.key);
    if (!node) continue;
    try {
      const body = await ctx.store.get(o.key);
      if (!body) continue;
      heads.push(decodeHead(body, node));
    } catch (err) {
      ctx.log.warn({ node, err: (err as Error).message }, 'ignoring an unreadable head');
    }
  }
  const live = heads.filter((h) => h.node === ctx.nodeId || now - Date.parse(h.heartbeat) <= ctx.set.nodeTimeout);
  const candidates = live.filter((h) => h.role !== 'publish').map((h) => h.node);
  if (ctx.set.role !== 'publish' && !candidates.includes(ctx.nodeId)) candidates.push(ctx.nodeId);
  candidates.sort();
  return { heads, live, leader: candidates[0] ?? null, newest };
}
