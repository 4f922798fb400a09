import type { Adopt } from '../config/types.js';
import { placedView, stateOf, type LocalEntry } from '../manifest/manifest.js';
import { decide, heirCopies, type Decision, type Resolved } from './plan.js';
import { sameContent, type Entry } from './record.js';
import type { Change, ScanResult } from './scan.js';
import { bumpVV, mergeVV } from './vv.js';

/**
 * Everything a receive's plan depends on, gathered before it (reconcile.ts `gather`): the
 * received versions, the manifest's entries of the paths concerned, and what a scan of the
 * paths whose disk moved since the manifest last saw them found there.
 */
export interface Facts {
  me: string;
  /** This node has never synced: its pre-existing files follow `adopt`. */
  fresh: boolean;
  adopt: Adopt;
  /** Received versions per path, in journal order (snapshot entries first). */
  incoming: Map<string, Entry[]>;
  /** Received versions of paths this node excludes. */
  excluded: Map<string, Entry[]>;
  /** The manifest's entry of every path above and of every path the scan reports. */
  entries: Map<string, LocalEntry | undefined>;
  /** The scan of the paths whose disk no longer matches the manifest (null: none, or a subscriber). */
  scan: ScanResult | null;
  /** Former ids this node is the heir of (identity.ts `heirOf`). */
  heirs?: ReadonlySet<string>;
}

/** What a receive does, decided before anything is done; carried out by reconcile.ts `carryOut`. */
export interface Plan {
  /** States of excluded paths, kept in their entries, never placed. */
  excluded: { final: Resolved; base: LocalEntry | null }[];
  /** Local changes the scan found: recorded, then published. */
  local: Change[];
  /** Files found here that the federation also has, recorded with an empty vector so its version follows. */
  adopted: Change[];
  /** Files found here on a node that never synced, differing from the federation's: moved aside as conflict copies first. */
  keepBoth: string[];
  /** From the scan: stats that moved without a change, and states an interrupted apply placed. */
  restat: [string, string][];
  applied: Change[];
  decisions: Decision[];
}

/**
 * The plan of a receive, a pure function of the facts. A path whose disk no longer matched
 * the manifest holds a local change no scan had recorded yet: the plan records it first, and
 * decides against it as the concurrent version it is.
 *
 * Every received state is kept (DESIGN "a snapshot is the federation's state"): a path this
 * node excludes gets its entry, never placed; a wanted entry (not placed yet) is the
 * federation's state too, replayed ahead of what was received onto what this node last
 * placed there, so the decision says what to do on this disk.
 */
export function planReceive(f: Facts): Plan {
  const plan: Plan = { excluded: [], local: [], adopted: [], keepBoth: [], restat: f.scan?.restat ?? [], applied: f.scan?.applied ?? [], decisions: [] };
  for (const [path, records] of f.excluded) {
    const prev = f.entries.get(path);
    const d = decide(path, prev, records, f.me);
    // Whatever this node had placed there stays as it is on disk: the exclude covers it now.
    if (d) plan.excluded.push({ final: d.final, base: placedView(prev) ?? null });
  }
  // The versions to decide per path: an absent entry's own, then the received ones.
  const replay = new Map<string, Entry[]>();
  for (const [path, records] of f.incoming) {
    const e = f.entries.get(path);
    replay.set(path, e?.absent ? [...versionsOf(e), ...records] : records);
  }
  // What each path's entry is once the scan's findings are recorded (putEntry places it).
  const recorded = new Map<string, LocalEntry>();
  for (const a of plan.applied) recorded.set(a.entry.path, { ...a.entry, stat: a.stat });
  for (const c of f.scan?.changes ?? []) {
    const path = c.entry.path;
    const way = adoption(f, c, replay.get(path));
    if (way === 'keep-both') plan.keepBoth.push(path);
    else {
      (way.adopted ? plan.adopted : plan.local).push(way.change);
      recorded.set(path, { ...way.change.entry, stat: c.stat });
    }
  }
  const restat = new Map(plan.restat);
  for (const [path, records] of replay) {
    const fed = f.entries.get(path);
    let local = recorded.get(path) ?? placedView(fed);
    const stat = restat.get(path);
    if (stat !== undefined && local && !recorded.has(path)) local = { ...local, stat };
    const d = decide(path, local, records, f.me, f.heirs);
    const copies = d && f.heirs ? heirCopies(d, f.incoming.get(path) ?? [], f.heirs) : [];
    if (d && copies.length > 0) d.heirCopies = copies;
    if (!fed?.absent) {
      if (d) plan.decisions.push(d);
      continue;
    }
    if (!d) {
      // Already what is placed here (an interrupted apply just recorded): nothing to write.
      if (!recorded.has(path)) {
        const final = local ? { ...stateOf(local), vv: mergeVV(local.vv, fed.vv) } : stateOf(fed);
        plan.decisions.push({ path, local, final, op: 'record', keepLocal: false });
      }
      continue;
    }
    // Its vector may hold what replaying its versions does not (deletions merged into it).
    d.final.vv = mergeVV(d.final.vv, fed.vv);
    const base = fed.base;
    if (base?.keepLocal && local && local.hlc === base.hlc && local.author === base.author && d.op !== 'record' && !sameContent(base, d.final)) d.keepLocal = true;
    plan.decisions.push(d);
  }
  return plan;
}

/** The versions an entry stands for, as records (several when concurrent ones are live). */
function versionsOf(e: LocalEntry): Entry[] {
  return e.versions?.length ? e.versions : [stateOf(e)];
}

/**
 * What becomes of a change found at a path this node has never recorded, where the
 * federation has a state (DESIGN rule 9). The federation's current state is what its
 * versions fold to (snapshot and journals after it together), not the last one received.
 * Same content (a node set up from a copy): taken as it is, no conflict, no transfer.
 * Different content on a node that has never synced follows `adopt`: `keep-both` moves the
 * local file aside as a conflict copy (published as a new file), `remote` lets the
 * federation's version replace it, `local` makes the local file a change that dominates the
 * federation's. On a node that has synced before, such a file is a new local change under
 * the usual rules.
 */
function adoption(f: Facts, c: Change, history: Entry[] | undefined): { change: Change; adopted: boolean } | 'keep-both' {
  const record = { change: c, adopted: false };
  if (placedView(f.entries.get(c.entry.path)) || !history?.length || c.entry.kind === 'deleted') return record;
  const current = decide(c.entry.path, undefined, history, f.me)?.final ?? history.at(-1)!;
  // An empty vector: every received version is newer, and replaces it without conflict.
  const replaceable = { change: { ...c, entry: { ...c.entry, vv: {}, author: '' } }, adopted: true };
  if (sameContent(current, c.entry)) return replaceable;
  if (!f.fresh || c.entry.kind === 'dir') return record;
  switch (f.adopt) {
    case 'remote':
      return replaceable;
    case 'local':
      return { change: { ...c, entry: { ...c.entry, vv: bumpVV(history.reduce((vv, r) => mergeVV(vv, r.vv), c.entry.vv), f.me) } }, adopted: false };
    default:
      return 'keep-both';
  }
}
