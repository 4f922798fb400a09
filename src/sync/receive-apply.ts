import { applyDecisions } from './apply.js';
import { StepError, type SetContext } from './context.js';
import { recordChanges } from './outbox.js';
import type { Decision } from './plan.js';
import { scanTree } from './scan.js';

/**
 * Thrown when some records could not be applied because of this node's or the store's
 * trouble (not their content). Every one of them is kept wanted in the manifest, so the
 * caller may move its cursors on before it reports the failure.
 */
export class KeptWanted extends StepError {}

/**
 * Applies decisions, then records what applying produced locally: conflict copies of local
 * versions, and parent directories created on the way. Throws KeptWanted when records are
 * left wanted for store or disk trouble, anything else when applying itself failed.
 */
export async function receiveApply(ctx: SetContext, decisions: Decision[], prestaged?: Map<string, string>): Promise<void> {
  const outcome = await applyDecisions(ctx, decisions, prestaged);
  const follow = [...outcome.keptAside, ...outcome.madeParents];
  if (follow.length > 0 && ctx.set.role !== 'subscribe') {
    const rescan = await scanTree(ctx, follow, { ignoreSettle: true });
    recordChanges(ctx, rescan.changes, rescan.restat, rescan.applied);
  }
  if (outcome.retryable) throw new KeptWanted('apply', outcome.retryable);
}
