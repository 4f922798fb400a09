import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fdatasync, openSync, writeSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { mapLimit } from '../../util/pool.js';
import type { SetContext } from '../context.js';
import { diskMatches, diskState } from '../disk.js';
import { BUNDLES_PREFIX } from '../layout.js';
import type { Entry } from '../record.js';
import type { BundleItem, Snapshot } from './snapshot.js';

/** Files up to this size travel in bundles; larger ones are fetched on their own. */
export const BUNDLE_MAX_ITEM = 1024 * 1024;
/** A bundle is closed once it reaches this size. */
const BUNDLE_TARGET = 32 * 1024 * 1024;
/** Below this many needed items, fetching single blobs is cheaper than a whole bundle. */
const MIN_ITEMS_PER_FETCH = 8;

export function bundleKey(name: string): string {
  return `${BUNDLES_PREFIX}${name}`;
}

/**
 * Packs the contents of the snapshot's small files into bundles, from this node's own disk
 * where it holds the snapshot's version, else from the store's blobs (see readVerified).
 * Bundles of the previous snapshot that are still at least half live are reused as they
 * are, so a busy federation does not re-upload its whole tree with every snapshot. A content
 * found nowhere is left out: a bootstrapping node fetches it on its own.
 */
export async function buildBundles(ctx: SetContext, snapName: string, entries: Entry[], previous: Snapshot | null): Promise<BundleItem[]> {
  const wanted = new Map<string, Entry[]>();
  for (const e of entries) {
    if (e.kind !== 'file' || e.size === 0 || e.size > BUNDLE_MAX_ITEM) continue;
    const list = wanted.get(e.digest!);
    if (list) list.push(e);
    else wanted.set(e.digest!, [e]);
  }
  const items: BundleItem[] = [];
  for (const [bundle, its] of groupByBundle(previous?.bundles ?? [])) {
    const total = its.reduce((n, i) => n + i.length, 0);
    const live = its.filter((i) => wanted.has(i.digest));
    if (live.reduce((n, i) => n + i.length, 0) * 2 < total) continue;
    for (const i of live) {
      items.push({ ...i, bundle });
      wanted.delete(i.digest);
    }
  }
  let n = 0;
  let parts: Buffer[] = [];
  let size = 0;
  let pending: BundleItem[] = [];
  const flush = async () => {
    if (parts.length === 0) return;
    const name = `${snapName}/${n++}`;
    await ctx.store.put(bundleKey(name), Buffer.concat(parts));
    items.push(...pending.map((p) => ({ ...p, bundle: name })));
    parts = [];
    pending = [];
    size = 0;
  };
  for (const [digest, list] of wanted) {
    const body = await readVerified(ctx, list, digest);
    if (!body) continue;
    pending.push({ bundle: '', digest, offset: size, length: body.length });
    parts.push(body);
    size += body.length;
    if (size >= BUNDLE_TARGET) await flush();
  }
  await flush();
  return items;
}

/**
 * The content of one of the entries, checked against the digest: from this node's disk where
 * it holds that version, else (a path excluded here, a record not applied yet) from the
 * store's blob, or nothing: bundles only ever save a bootstrapping node requests.
 */
async function readVerified(ctx: SetContext, list: Entry[], digest: string): Promise<Buffer | null> {
  for (const e of list) {
    const local = ctx.manifest.getEntry(e.path);
    if (!local || local.absent || !diskMatches(local, diskState(ctx.set.path, e.path))) continue;
    try {
      const body = await readFile(join(ctx.set.path, e.path));
      if (createHash('sha256').update(body).digest('hex') === digest) return body;
    } catch {
      // changed or gone since; try the next path with this content
    }
  }
  try {
    const body = await ctx.store.get(ctx.blobKey(digest));
    if (body && createHash('sha256').update(body).digest('hex') === digest) return body;
  } catch (err) {
    ctx.log.warn({ digest, err: (err as Error).message }, 'cannot read a blob for a bundle; a bootstrapping node fetches it on its own');
  }
  return null;
}

function groupByBundle(items: BundleItem[]): Map<string, BundleItem[]> {
  const out = new Map<string, BundleItem[]>();
  for (const i of items) {
    const list = out.get(i.bundle);
    if (list) list.push(i);
    else out.set(i.bundle, [i]);
  }
  return out;
}

/** Bundles streamed at once, and staged files being written per bundle. */
const BUNDLES_IN_FLIGHT = 3;
const WRITES_PER_BUNDLE = 8;

/**
 * Streams the bundles that hold enough of the needed contents and writes each needed item,
 * verified against its digest, to a synced temp file beside the tree (the root's
 * `.fedsync/tmp`, so apply can rename it into place). Returns digest → temp file. Only the
 * item being cut out is held in memory, never a whole bundle. A bundle that is missing, or an
 * item that does not verify or lies past the bundle's end, is skipped: those contents are
 * fetched as single blobs afterwards, so bundles only ever save requests, never decide
 * correctness.
 */
export async function stageFromBundles(ctx: SetContext, items: BundleItem[], needed: Set<string>, tmpDir: string): Promise<Map<string, string>> {
  const staged = new Map<string, string>();
  const useful = [...groupByBundle(items.filter((i) => needed.has(i.digest)))].filter(([, its]) => its.length >= MIN_ITEMS_PER_FETCH);
  await mapLimit(useful, BUNDLES_IN_FLIGHT, ([bundle, its]) => stageBundle(ctx, bundle, its, tmpDir, staged));
  return staged;
}

async function stageBundle(ctx: SetContext, bundle: string, its: BundleItem[], tmpDir: string, staged: Map<string, string>): Promise<void> {
  const body = await ctx.store.getStream(bundleKey(bundle));
  if (!body) {
    ctx.log.warn({ bundle }, 'bundle missing; fetching its files one by one');
    return;
  }
  // In bundle order; an item overlapping the one before (a malformed listing) is left out.
  const wanted: BundleItem[] = [];
  for (const i of [...its].sort((a, b) => a.offset - b.offset)) {
    const prev = wanted.at(-1);
    if (!prev || i.offset >= prev.offset + prev.length) wanted.push(i);
  }
  const writes = new Set<Promise<void>>();
  let failure: unknown = null;
  const write = (i: BundleItem, bytes: Buffer): void => {
    if (staged.has(i.digest)) return; // the same content from another bundle
    if (createHash('sha256').update(bytes).digest('hex') !== i.digest) {
      ctx.log.error({ bundle, digest: i.digest }, 'bundle item does not match its digest; fetching it on its own');
      return;
    }
    const tmp = join(tmpDir, `${randomBytes(8).toString('hex')}.bundle`);
    staged.set(i.digest, tmp);
    const p = writeSynced(tmp, bytes).catch((err: unknown) => {
      staged.delete(i.digest);
      failure ??= err;
    });
    writes.add(p);
    void p.finally(() => writes.delete(p));
  };
  let pos = 0;
  let next = 0;
  let parts: Buffer[] = [];
  try {
    for await (const chunk of body) {
      const c = chunk as Buffer;
      const at = pos;
      pos += c.length;
      ctx.stats.bytesDown += c.length;
      while (next < wanted.length) {
        const i = wanted[next]!;
        if (i.offset >= pos) break;
        const end = i.offset + i.length;
        parts.push(c.subarray(Math.max(i.offset, at) - at, Math.min(end, pos) - at));
        if (end > pos) break;
        write(i, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
        parts = [];
        next++;
      }
      while (writes.size >= WRITES_PER_BUNDLE) await Promise.race(writes);
      if (failure) throw failure;
    }
  } finally {
    body.destroy();
    await Promise.all(writes);
  }
  if (failure) throw failure;
}

/**
 * Synced here: apply renames it into place as it is for the first path with this content
 * (one write per file, not a staging copy and then a copy of that). Only the datasync, which
 * waits for the disk, goes through the thread pool: creating and writing a file of at most
 * `BUNDLE_MAX_ITEM` bytes costs less than the trips there and back.
 */
async function writeSynced(path: string, bytes: Buffer): Promise<void> {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeFullSync(fd, bytes);
    await fdatasyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeFullSync(fd: number, bytes: Buffer): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}

const fdatasyncAsync = promisify(fdatasync);

export async function unstage(staged: Map<string, string>): Promise<void> {
  for (const tmp of staged.values()) await rm(tmp, { force: true });
}
