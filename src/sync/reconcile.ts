import { renameSync } from 'node:fs';
import { join } from 'node:path';
import type { SetContext } from './context.js';
import { conflictPath, notePromises, rankAgain } from './conflict.js';
import { diskMatches, diskState } from './disk.js';
import { recordChanges } from './outbox.js';
import { placedView, stateOf, type LocalEntry } from '../manifest/manifest.js';
import { byPath, decide, type Decision } from './plan.js';
import { checkPlan } from './rail.js';
import { sameContent, type Entry } from './record.js';
import { scanTree, type Change } from './scan.js';
import { bumpVV, mergeVV } from './vv.js';

export interface PlanOptions {
  force?: boolean;
  /** This node has never synced: its pre-existing files follow the `adopt` policy. */
  fresh?: boolean;
  /** Paths whose deletion its author forced past max_delete: not counted again here. */
  forced?: Set<string>;
  /**
   * Wanted entries whose retry time is before this (ms) join the decisions, as do those whose
   * disk changed (receive's plan; a catch-up leaves them to it).
   */
  retry?: number;
}

/**
 * Decides every path the received states touch (journal records or snapshot entries). A
 * path whose disk no longer matches the manifest holds a local change no scan has recorded
 * yet: it is recorded first, so the decision treats it as the concurrent version it is.
 *
 * Every received state is kept (DESIGN "a snapshot is the federation's state"): a path this
 * node excludes gets its entry, never placed; a wanted entry (not placed yet) is the
 * federation's state too, replayed ahead of what was received onto what this node last
 * placed there, so the decision says what to do on this disk.
 */
export async function planRecords(ctx: SetContext, received: Entry[], opts: PlanOptions): Promise<Decision[]> {
  for (const r of received) ctx.clock.observe(r.hlc);
  const incoming = byPath(received);
  // What this node's `exclude` keeps out is node-local: recorded, never written from remote.
  for (const [path, records] of incoming) {
    if (!records.some((r) => ctx.excluded(r.path, r.kind === 'dir'))) continue;
    keepExcluded(ctx, path, records);
    incoming.delete(path);
  }
  if (opts.retry !== undefined) for (const e of dueForRetry(ctx, opts.retry)) if (!incoming.has(e.path)) incoming.set(e.path, []);
  // Versions whose merge a dropped winner took back meet the path's local state again.
  for (const [path, versions] of rankAgain(ctx)) {
    if (!ctx.excluded(path, false)) incoming.set(path, [...versions, ...(incoming.get(path) ?? [])]);
  }
  // The versions to decide per path: an absent entry's own, then the received ones.
  const replay = new Map<string, Entry[]>();
  const absent = new Map<string, LocalEntry>();
  const dirty: string[] = [];
  for (const [path, records] of incoming) {
    const e = ctx.manifest.getEntry(path);
    if (e?.absent) absent.set(path, e);
    replay.set(path, e?.absent ? [...versionsOf(e), ...records] : records);
    if (!diskMatches(e, diskState(ctx.set.path, path))) dirty.push(path);
  }
  // A subscriber never records local changes: its drift is reverted by the next scan.
  if (dirty.length > 0 && ctx.set.role !== 'subscribe') {
    const scan = await scanTree(ctx, dirty, { ignoreSettle: true, absent: true });
    recordChanges(ctx, adopt(ctx, scan.changes, replay, opts.fresh ?? false), scan.restat, scan.applied);
  }
  const decisions: Decision[] = [];
  for (const [path, records] of replay) {
    const fed = absent.get(path);
    const local = placedView(ctx.manifest.getEntry(path));
    const d = decide(path, local, records, ctx.nodeId);
    if (!fed) {
      if (d) decisions.push(d);
      continue;
    }
    if (!d) {
      // Already what is placed here (an interrupted apply just recorded): nothing to write.
      if (ctx.manifest.getEntry(path)?.absent) {
        const final = local ? { ...stateOf(local), vv: mergeVV(local.vv, fed.vv) } : stateOf(fed);
        decisions.push({ path, local, final, op: 'record', keepLocal: false });
      }
      continue;
    }
    // Its vector may hold what replaying its versions does not (deletions merged into it).
    d.final.vv = mergeVV(d.final.vv, fed.vv);
    const base = fed.base;
    if (base?.keepLocal && local && local.hlc === base.hlc && local.author === base.author && d.op !== 'record' && !sameContent(base, d.final)) d.keepLocal = true;
    decisions.push(d);
  }
  notePromises(ctx, decisions);
  // A node that has never synced is replaying history, not losing local data.
  if (!opts.fresh) checkPlan(ctx, decisions, opts);
  return decisions;
}

/** The versions an entry stands for, as records (several when concurrent ones are live). */
function versionsOf(e: LocalEntry): Entry[] {
  return e.versions?.length ? e.versions : [stateOf(e)];
}

/** Records of a path this node excludes: folded into its entry, which is never placed. */
function keepExcluded(ctx: SetContext, path: string, records: Entry[]): void {
  const prev = ctx.manifest.getEntry(path);
  const d = decide(path, prev, records, ctx.nodeId);
  if (!d) return;
  // Whatever this node had placed there stays as it is on disk: the exclude covers it now.
  ctx.manifest.putAbsent(d.final, 'excluded', placedView(prev) ?? null);
}

/**
 * Wanted entries to try again: their retry time has come, or the disk at the path changed
 * (a local change to decide against them now). Entries of paths no longer excluded (the
 * exclude changed) become wanted here, once per change of the patterns.
 */
function dueForRetry(ctx: SetContext, before: number): LocalEntry[] {
  const patterns = JSON.stringify(ctx.set.exclude);
  if (ctx.manifest.getMeta(EXCLUDE_SEEN) !== patterns) {
    ctx.manifest.transaction(() => {
      for (const e of ctx.manifest.absentEntries('excluded')) {
        if (ctx.excluded(e.path, e.kind === 'dir')) continue;
        ctx.manifest.putAbsent(e, 'wanted', e.base ?? null, { since: before, retryAt: 0, tries: 0, reason: 'no longer excluded' });
      }
      ctx.manifest.setMeta(EXCLUDE_SEEN, patterns);
    });
  }
  return ctx.manifest.absentEntries('wanted').filter((e) => e.wanted!.retryAt < before || !diskMatches(e, diskState(ctx.set.path, e.path)));
}

/** The exclude patterns the entries marked excluded were last checked against. */
const EXCLUDE_SEEN = 'exclude_seen';

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
    if (placedView(ctx.manifest.getEntry(c.entry.path))) return true;
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
