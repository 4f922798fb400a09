import { posix } from 'node:path';
import type { Manifest } from '../manifest/manifest.js';
import type { SetContext } from './context.js';
import { beatenBy, sameVersion, withoutBeaten, type Decision } from './plan.js';
import { recordJson, type Entry } from './record.js';
import { compareVV } from './vv.js';

/**
 * The name a losing local version is kept under:
 * `dir/name.sync-conflict-YYYYMMDD-HHMMSS-<node>.ext` (ext only for a name with one; a leading
 * dot is not an extension). `taken` says whether a candidate is in use; a counter is added
 * until one is free.
 */
export function conflictPath(path: string, nodeName: string, at: Date, taken: (p: string) => boolean): string {
  const dir = posix.dirname(path);
  const base = posix.basename(path);
  const dot = base.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ''];
  const iso = at.toISOString();
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
  const who = nodeName.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'node';
  for (let n = 1; ; n++) {
    const mark = `.sync-conflict-${stamp}-${who}${n > 1 ? `-${n}` : ''}`;
    // A name the file system refuses would leave the conflict unresolved for good: a long
    // name gives up its extension if that alone is too long, then bytes of its stem.
    const [s, x] = Buffer.byteLength(mark + ext) < MAX_NAME_BYTES ? [stem, ext] : [base, ''];
    const name = `${truncateBytes(s, MAX_NAME_BYTES - Buffer.byteLength(mark + x))}${mark}${x}`;
    const candidate = dir === '.' ? name : `${dir}/${name}`;
    if (!taken(candidate)) return candidate;
  }
}

const MAX_NAME_BYTES = 255;

/** A SQLite GLOB that matches the names conflictPath makes (the mark and its time stamp). */
const CONFLICT_GLOB = '*.sync-conflict-' + '[0-9]'.repeat(8) + '-' + '[0-9]'.repeat(6) + '-*';

/**
 * Conflict copies in the federation's state that nobody has deleted yet: the same count on
 * every node that has caught up, whichever node made them. One pass over the manifest's
 * entries, much less than the scan each cycle makes of the tree.
 */
export function conflictCopies(m: Manifest): number {
  return m.countMatching(CONFLICT_GLOB);
}

/** The longest prefix of `s` (whole characters) that fits in `max` UTF-8 bytes. */
function truncateBytes(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    bytes += Buffer.byteLength(ch);
    if (bytes > max) break;
    out += ch;
  }
  return out;
}

/*
 * Rule 3 merges the vectors of the versions a winner beat into the path's vector, so the next
 * edit dominates them all. On the winner's own node that is a promise: the winner's record,
 * once published, tells each loser's node that it lost (it keeps its version as a conflict
 * copy). A record that is dropped unpublished (its content changed before its blob was stored)
 * breaks that promise, so the node takes the merge back (`takeBack`) and ranks those versions
 * again against whatever it holds next (`rankAgain`). The few versions involved live in two
 * manifest meta keys, never in memory across cycles.
 */

/** Versions that this node's own versions beat while it had records unpublished, by path. */
const PROMISES = 'conflict_promises';
/** Versions whose merge was taken back, to rank again against the path's local state, by path. */
const RANK_AGAIN = 'rank_again';

type ByPath = Record<string, Entry[]>;

function readMap(ctx: SetContext, key: string): ByPath {
  return JSON.parse(ctx.manifest.getMeta(key) ?? '{}') as ByPath;
}

function writeMap(ctx: SetContext, key: string, map: ByPath): void {
  ctx.manifest.setMeta(key, JSON.stringify(map));
}

function union(a: Entry[], b: Entry[]): Entry[] {
  return [...a, ...b.filter((v) => !a.some((x) => sameVersion(x, v)))];
}

/**
 * After deciding: notes the versions that this node's own version beat, while the outbox is
 * not empty (the winner's record may be among the unpublished ones, and could be dropped).
 */
export function notePromises(ctx: SetContext, decisions: Decision[]): void {
  const won = decisions.filter((d) => d.final.author === ctx.nodeId && d.final.versions);
  if (won.length === 0 || ctx.manifest.outboxSegments().length === 0) return;
  const map = readMap(ctx, PROMISES);
  let changed = false;
  for (const { path, final } of won) {
    const winner = final.versions!.find((v) => sameVersion(v, final)) ?? final;
    const beaten = beatenBy(winner, final.versions!);
    if (beaten.length === 0) continue;
    map[path] = union(map[path] ?? [], beaten);
    changed = true;
  }
  if (changed) writeMap(ctx, PROMISES, map);
}

/** Once every queued record is published, every promise is kept. */
export function promisesKept(ctx: SetContext): void {
  const v = ctx.manifest.getMeta(PROMISES);
  if (v !== undefined && v !== '{}') ctx.manifest.setMeta(PROMISES, '{}');
}

/** A record still in the outbox, where it is. */
export interface Queued {
  seq: number;
  idx: number;
  entry: Entry;
}

/**
 * The dropped record `dropped` will never tell the nodes of the versions it beat that they
 * lost. So the merge of their counters is taken back: from this node's records of the path
 * queued after it (edits and deletions alike) and from the path's entry, whose vector becomes
 * its own again (what the dropped record had seen plus this node's counter). Whatever this
 * node records next on the path is then made from that vector, so it too stays concurrent
 * with those versions. Every node ranks them again: the others when this node's next record
 * reaches them, this node at its next receive (`rankAgain`). Nothing to do when a version
 * received since beat the dropped one: that version's record carries the merge. `later`
 * lists this node's records of the path queued after the dropped one (read only if needed).
 */
export function takeBack(ctx: SetContext, dropped: Entry, later: () => Queued[]): void {
  const me = ctx.nodeId;
  const beaten = beatenBy(dropped, readMap(ctx, PROMISES)[dropped.path] ?? []);
  if (beaten.length === 0) return;
  const local = ctx.manifest.getEntry(dropped.path);
  const mine = later().filter((q) => q.entry.path === dropped.path && q.entry.author === me);
  if (!local || ![dropped, ...mine.map((q) => q.entry)].some((e) => sameVersion(e, local))) return;
  for (const q of mine) {
    const vv = withoutBeaten(q.entry.vv, dropped.vv, beaten, me);
    if (compareVV(vv, q.entry.vv) !== 'equal') ctx.manifest.setOutboxRecord(q.seq, q.idx, recordJson({ ...q.entry, vv }));
  }
  const vv = withoutBeaten(local.vv, dropped.vv, beaten, me);
  const versions = (local.versions ?? [])
    .filter((v) => !beaten.some((b) => sameVersion(b, v)))
    .map((v) => (sameVersion(v, local) ? { ...v, vv: withoutBeaten(v.vv, dropped.vv, beaten, me) } : v));
  ctx.manifest.putEntry({ ...local, vv, versions: versions.length > 1 ? versions : undefined }, local.stat);
  const again = readMap(ctx, RANK_AGAIN);
  again[dropped.path] = union(again[dropped.path] ?? [], beaten);
  writeMap(ctx, RANK_AGAIN, again);
  ctx.log.info({ path: dropped.path, versions: beaten.length }, 'a winning version was dropped unpublished; the versions it beat are ranked again');
}

/**
 * The versions to rank again, by path, as if just received: those the path's vector does not
 * cover yet. Once ranked, rule 3 merges them (or a newer record supersedes them) and they
 * leave the list; until then (an apply that failed) they are ranked again every receive.
 * `prune`: drop those settled from the list (not in a dry run, which writes nothing).
 */
export function rankAgain(ctx: SetContext, prune = true): Map<string, Entry[]> {
  const map = readMap(ctx, RANK_AGAIN);
  const out = new Map<string, Entry[]>();
  let changed = false;
  for (const [path, versions] of Object.entries(map)) {
    const vv = ctx.manifest.getEntry(path)?.vv ?? {};
    const left = versions.filter((v) => {
      const o = compareVV(v.vv, vv);
      return o === 'after' || o === 'concurrent';
    });
    if (left.length > 0) out.set(path, left);
    if (left.length === versions.length) continue;
    changed = true;
    if (left.length > 0) map[path] = left;
    else delete map[path];
  }
  if (changed && prune) writeMap(ctx, RANK_AGAIN, map);
  return out;
}
