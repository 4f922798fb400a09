import type { Entry, Kind, VersionVector } from '../model/entry.js';

// How the manifest's rows of files and peers map to what the protocol works with.

/** An entry as the manifest keeps it: the federation state plus the last local stat. */
export interface LocalEntry extends Entry {
  stat: string | null;
  /**
   * The live versions (each with its own vector) that no record has superseded yet, when
   * there is more than the entry itself: concurrent edits decide later records by them.
   */
  versions?: Entry[];
  /**
   * Set when the entry is not on this node's disk: `excluded` (this node's exclude keeps the
   * path out) or `wanted` (not placed yet, retried; DESIGN rule 7). The entry is still the
   * federation's state of the path, and snapshots carry it like any other.
   */
  absent?: Absent;
  /** What this node last placed at the path, when the entry is absent (null: nothing). */
  base?: Base | null;
  /** The retry state of a wanted entry. */
  wanted?: Wanted;
}

export type Absent = 'excluded' | 'wanted';

/** A placed state kept under an absent entry; `keepLocal`: it lost a conflict (keep a copy). */
export type Base = LocalEntry & { keepLocal?: boolean };

export interface Wanted {
  /** When the path first became wanted (ms). */
  since: number;
  /** Not retried before this (ms). */
  retryAt: number;
  tries: number;
  reason: string;
}

/** The federation's state of an entry, without what this node keeps beside it. */
export function stateOf(e: LocalEntry): Entry & { versions?: Entry[] } {
  const { stat: _s, absent: _a, base: _b, wanted: _w, ...rest } = e;
  return rest;
}

/**
 * What the disk holds at the entry's path as far as this node knows: the entry itself when
 * it is placed, else the state it last placed there (undefined: nothing).
 */
export function placedView(e: LocalEntry | undefined): LocalEntry | undefined {
  if (!e?.absent) return e;
  return e.base ?? undefined;
}

export interface Peer {
  node: string;
  name: string;
  role: string;
  cursor: number;
  headEtag: string | null;
  headSeq: number;
  heartbeat: string | null;
  error: string | null;
}

/** What a scan compares the disk with, per path: nothing in it needs parsing. */
export interface StatRow {
  path: string;
  kind: Kind;
  mode: number;
  stat: string | null;
  /** The entry is not placed here: kind, mode and stat are those of what is (see placedView). */
  absent?: Absent;
}

export interface RawStatRow {
  path: string;
  kind: Kind;
  mode: number;
  stat: string | null;
  absent: Absent | null;
  base: string | null;
}

export function statRow(r: RawStatRow): StatRow {
  if (r.absent === null) return { path: r.path, kind: r.kind, mode: r.mode, stat: r.stat };
  const b = r.base === null ? null : (JSON.parse(r.base) as Base);
  // Nothing placed: known to the scan as a tombstone is, so a file there is new here.
  if (!b) return { path: r.path, kind: 'deleted', mode: 0, stat: null, absent: r.absent };
  return { path: r.path, kind: b.kind, mode: b.mode, stat: b.stat, absent: r.absent };
}

export interface FileRow {
  path: string;
  kind: string;
  digest: string | null;
  size: number;
  mode: number;
  mtime: number;
  target: string | null;
  vv: string;
  hlc: string;
  author: string;
  stat: string | null;
  versions: string | null;
  absent: Absent | null;
  base: string | null;
  wanted_since: number | null;
  retry_at: number | null;
  tries: number | null;
  reason: string | null;
}

export function fromRow(r: FileRow): LocalEntry {
  const { versions, absent, base, wanted_since, retry_at, tries, reason, ...rest } = r;
  const e: LocalEntry = { ...rest, kind: r.kind as Kind, vv: JSON.parse(r.vv) as VersionVector };
  if (versions !== null) e.versions = JSON.parse(versions) as Entry[];
  if (absent !== null) {
    e.absent = absent;
    e.base = base === null ? null : (JSON.parse(base) as Base);
    if (absent === 'wanted') e.wanted = { since: wanted_since ?? 0, retryAt: retry_at ?? 0, tries: tries ?? 0, reason: reason ?? '' };
  }
  return e;
}

/** Placement columns of a placed entry (see Manifest.putEntry). */
export const PLACED = { absent: null, base: null, wanted_since: null, retry_at: null, tries: null, reason: null };

/** The columns of an entry's row but the placement ones (see PLACED). */
export function fileRow(e: Entry & { versions?: Entry[] }, stat: string | null) {
  return {
    path: e.path,
    kind: e.kind,
    digest: e.digest,
    size: e.size,
    mode: e.mode,
    mtime: e.mtime,
    target: e.target,
    vv: JSON.stringify(e.vv),
    hlc: e.hlc,
    author: e.author,
    stat,
    versions: e.versions ? JSON.stringify(e.versions) : null,
  };
}
