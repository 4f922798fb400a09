import type { LocalEntry } from '../manifest/manifest.js';
import { sameContent, sameState, type Entry } from './record.js';
import { compareVV, mergeVV, sortVV, type VersionVector } from './vv.js';

/** A path's state as decided: the winner, and the live concurrent versions still in play. */
export type Resolved = Entry & { versions?: Entry[] };

/** What applying the received records means for one path. */
export interface Decision {
  path: string;
  local: LocalEntry | undefined;
  /** The state to record (version vectors merged). */
  final: Resolved;
  /**
   * `record`: the disk already holds the final state, only the manifest changes;
   * `meta`: same content, mode or mtime to set; `write`: new content, a directory or a
   * symlink to put in place; `delete`: remove what is there.
   */
  op: 'record' | 'meta' | 'write' | 'delete';
  /** This node's own version lost a conflict and must be kept as a conflict copy first. */
  keepLocal: boolean;
  /**
   * Beaten versions that a former id of this node wrote and this disk no longer holds (see
   * identity.ts `heirOf`): kept as conflict copies from the store, since no other node will.
   */
  heirCopies?: Entry[];
}

/**
 * Concurrent versions: a modification beats a deletion, otherwise the higher (HLC, author)
 * wins. A total order, so every node picks the same winner whatever order records arrive in.
 */
export function wins(a: Entry, b: Entry): boolean {
  const la = a.kind !== 'deleted';
  const lb = b.kind !== 'deleted';
  if (la !== lb) return la;
  if (a.hlc !== b.hlc) return a.hlc > b.hlc;
  return a.author > b.author;
}

/**
 * Folds the records received for one path (in journal order) into the local state,
 * following DESIGN rule 3. Returns null when nothing changes.
 *
 * Rule 3 ranks versions that are concurrent with each other, so the fold keeps every live
 * version no record has superseded yet (`versions`, each with its own vector) beside the
 * merged vector: a record that supersedes the winner but not a losing modification (written
 * before its author saw that one) then meets the modification it is really concurrent with.
 * Ranking against the merged state instead made the outcome depend on arrival order, and
 * nodes that received the same records in different orders kept different content for good.
 */
export function decide(path: string, local: LocalEntry | undefined, incoming: Entry[], me: string, heirs: ReadonlySet<string> = NO_HEIRS): Decision | null {
  let versions = local ? liveVersions(local) : [];
  let vv = local?.vv ?? {};
  let cur: Entry | undefined = local;
  let changed = false;
  // This node's own version on disk (also one a former id it is the heir of wrote), and
  // whether a version it never saw beat it.
  const mine = local && (local.author === me || heirs.has(local.author)) ? versions.find((v) => sameVersion(v, local)) : undefined;
  let beaten = false;
  for (const r of incoming) {
    // Checked before the vector test: a winner's descendant may have come first in the batch.
    if (mine && compareVV(r.vv, mine.vv) === 'concurrent' && wins(r, mine)) beaten = true;
    const order = compareVV(r.vv, vv);
    if (order === 'before' || order === 'equal') continue;
    changed = true;
    versions = versions.filter((v) => compareVV(v.vv, r.vv) === 'concurrent');
    if (r.kind !== 'deleted') versions.push(bare(r));
    vv = mergeVV(vv, r.vv);
    const best = versions.reduce<Entry | undefined>((b, v) => (!b || wins(v, b) ? v : b), undefined);
    // No live version left: the deletion stands (the latest one gives its metadata).
    cur = best ?? (cur && cur.kind === 'deleted' && compareVV(r.vv, cur.vv) !== 'after' && wins(cur, r) ? cur : r);
  }
  if (!cur || !changed) return null;
  const final: Resolved = {
    path,
    kind: cur.kind,
    digest: cur.digest,
    size: cur.size,
    mode: cur.mode,
    mtime: cur.mtime,
    target: cur.target,
    vv,
    hlc: cur.hlc,
    author: cur.author,
  };
  // Kept only while it says more than the entry itself does.
  if (versions.length > 1 || (versions.length === 1 && compareVV(versions[0]!.vv, vv) !== 'equal')) final.versions = versions;
  const curIsLocal = local !== undefined && sameVersion(cur, local);
  const keepLocal = beaten && mine !== undefined && !sameContent(mine, final);
  let op: Decision['op'];
  if (curIsLocal || (local && sameState(local, final))) op = 'record';
  else if (final.kind === 'deleted') op = local && local.kind !== 'deleted' ? 'delete' : 'record';
  else if (local && final.kind === 'file' && sameContent(local, final)) op = 'meta';
  else op = 'write';
  return { path, local, final, op, keepLocal: keepLocal && op !== 'record' };
}

const NO_HEIRS: ReadonlySet<string> = new Set();

/**
 * The versions `received` now that lost to the decided winner, were written by a former id
 * this node is the heir of, and are not what this disk holds at the path: the node that
 * should keep them as conflict copies is this one, whose disk went back in time.
 */
export function heirCopies(d: Decision, received: Entry[], heirs: ReadonlySet<string>): Entry[] {
  const versions = d.final.versions;
  if (heirs.size === 0 || !versions) return [];
  const winner = versions.find((v) => sameVersion(v, d.final)) ?? d.final;
  return beatenBy(winner, versions).filter(
    (v) => v.kind === 'file' && heirs.has(v.author) && received.some((r) => sameVersion(r, v)) && !(d.local?.kind === 'file' && sameContent(d.local, v)),
  );
}

/**
 * The versions among `versions` that `winner` beat under rule 3: concurrent with it and
 * ranked below it. Their counters were merged into the path's vector on the promise that the
 * winner's record tells their nodes they lost.
 */
export function beatenBy(winner: Entry, versions: Entry[]): Entry[] {
  return versions.filter((v) => !sameVersion(v, winner) && compareVV(v.vv, winner.vv) === 'concurrent' && wins(winner, v));
}

/**
 * `vv` without what only `beaten` brought into it, for when the winner that beat them is
 * dropped unpublished: each of their nodes' counters goes back to what the winner itself had
 * seen (`seen`, its own vector), unless a later version of that node raised it further (that
 * one came on its own merits). This node's counter stays: it numbers this node's changes.
 */
export function withoutBeaten(vv: VersionVector, seen: VersionVector, beaten: Entry[], me: string): VersionVector {
  const taken = beaten.reduce<VersionVector>((acc, v) => mergeVV(acc, v.vv), {});
  const out = { ...vv };
  for (const [node, n] of Object.entries(taken)) {
    const had = seen[node] ?? 0;
    if (node === me || out[node] !== n || had >= n) continue;
    if (had > 0) out[node] = had;
    else delete out[node];
  }
  return sortVV(out);
}

/** The live versions a manifest entry stands for (the entry itself unless it kept more). */
function liveVersions(e: LocalEntry): Entry[] {
  if (e.versions) return e.versions;
  return e.kind === 'deleted' ? [] : [bare(e)];
}

/** One record is one (hlc, author): the same version, whatever vector it is stored with. */
export function sameVersion(a: Entry, b: Entry): boolean {
  return a.hlc === b.hlc && a.author === b.author && a.kind === b.kind;
}

function bare(e: Entry): Entry {
  const { path, kind, digest, size, mode, mtime, target, vv, hlc, author } = e;
  return { path, kind, digest, size, mode, mtime, target, vv, hlc, author };
}

/** Groups records by path, keeping journal order within each path and first-seen order overall. */
export function byPath(records: Entry[]): Map<string, Entry[]> {
  const out = new Map<string, Entry[]>();
  for (const r of records) {
    const list = out.get(r.path);
    if (list) list.push(r);
    else out.set(r.path, [r]);
  }
  return out;
}
