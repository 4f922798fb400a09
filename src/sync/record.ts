import { posix } from 'node:path';
import type { Entry, Hlc, VersionVector } from '../model/entry.js';
import { isHlc } from './hlc.js';
import { isNodeId } from './ids.js';

export type { Entry, Kind } from '../model/entry.js';

/** The `.fedsync` directory at the root belongs to the tool and is never synchronised. */
export const MARKER_DIR = '.fedsync';

const DIGEST = /^[0-9a-f]{64}$/;
const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;

/** Why a path from the store cannot be used, or null when it is acceptable (DESIGN rule 4). */
export function pathProblem(p: unknown): string | null {
  if (typeof p !== 'string' || p.length === 0) return 'path is empty or not a string';
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) return 'path is too long';
  if (p.includes('\0')) return 'path contains NUL';
  if (p.includes('\\')) return 'path contains a backslash';
  if (p.startsWith('/')) return 'path is absolute';
  const segs = p.split('/');
  for (const s of segs) {
    if (s === '') return 'path has an empty segment';
    if (s === '.' || s === '..') return `path has a "${s}" segment`;
    if (Buffer.byteLength(s) > MAX_NAME_BYTES) return 'path has a name longer than 255 bytes';
  }
  if (segs[0] === MARKER_DIR) return `path is inside ${MARKER_DIR}/`;
  return null;
}

/** Why a symlink target is unacceptable for a link at `path`, or null. */
export function targetProblem(path: string, target: unknown, allowExternal: boolean): string | null {
  if (typeof target !== 'string' || target.length === 0) return 'symlink target is empty';
  if (target.includes('\0')) return 'symlink target contains NUL';
  if (Buffer.byteLength(target) > MAX_PATH_BYTES) return 'symlink target is too long';
  if (allowExternal) return null;
  if (target.startsWith('/')) return 'symlink target is absolute (outside the root)';
  // The kernel follows a symlink before it applies a later "..": in `d/up/../x` with `d/up`
  // a link, ".." leaves wherever `d/up` led. Only a leading run of ".." is judged by text alone.
  const parts = target.split('/').filter((s) => s !== '' && s !== '.');
  const ups = parts.findIndex((s) => s !== '..');
  if (ups >= 0 && parts.slice(ups).includes('..')) return 'symlink target has ".." after a name (it could leave the root through another link)';
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  if (resolved === '..' || resolved.startsWith('../')) return 'symlink target leaves the root';
  if (resolved === MARKER_DIR || resolved.startsWith(`${MARKER_DIR}/`)) return `symlink target is inside ${MARKER_DIR}/`;
  return null;
}

function isCount(n: unknown, max = Number.MAX_SAFE_INTEGER): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= max;
}

function vvProblem(vv: unknown): string | null {
  if (typeof vv !== 'object' || vv === null || Array.isArray(vv)) return 'vv is not an object';
  const entries = Object.entries(vv);
  if (entries.length === 0) return 'vv is empty';
  if (entries.length > 10_000) return 'vv is too large';
  for (const [k, v] of entries) {
    if (!isNodeId(k)) return `vv has an invalid node id ${JSON.stringify(k)}`;
    if (!isCount(v) || v === 0) return `vv has an invalid counter for ${k}`;
  }
  return null;
}

/**
 * Checks a record received from the store, field by field, and returns it in canonical form
 * (unknown fields dropped, set-id bits cleared). Throws with the reason when it is unusable.
 */
export function parseRecord(raw: unknown, opts: { allowExternalSymlinks: boolean }): Entry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('record is not an object');
  const r = raw as Record<string, unknown>;
  const pp = pathProblem(r.path);
  if (pp) throw new Error(`${pp}: ${JSON.stringify(String(r.path).slice(0, 200))}`);
  const path = r.path as string;
  const kind = r.kind;
  if (kind !== 'file' && kind !== 'symlink' && kind !== 'dir' && kind !== 'deleted') throw new Error(`${path}: invalid kind`);
  const vp = vvProblem(r.vv);
  if (vp) throw new Error(`${path}: ${vp}`);
  if (!isHlc(r.hlc)) throw new Error(`${path}: invalid hlc`);
  if (!isNodeId(r.author)) throw new Error(`${path}: invalid author`);
  if (!isCount(r.mode, 0o7777)) throw new Error(`${path}: invalid mode`);
  if (typeof r.mtime !== 'number' || !Number.isFinite(r.mtime) || r.mtime < 0 || r.mtime > 1e14) throw new Error(`${path}: invalid mtime`);
  if (!isCount(r.size)) throw new Error(`${path}: invalid size`);
  let digest: string | null = null;
  let target: string | null = null;
  if (kind === 'file') {
    if (typeof r.digest !== 'string' || !DIGEST.test(r.digest)) throw new Error(`${path}: invalid digest`);
    digest = r.digest;
  }
  if (kind === 'symlink') {
    const tp = targetProblem(path, r.target, opts.allowExternalSymlinks);
    if (tp) throw new Error(`${path}: ${tp}`);
    target = r.target as string;
  }
  return {
    path,
    kind,
    digest,
    size: kind === 'file' ? (r.size as number) : 0,
    mode: (r.mode as number) & 0o777,
    mtime: Math.floor(r.mtime),
    target,
    vv: r.vv as VersionVector,
    hlc: r.hlc as Hlc,
    author: r.author as string,
  };
}

/**
 * Why receivers would refuse this record, or null (DESIGN rule 8): the publisher's own check
 * is the receivers' parse, run on the record exactly as it would be sent.
 */
export function recordProblem(e: Entry, opts: { allowExternalSymlinks: boolean }): string | null {
  try {
    parseRecord(JSON.parse(recordJson(e)), opts);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The wire form of an entry: a stable field order, so a segment is byte-identical on retry. */
export function recordJson(e: Entry): string {
  return JSON.stringify({
    path: e.path,
    kind: e.kind,
    digest: e.digest ?? undefined,
    size: e.size,
    mode: e.mode,
    mtime: e.mtime,
    target: e.target ?? undefined,
    vv: e.vv,
    hlc: e.hlc,
    author: e.author,
  });
}

/** Same content and metadata (ignoring who made it and when). */
export function sameState(a: Pick<Entry, 'kind' | 'digest' | 'target' | 'mode' | 'mtime'>, b: Pick<Entry, 'kind' | 'digest' | 'target' | 'mode' | 'mtime'>): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'deleted') return true;
  if (a.kind === 'dir') return a.mode === b.mode;
  if (a.kind === 'symlink') return a.target === b.target;
  return a.digest === b.digest && a.mode === b.mode && a.mtime === b.mtime;
}

/** Same bytes at the path (metadata aside): no conflict copy is needed between the two. */
export function sameContent(a: Pick<Entry, 'kind' | 'digest' | 'target'>, b: Pick<Entry, 'kind' | 'digest' | 'target'>): boolean {
  return a.kind === b.kind && a.digest === b.digest && a.target === b.target;
}
