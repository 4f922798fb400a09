import type { LocalEntry } from '../manifest/manifest.js';
import { sameContent, sameState, type Entry } from './record.js';
import { compareVV, mergeVV } from './vv.js';

/** What applying the received records means for one path. */
export interface Decision {
  path: string;
  local: LocalEntry | undefined;
  /** The state to record (version vectors merged). */
  final: Entry;
  /**
   * `record`: the disk already holds the final state, only the manifest changes;
   * `meta`: same content, mode or mtime to set; `write`: new content, a directory or a
   * symlink to put in place; `delete`: remove what is there.
   */
  op: 'record' | 'meta' | 'write' | 'delete';
  /** This node's own version lost a conflict and must be kept as a conflict copy first. */
  keepLocal: boolean;
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
 */
export function decide(path: string, local: LocalEntry | undefined, incoming: Entry[], me: string): Decision | null {
  let cur: Entry | undefined = local;
  let curIsLocal = local !== undefined;
  let keepLocal = false;
  for (const r of incoming) {
    if (!cur) {
      cur = r;
      continue;
    }
    const order = compareVV(r.vv, cur.vv);
    if (order === 'before' || order === 'equal') continue;
    if (order === 'after') {
      cur = r;
      curIsLocal = false;
      continue;
    }
    const vv = mergeVV(r.vv, cur.vv);
    if (wins(r, cur)) {
      if (curIsLocal && cur.author === me && cur.kind !== 'deleted' && !sameContent(cur, r)) keepLocal = true;
      cur = { ...r, vv };
      curIsLocal = false;
    } else {
      cur = { ...cur, vv };
    }
  }
  if (!cur || cur === local) return null;
  const final: Entry = {
    path,
    kind: cur.kind,
    digest: cur.digest,
    size: cur.size,
    mode: cur.mode,
    mtime: cur.mtime,
    target: cur.target,
    vv: cur.vv,
    hlc: cur.hlc,
    author: cur.author,
  };
  let op: Decision['op'];
  if (curIsLocal || (local && sameState(local, final))) op = 'record';
  else if (final.kind === 'deleted') op = local && local.kind !== 'deleted' ? 'delete' : 'record';
  else if (local && final.kind === 'file' && sameContent(local, final)) op = 'meta';
  else op = 'write';
  return { path, local, final, op, keepLocal: keepLocal && op !== 'record' };
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
