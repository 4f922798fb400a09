import { gunzipSync, gzipSync } from 'node:zlib';
import type { Store } from '../../store/store.js';
import type { SetContext } from '../context.js';
import { isHlc, type Hlc } from '../hlc.js';
import { isNodeId } from '../ids.js';
import { SNAPSHOTS_PREFIX } from '../layout.js';
import { parseRecord, recordJson, type Entry } from '../record.js';

/** A path's state at the cut, with its concurrent live versions when it has several. */
export type SnapshotEntry = Entry & { versions?: Entry[] };

/** Where one small file's bytes sit inside a bundle object. */
export interface BundleItem {
  /** Bundle key below `bundles/`: `<snapshot that wrote it>/<n>`. */
  bundle: string;
  digest: string;
  offset: number;
  length: number;
}

/**
 * The whole federation state at a cut (DESIGN "History"): every entry, tombstones included,
 * the journal positions it covers, and where bundles hold the contents of its small files.
 */
export interface Snapshot {
  name: string;
  node: string;
  hlc: Hlc;
  created: string;
  /** For each node, the last of its segments this state includes. */
  cursors: Record<string, number>;
  entries: SnapshotEntry[];
  bundles: BundleItem[];
  /** Well-formed lines that failed validation, left out (DESIGN rule 8); set by decoding. */
  rejected?: RejectedLine[];
}

/** A snapshot line left out, with what could still be read of it. */
export interface RejectedLine {
  /** Line number in the snapshot (the header is line 1). */
  line: number;
  reason: string;
  /** The entry's path, when it is a string at all (so no one takes the path for deleted). */
  path?: string;
  /** The entry's digest, when it looks like one (so garbage collection keeps the blob). */
  digest?: string;
}

const MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024 * 1024;
const DIGEST = /^[0-9a-f]{64}$/;
const BUNDLE = /^[0-9]{13}-[0-9]{6}-[a-z2-7]{26}\/[0-9]{1,6}$/;

export function snapshotName(hlc: Hlc, node: string): string {
  return `${hlc}-${node}`;
}

export function snapshotKey(name: string): string {
  return `${SNAPSHOTS_PREFIX}${name}`;
}

export function encodeSnapshot(s: Snapshot): Buffer {
  const header = { fedsync: 'snapshot', v: 1, node: s.node, hlc: s.hlc, created: s.created, cursors: s.cursors, entries: s.entries.length, bundles: s.bundles.length };
  const lines = [JSON.stringify(header), ...s.entries.map(entryJson), ...s.bundles.map((b) => JSON.stringify(b))];
  return gzipSync(Buffer.from(lines.join('\n') + '\n'));
}

/**
 * An entry line: the record form, plus the concurrent live versions the entry stands for
 * when it has them (rule 3 ranks later records against those, not the merged state).
 */
function entryJson(e: SnapshotEntry): string {
  const line = recordJson(e);
  if (!e.versions?.length) return line;
  return `${line.slice(0, -1)},"versions":[${e.versions.map(recordJson).join(',')}]}`;
}

/**
 * Parses a snapshot. What makes it other than what its writer committed refuses it whole:
 * bad gzip, a bad header, a name it does not match, a count that says it is truncated, a line
 * that is not JSON. A well-formed line that fails validation (a path receivers refuse, a bad
 * field) is only left out and listed in `rejected` (DESIGN rule 8): one bad entry must not
 * cost every other path its history, bootstrap or garbage collection.
 */
export function decodeSnapshot(name: string, body: Buffer, opts: { allowExternalSymlinks: boolean }): Snapshot {
  let text: string;
  try {
    text = gunzipSync(body, { maxOutputLength: MAX_SNAPSHOT_BYTES }).toString('utf8');
  } catch (err) {
    throw new Error(`snapshot ${name} is not valid gzip (${(err as Error).message})`);
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const json = (l: string | undefined, i: number): unknown => {
    try {
      return JSON.parse(l ?? 'null') as unknown;
    } catch {
      throw new Error(`snapshot ${name} line ${i + 1} is not valid JSON`);
    }
  };
  const h = json(lines[0], 0) as Record<string, unknown> | null;
  if (!h || typeof h !== 'object' || h.fedsync !== 'snapshot' || h.v !== 1) throw new Error(`snapshot ${name} has no valid header`);
  if (!isNodeId(h.node) || !isHlc(h.hlc) || snapshotName(h.hlc, h.node) !== name) throw new Error(`snapshot ${name} does not match its name`);
  const counts = [h.entries, h.bundles];
  if (!counts.every((n) => typeof n === 'number') || (h.entries as number) + (h.bundles as number) !== lines.length - 1) {
    throw new Error(`snapshot ${name} is truncated`);
  }
  const cursors: Record<string, number> = {};
  for (const [k, v] of Object.entries((h.cursors ?? {}) as Record<string, unknown>)) {
    if (!isNodeId(k) || typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error(`snapshot ${name} has an invalid cursor`);
    cursors[k] = v;
  }
  const n = h.entries as number;
  const parsed = lines.map((l, i) => (i === 0 ? null : json(l, i)));
  const entries: SnapshotEntry[] = [];
  const rejected: RejectedLine[] = [];
  const leaveOut = (i: number, raw: unknown, reason: string) => {
    const r = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    rejected.push({
      line: i + 1,
      reason,
      ...(typeof r.path === 'string' ? { path: r.path } : {}),
      ...(typeof r.digest === 'string' && DIGEST.test(r.digest) ? { digest: r.digest } : {}),
    });
  };
  for (let i = 1; i <= n; i++) {
    const raw = parsed[i] as { versions?: unknown };
    try {
      const e: SnapshotEntry = parseRecord(raw, opts);
      if (Array.isArray(raw.versions) && raw.versions.length > 0) {
        e.versions = raw.versions.map((v) => parseRecord(v, opts));
        if (e.versions.some((v) => v.path !== e.path)) throw new Error('a version names another path');
      }
      entries.push(e);
    } catch (err) {
      leaveOut(i, raw, (err as Error).message);
    }
  }
  const bundles: BundleItem[] = [];
  for (let i = n + 1; i < lines.length; i++) {
    const b = parsed[i] as BundleItem | null;
    const ok = typeof b === 'object' && b !== null && typeof b.bundle === 'string' && BUNDLE.test(b.bundle) && typeof b.digest === 'string' && DIGEST.test(b.digest) && [b.offset, b.length].every((x) => Number.isSafeInteger(x) && x >= 0);
    // A bundle item left out only means that file is fetched on its own.
    if (!ok) leaveOut(i, null, 'invalid bundle index line');
    else bundles.push({ bundle: b.bundle, digest: b.digest, offset: b.offset, length: b.length });
  }
  return { name, node: h.node, hlc: h.hlc, created: String(h.created), cursors, entries, bundles, rejected };
}

/** Names of the snapshots in the store, oldest first (names sort by HLC). */
export async function listSnapshots(store: Store): Promise<string[]> {
  const names: string[] = [];
  for await (const o of store.list(SNAPSHOTS_PREFIX)) {
    const name = o.key.slice(SNAPSHOTS_PREFIX.length);
    if (/^[0-9]{13}-[0-9]{6}-[a-z2-7]{26}$/.test(name)) names.push(name);
  }
  return names.sort();
}

export async function loadSnapshot(store: Store, name: string, opts: { allowExternalSymlinks: boolean }): Promise<Snapshot | null> {
  const body = await store.get(snapshotKey(name));
  return body ? decodeSnapshot(name, body, opts) : null;
}

const REPORTED = 'snapshot_lines_reported';
/** How many reported lines are remembered: snapshots are few and rarely hold any. */
const REMEMBERED = 1000;

/**
 * loadSnapshot for a node's own use: each line a snapshot left out is logged and counted
 * once per node, not every time a housekeeping, history or bootstrap reads it again (nor
 * again when another reader's symlink policy also refuses it).
 */
export async function readSnapshot(ctx: SetContext, name: string, opts: { allowExternalSymlinks: boolean }): Promise<Snapshot | null> {
  const snap = await loadSnapshot(ctx.store, name, opts);
  if (!snap?.rejected?.length) return snap;
  let done: string[] = [];
  try {
    done = JSON.parse(ctx.manifest.getMeta(REPORTED) ?? '[]') as string[];
  } catch {
    // a damaged note only means reporting again
  }
  const known = new Set(done);
  const fresh = snap.rejected.filter((r) => !known.has(`${name}:${r.line}`));
  if (fresh.length === 0) return snap;
  for (const r of fresh) {
    ctx.stats.rejected++;
    ctx.log.error({ snapshot: name, line: r.line, reason: r.reason }, 'rejected an invalid snapshot entry; the rest of the snapshot is used');
  }
  ctx.manifest.setMeta(REPORTED, JSON.stringify([...done, ...fresh.map((r) => `${name}:${r.line}`)].slice(-REMEMBERED)));
  return snap;
}
