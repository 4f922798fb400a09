import { lstatSync, mkdirSync } from 'node:fs';
import { inDirOf } from '../fsutil/writable.js';
import { join } from 'node:path';
import { statKey } from '../fsutil/stat.js';
import { placedView, type LocalEntry } from '../manifest/manifest.js';

/** What is at a path on disk right now, in the terms the manifest compares. */
export interface DiskState {
  kind: 'file' | 'symlink' | 'dir' | 'other';
  stat: string;
}

export function diskState(root: string, rel: string): DiskState | null {
  let st;
  try {
    st = lstatSync(join(root, rel), { bigint: true, throwIfNoEntry: false });
  } catch (err) {
    // A parent is a file, or a symlink that loops: nothing of the tree is there.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG') return null;
    throw err;
  }
  if (!st) return null;
  // Reached through a symlinked parent, it is not in the tree (and maybe not in the root):
  // reading it could publish an outside file, deleting it could delete one.
  if (!parentsAreDirs(root, rel)) return null;
  if (st.isDirectory()) return { kind: 'dir', stat: 'dir' };
  if (st.isFile()) return { kind: 'file', stat: statKey(st) };
  if (st.isSymbolicLink()) return { kind: 'symlink', stat: statKey(st) };
  return { kind: 'other', stat: statKey(st) };
}

/**
 * Whether the disk still holds exactly what the manifest last recorded for the path. When it
 * does not, the path carries a local change that no scan has recorded yet, and a remote
 * state must not simply replace it (DESIGN rule 3).
 */
export function diskMatches(entry: LocalEntry | undefined, disk: DiskState | null): boolean {
  // An entry not placed here is compared by what this node last placed at the path.
  const local = placedView(entry);
  if (!local || local.kind === 'deleted') return disk === null;
  if (!disk) return false;
  if (local.kind === 'dir') return disk.kind === 'dir';
  return disk.kind === local.kind && local.stat !== null && disk.stat === local.stat;
}

/** Whether every parent of `rel` is a real directory (no symlink, no file) inside the root. */
export function parentsAreDirs(root: string, rel: string): boolean {
  const segs = rel.split('/');
  for (let i = 1; i < segs.length; i++) {
    let st;
    try {
      st = lstatSync(join(root, ...segs.slice(0, i)), { throwIfNoEntry: false });
    } catch {
      return false; // ENAMETOOLONG, ELOOP: not a directory this path can use
    }
    if (!st?.isDirectory()) return false;
  }
  return true;
}

/** A remote record that can never be applied here (hostile or impossible): skip it, log it. */
export class RejectedRecord extends Error {
  override name = 'RejectedRecord';
}

/**
 * Makes sure every parent of `rel` is a real directory, creating missing ones. A parent that
 * is a symlink would let a record write outside the root, so the record is rejected; one that
 * is a file is a type conflict the record cannot resolve on its own.
 * Returns the directories it created.
 */
export function ensureParents(root: string, rel: string): string[] {
  const segs = rel.split('/');
  const created: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const p = segs.slice(0, i).join('/');
    let st;
    try {
      st = lstatSync(join(root, p), { throwIfNoEntry: false });
    } catch (err) {
      throw new RejectedRecord(`parent "${p.slice(0, 200)}" cannot be used here (${(err as NodeJS.ErrnoException).code})`);
    }
    if (!st) {
      try {
        inDirOf(join(root, p), () => mkdirSync(join(root, p), { mode: 0o755 }));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENAMETOOLONG') throw new RejectedRecord('path is too long under this root');
        throw err;
      }
      created.push(p);
    } else if (st.isSymbolicLink()) throw new RejectedRecord(`parent "${p}" is a symlink`);
    else if (!st.isDirectory()) throw new RejectedRecord(`parent "${p}" is not a directory`);
  }
  return created;
}
