import { applyDecisions } from './apply.js';
import { StepError, type SetContext } from './context.js';
import { recordChanges } from './outbox.js';
import type { Decision } from './plan.js';
import { scanTree } from './scan.js';

/**
 * Applies decisions, then records what applying produced locally: conflict copies of local
 * versions, and parent directories created on the way. Throws when something must be
 * retried (store or disk trouble), so the caller does not move cursors past it.
 */
export async function receiveApply(ctx: SetContext, decisions: Decision[], prestaged?: Map<string, string>): Promise<void> {
  const outcome = await applyDecisions(ctx, decisions, prestaged);
  const follow = [...outcome.keptAside, ...outcome.madeParents];
  if (follow.length > 0 && ctx.set.role !== 'subscribe') {
    const rescan = await scanTree(ctx, follow, { ignoreSettle: true });
    recordChanges(ctx, rescan.changes, rescan.restat, rescan.applied);
  }
  if (outcome.retryable) throw new StepError('apply', outcome.retryable);
}
