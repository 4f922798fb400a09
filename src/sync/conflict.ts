import { posix } from 'node:path';

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
    const name = `${stem}.sync-conflict-${stamp}-${who}${n > 1 ? `-${n}` : ''}${ext}`;
    const candidate = dir === '.' ? name : `${dir}/${name}`;
    if (!taken(candidate)) return candidate;
  }
}
