import { gunzipSync, gzipSync } from 'node:zlib';
import type { Store } from '../../store/store.js';
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

/** Parses a snapshot; anything malformed refuses the whole snapshot (it is a single commit). */
export function decodeSnapshot(name: string, body: Buffer, opts: { allowExternalSymlinks: boolean }): Snapshot {
  let text: string;
  try {
    text = gunzipSync(body, { maxOutputLength: MAX_SNAPSHOT_BYTES }).toString('utf8');
  } catch (err) {
    throw new Error(`snapshot ${name} is not valid gzip (${(err as Error).message})`);
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const h = JSON.parse(lines[0] ?? 'null') as Record<string, unknown> | null;
  if (!h || h.fedsync !== 'snapshot' || h.v !== 1) throw new Error(`snapshot ${name} has no valid header`);
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
  const entries = lines.slice(1, 1 + n).map((l, i): SnapshotEntry => {
    try {
      const raw = JSON.parse(l) as { versions?: unknown };
      const e: SnapshotEntry = parseRecord(raw, opts);
      if (Array.isArray(raw.versions) && raw.versions.length > 0) {
        e.versions = raw.versions.map((v) => parseRecord(v, opts));
        if (e.versions.some((v) => v.path !== e.path)) throw new Error('a version names another path');
      }
      return e;
    } catch (err) {
      throw new Error(`snapshot ${name} entry ${i + 1}: ${(err as Error).message}`);
    }
  });
  const bundles = lines.slice(1 + n).map((l) => {
    const b = JSON.parse(l) as BundleItem;
    const ok = typeof b.bundle === 'string' && BUNDLE.test(b.bundle) && DIGEST.test(b.digest) && [b.offset, b.length].every((x) => Number.isSafeInteger(x) && x >= 0);
    if (!ok) throw new Error(`snapshot ${name} has an invalid bundle index line`);
    return { bundle: b.bundle, digest: b.digest, offset: b.offset, length: b.length };
  });
  return { name, node: h.node, hlc: h.hlc, created: String(h.created), cursors, entries, bundles };
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
