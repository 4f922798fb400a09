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
