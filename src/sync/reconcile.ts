import { renameSync } from 'node:fs';
import { join } from 'node:path';
import type { SetContext } from './context.js';
import { deletedMeanwhile, snapshotRecords } from './bootstrap.js';
import { conflictPath, notePromises, rankAgain } from './conflict.js';
import { diskMatches, diskState } from './disk.js';
import { heirOf } from './identity.js';
import type { Snapshot } from './housekeep/snapshot.js';
import { recordChanges } from './outbox.js';
import type { PeerBatch } from './pull.js';
import type { LocalEntry } from '../manifest/manifest.js';
import { byPath } from './plan.js';
import { planReceive, type Facts, type Plan } from './receive-plan.js';
import { checkPlan } from './rail.js';
import type { Entry } from './record.js';
import { scanTree } from './scan.js';

export interface PlanOptions {
  force?: boolean;
  /** This node has never synced: its pre-existing files follow the `adopt` policy. */
  fresh?: boolean;
  /** Wanted entries whose retry time is before this (ms) join the decisions, as do those whose disk changed. */
  retry?: number;
  /** Plan only: nothing is written, not even the manifest's bookkeeping. */
  dryRun?: boolean;
}

/** What a receive takes in: the snapshot it starts from (if any) and the peers' new segments. */
export interface Incoming {
  snap: Snapshot | null;
  /** The snapshot is there because this node's cursors fell behind the kept journals. */
  behind: boolean;
  batches: PeerBatch[];
}

/**
 * The plan of a receive, for the real run and the dry run alike: the facts are gathered
 * (what was received: the snapshot's entries, then the journals after it; the manifest's
 * entries; a scan of the paths whose disk moved), the plan is made from them, and the
 * max_delete rail judges it. `overlay`: entries as the dry run's scan would have recorded
 * them. Nothing here changes the disk or the manifest; `carryOut` does.
 */
export async function planIncoming(ctx: SetContext, inc: Incoming, opts: PlanOptions, overlay?: Map<string, LocalEntry>): Promise<Plan> {
  const received = [...(inc.snap ? snapshotRecords(inc.snap) : []), ...inc.batches.flatMap((b) => b.records)];
  const plan = planReceive(await gather(ctx, received, opts, overlay));
  // Paths deleted by segments their author published with --force are not counted again.
  const forced = new Set(inc.batches.flatMap((b) => [...(b.forced ?? [])]));
  // A node that has never synced is replaying history, not losing local data.
  if (!opts.fresh) checkPlan(ctx, plan.decisions, { ...opts, forced });
  if (inc.snap && inc.behind) {
    const gone = deletedMeanwhile(ctx, inc.snap, new Set(received.map((r) => r.path)));
    plan.decisions.push(...gone.decisions);
    plan.excluded.push(...gone.excluded);
  }
  return plan;
}

/**
 * The facts a plan needs. A path whose disk no longer matches the manifest (an entry the
 * overlay or the manifest has) is scanned: it holds a local change no scan has recorded yet.
 */
async function gather(ctx: SetContext, received: Entry[], opts: PlanOptions, overlay = new Map<string, LocalEntry>()): Promise<Facts> {
  for (const r of received) ctx.clock.observe(r.hlc);
  const entry = (p: string) => overlay.get(p) ?? ctx.manifest.getEntry(p);
  const incoming = byPath(received);
  const excluded = new Map<string, Entry[]>();
  // What this node's `exclude` keeps out is node-local: recorded, never written from remote.
  for (const [path, records] of incoming) {
    if (!records.some((r) => ctx.excluded(r.path, r.kind === 'dir'))) continue;
    excluded.set(path, records);
    incoming.delete(path);
  }
  if (opts.retry !== undefined) for (const e of dueForRetry(ctx, opts.retry, opts.dryRun)) if (!incoming.has(e.path)) incoming.set(e.path, []);
  // Versions whose merge a dropped winner took back meet the path's local state again.
  for (const [path, versions] of rankAgain(ctx, !opts.dryRun)) {
    if (!ctx.excluded(path, false)) incoming.set(path, [...versions, ...(incoming.get(path) ?? [])]);
  }
  const entries = new Map<string, LocalEntry | undefined>();
  const dirty: string[] = [];
  for (const path of [...incoming.keys(), ...excluded.keys()]) entries.set(path, entry(path));
  for (const path of incoming.keys()) if (!diskMatches(entries.get(path), diskState(ctx.set.path, path))) dirty.push(path);
  // A subscriber never records local changes: its drift is reverted by the next scan.
  const scan = dirty.length > 0 && ctx.set.role !== 'subscribe' ? await scanTree(ctx, dirty, { ignoreSettle: true, absent: true }) : null;
  for (const c of scan?.changes ?? []) if (!entries.has(c.entry.path)) entries.set(c.entry.path, entry(c.entry.path));
  return { me: ctx.nodeId, fresh: opts.fresh ?? false, adopt: ctx.set.adopt, incoming, excluded, entries, scan, heirs: heirOf(ctx.manifest) };
}

/**
 * The plan's own writes, before anything is applied: the states of excluded paths, the local
 * changes and adopted files recorded (one transaction), the files kept both ways moved aside
 * as conflict copies and recorded as new files, the promises of won conflicts noted.
 */
export async function carryOut(ctx: SetContext, plan: Plan): Promise<void> {
  ctx.manifest.transaction(() => {
    for (const x of plan.excluded) ctx.manifest.putAbsent(x.final, 'excluded', x.base);
    for (const a of plan.adopted) ctx.manifest.putEntry(a.entry, a.stat);
  });
  recordChanges(ctx, plan.local, plan.restat, plan.applied);
  const copies: string[] = [];
  for (const path of plan.keepBoth) {
    const copy = conflictPath(path, ctx.nodeName, new Date(), (p) => diskState(ctx.set.path, p) !== null);
    renameSync(join(ctx.set.path, path), join(ctx.set.path, copy));
    copies.push(copy);
    ctx.changed?.add(path);
    ctx.changed?.add(copy);
    ctx.stats.conflicts++;
    ctx.log.warn({ path, copy }, 'a pre-existing file differs from the federation\'s; kept as a conflict copy');
  }
  if (copies.length > 0) {
    const scan = await scanTree(ctx, copies, { ignoreSettle: true });
    recordChanges(ctx, scan.changes, scan.restat, scan.applied);
  }
  notePromises(ctx, plan.decisions);
}

/**
 * Wanted entries to try again: their retry time has come, or the disk at the path changed
 * (a local change to decide against them now). Entries of paths no longer excluded (the
 * exclude changed) become wanted here, once per change of the patterns (a dry run only
 * counts them in).
 */
function dueForRetry(ctx: SetContext, before: number, dryRun = false): LocalEntry[] {
  const patterns = JSON.stringify(ctx.set.exclude);
  const unexcluded: LocalEntry[] = [];
  if (ctx.manifest.getMeta(EXCLUDE_SEEN) !== patterns) {
    const again = ctx.manifest.absentEntries('excluded').filter((e) => !ctx.excluded(e.path, e.kind === 'dir'));
    if (dryRun) unexcluded.push(...again);
    else {
      ctx.manifest.transaction(() => {
        for (const e of again) ctx.manifest.putAbsent(e, 'wanted', e.base ?? null, { since: before, retryAt: 0, tries: 0, reason: 'no longer excluded' });
        ctx.manifest.setMeta(EXCLUDE_SEEN, patterns);
      });
    }
  }
  const due = ctx.manifest.absentEntries('wanted').filter((e) => e.wanted!.retryAt < before || !diskMatches(e, diskState(ctx.set.path, e.path)));
  return [...due, ...unexcluded];
}

/** The exclude patterns the entries marked excluded were last checked against. */
const EXCLUDE_SEEN = 'exclude_seen';
