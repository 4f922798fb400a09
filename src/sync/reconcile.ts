import { renameSync } from 'node:fs';
import { join } from 'node:path';
import type { SetContext } from './context.js';
import { SafetyError } from './context.js';
import { conflictPath, notePromises, rankAgain } from './conflict.js';
import { diskMatches, diskState } from './disk.js';
import { recordChanges } from './outbox.js';
import { byPath, decide, type Decision } from './plan.js';
import { sameContent, type Entry } from './record.js';
import { scanTree, type Change } from './scan.js';
import { bumpVV, mergeVV } from './vv.js';

export interface PlanOptions {
  force?: boolean;
  /** This node has never synced: its pre-existing files follow the `adopt` policy. */
  fresh?: boolean;
  /** Paths whose deletion its author forced past max_delete: not counted again here. */
  forced?: Set<string>;
}

/**
 * Decides every path the received states touch (journal records or snapshot entries). A
 * path whose disk no longer matches the manifest holds a local change no scan has recorded
 * yet: it is recorded first, so the decision treats it as the concurrent version it is.
 */
export async function planRecords(ctx: SetContext, received: Entry[], opts: PlanOptions): Promise<Decision[]> {
  for (const r of received) ctx.clock.observe(r.hlc);
  // What this node's `exclude` keeps out is node-local: never written from remote.
  const incoming = byPath(received.filter((r) => !ctx.excluded(r.path, r.kind === 'dir')));
  // Versions whose merge a dropped winner took back meet the path's local state again.
  for (const [path, versions] of rankAgain(ctx)) {
    if (!ctx.excluded(path, false)) incoming.set(path, [...versions, ...(incoming.get(path) ?? [])]);
  }
  const dirty: string[] = [];
  for (const path of incoming.keys()) {
    if (!diskMatches(ctx.manifest.getEntry(path), diskState(ctx.set.path, path))) dirty.push(path);
  }
  // A subscriber never records local changes: its drift is reverted by the next scan.
  if (dirty.length > 0 && ctx.set.role !== 'subscribe') {
    const scan = await scanTree(ctx, dirty, { ignoreSettle: true });
    recordChanges(ctx, adopt(ctx, scan.changes, incoming, opts.fresh ?? false), scan.restat, scan.applied);
  }
  const decisions: Decision[] = [];
  for (const [path, records] of incoming) {
    const d = decide(path, ctx.manifest.getEntry(path), records, ctx.nodeId);
    if (d) decisions.push(d);
  }
  notePromises(ctx, decisions);
  // A node that has never synced is replaying history, not losing local data.
  const deleting = decisions.filter((d) => d.op === 'delete' && !opts.forced?.has(d.path)).length;
  if (!opts.fresh) checkDeletions(ctx, deleting, ctx.manifest.liveCount(), opts, 'apply');
  return decisions;
}

/**
 * Files on disk this node has never recorded, at paths the federation also has. Same content
 * (a node set up from a copy): taken as it is, no conflict, no transfer. Different content on
 * a node that has never synced follows `adopt`: `keep-both` moves the local file aside as a
 * conflict copy (published later as a new file), `remote` lets the federation's version
 * replace it, `local` makes the local file a change that dominates the federation's. On a
 * node that has synced before, such a file is a new local change under the usual rules.
 * Returns the changes still to record.
 */
function adopt(ctx: SetContext, changes: Change[], incoming: Map<string, Entry[]>, fresh: boolean): Change[] {
  return changes.filter((c) => {
    if (ctx.manifest.getEntry(c.entry.path)) return true;
    const history = incoming.get(c.entry.path);
    const last = history?.at(-1);
    if (!history || !last || c.entry.kind === 'deleted') return true;
    // An empty vector: every received version is newer, and replaces it without conflict.
    const replaceable = () => ctx.manifest.putEntry({ ...c.entry, vv: {}, author: '' }, c.stat);
    if (sameContent(last, c.entry)) {
      replaceable();
      return false;
    }
    if (!fresh || c.entry.kind === 'dir') return true;
    switch (ctx.set.adopt) {
      case 'remote':
        replaceable();
        return false;
      case 'local':
        c.entry.vv = bumpVV(history.reduce((vv, r) => mergeVV(vv, r.vv), c.entry.vv), ctx.nodeId);
        return true;
      default: {
        const copy = conflictPath(c.entry.path, ctx.nodeName, new Date(), (p) => diskState(ctx.set.path, p) !== null);
        renameSync(join(ctx.set.path, c.entry.path), join(ctx.set.path, copy));
        ctx.stats.conflicts++;
        ctx.log.warn({ path: c.entry.path, copy }, 'a pre-existing file differs from the federation\'s; kept as a conflict copy');
        return false;
      }
    }
  });
}

/** The max_delete rail: a cycle that would delete too much of the tree stops unless forced. */
export function checkDeletions(ctx: SetContext, deletions: number, live: number, opts: { force?: boolean }, where: 'publish' | 'apply'): void {
  if (deletions === 0 || opts.force) return;
  const m = ctx.set.maxDelete;
  let limit: number;
  if (m.kind === 'count') limit = m.value;
  else if (live <= 10) return;
  else limit = Math.floor(m.value * live);
  if (deletions <= limit) return;
  const what = where === 'publish' ? 'publish the deletion of' : 'apply remote deletions of';
  throw new SafetyError(
    `set "${ctx.set.name}": refusing to ${what} ${deletions} of ${live} entries (max_delete is ${m.kind === 'count' ? m.value : `${Math.round(m.value * 100)}%`}). ` +
      `Check that ${ctx.set.path} is complete and mounted; if the deletion is intended, run \`fedsync run --set ${ctx.set.name} --force\``,
  );
}
