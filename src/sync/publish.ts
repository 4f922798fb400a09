import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { DigestMismatchError, LARGE_CHUNK, VerifyStream } from '../fsutil/hash.js';
import { Progress } from '../log/progress.js';
import { mapLimit } from '../util/pool.js';
import type { SetContext } from './context.js';
import { promisesKept, takeBack, type Queued } from './conflict.js';
import { encodeHead, type Head } from './head.js';
import { BLOBS_PREFIX, segmentKey } from './layout.js';
import { IdentityTakenError } from './identity.js';
import { putHead, putSegment } from './own-writes.js';
import { META, metaNumber } from './outbox.js';
import type { Entry } from './record.js';
import { encodeSegment } from './segment.js';

const UPLOADS_IN_FLIGHT = 8;
/** Above this many blobs to upload, listing what the store has first saves requests. */
const LIST_BLOBS_ABOVE = 1000;
/** Files up to this size are read whole, hashed and sent in one request. */
const SMALL_FILE = 8 * 1024 * 1024;

/**
 * Publishes the outbox (DESIGN rule 2): for each pending segment, its blobs, then the
 * segment itself, then one head raising `seq` over all of them. Every step is idempotent,
 * so a crash anywhere is repaired by simply running again: a stored segment is never
 * rebuilt, and the head is the commit point readers trust. When a write finds another writer
 * under this node's id, the node has taken a new id and publishes everything again under it.
 */
export async function publishOutbox(ctx: SetContext): Promise<number> {
  try {
    return await publishOnce(ctx);
  } catch (err) {
    if (!(err instanceof IdentityTakenError)) throw err;
    return publishOnce(ctx);
  }
}

async function publishOnce(ctx: SetContext): Promise<number> {
  const segments = ctx.manifest.outboxSegments();
  if (segments.length === 0) return 0;
  let published = 0;
  await learnStoredBlobs(ctx, segments.filter((s) => s.seq > Math.max(metaNumber(ctx, META.storedSeq), metaNumber(ctx, META.reservedSeq))));
  for (const { seq } of segments) {
    if (seq > metaNumber(ctx, META.storedSeq)) await storeSegment(ctx, seq);
    published += ctx.manifest.outboxRecords(seq).length;
  }
  const last = segments.at(-1)!.seq;
  await writeHead(ctx, last);
  ctx.manifest.transaction(() => {
    ctx.manifest.clearOutboxThrough(last);
    promisesKept(ctx);
  });
  ctx.stats.published += published;
  return published;
}

/**
 * Segment keys are write-once: the seq and the exact bytes are reserved in the manifest
 * (durably) before the upload, so a retry sends the same bytes and no later change is ever
 * added to a seq that may be stored. Blobs are stored before the reservation, and refreshed
 * before a reservation left by an interrupted run is sent (refreshReservedBlobs).
 */
async function storeSegment(ctx: SetContext, seq: number): Promise<void> {
  const m = ctx.manifest;
  const reserved = m.getMeta(META.reservedBody) ?? '';
  let body: Buffer | null = null;
  if (seq <= metaNumber(ctx, META.reservedSeq) && reserved && (await refreshReservedBlobs(ctx, seq))) body = Buffer.from(reserved, 'base64');
  if (!body) {
    await storeBlobs(ctx, seq);
    const records = m.outboxRecords(seq).map((r) => JSON.parse(r.record) as Entry);
    const built = encodeSegment(ctx.nodeId, seq, records, seq <= metaNumber(ctx, META.forcedSeq));
    m.durableTransaction(() => {
      m.setMeta(META.reservedSeq, seq);
      m.setMeta(META.reservedBody, built.toString('base64'));
    });
    body = built;
  }
  await putSegment(ctx, seq, body);
  m.transaction(() => {
    m.setMeta(META.storedSeq, seq);
    m.setMeta(META.reservedBody, '');
  });
}

/**
 * Uploads every blob the segment's records name that the store does not have yet. Content
 * is read back from disk and must still hash to the record's digest; if no path holds it any
 * more (changed since the scan), the records naming it are dropped from the unpublished
 * segment and their paths are rescanned next cycle.
 */
async function storeBlobs(ctx: SetContext, seq: number): Promise<void> {
  const rows = ctx.manifest.outboxRecords(seq).map((r) => ({ idx: r.idx, entry: JSON.parse(r.record) as Entry }));
  const lost = await uploadNeeded(ctx, rows.map((r) => r.entry));
  if (lost.length === 0) return;
  ctx.manifest.transaction(() => {
    const repaired = new Set<string>();
    for (const { idx, entry } of rows) {
      if (entry.kind !== 'file' || !lost.includes(entry.digest!)) continue;
      ctx.manifest.dropOutboxRecord(seq, idx);
      ctx.manifest.setStat(entry.path, null);
      // A dropped winner breaks rule 3's promise to the versions it beat (see takeBack).
      if (!repaired.has(entry.path)) {
        repaired.add(entry.path);
        takeBack(ctx, entry, () => queuedAfter(ctx, seq, idx, entry.path));
      }
      ctx.log.info({ path: entry.path }, 'file changed while publishing; it is published next cycle');
    }
  });
}

/**
 * A segment reserved by a run that then stopped (killed, or the store failed) was built
 * from blobs that run stored, maybe long ago: unreferenced meanwhile, collection may have
 * taken them. They are stored again (refreshed) like any blob not noted as stored within
 * gc_grace / 2, so no segment names a blob collection may already have deleted. Returns
 * false when one of them is lost (no path holds it, the store has none) and the segment is
 * not stored: the reservation is then rebuilt, without that record (storeBlobs). A segment
 * found stored keeps its bytes (write-once); its lost record reaches peers as wanted, and the
 * path is rescanned so that the version on disk now supersedes it.
 */
async function refreshReservedBlobs(ctx: SetContext, seq: number): Promise<boolean> {
  const entries = ctx.manifest.outboxRecords(seq).map((r) => JSON.parse(r.record) as Entry);
  const lost = await uploadNeeded(ctx, entries);
  if (lost.length === 0) return true;
  if (!(await ctx.store.stat(segmentKey(ctx.nodeId, seq)))) return false;
  ctx.manifest.transaction(() => {
    for (const e of entries) {
      if (e.kind !== 'file' || !lost.includes(e.digest!)) continue;
      ctx.manifest.setStat(e.path, null);
      ctx.log.warn({ path: e.path, digest: e.digest }, 'a blob of a stored segment is gone and no file holds it; the record stays wanted on peers until the version on disk now supersedes it');
    }
  });
  return true;
}

/**
 * Stores every blob the records name that is not noted as stored within gc_grace / 2,
 * reading it from one of the paths that should hold it. Returns the digests that no path
 * holds any more and the store does not have (fresh enough).
 */
async function uploadNeeded(ctx: SetContext, entries: Entry[]): Promise<string[]> {
  const sources = new Map<string, { size: number; paths: string[] }>();
  for (const entry of entries) {
    if (entry.kind !== 'file' || !needsUpload(ctx, entry.digest!)) continue;
    const s = sources.get(entry.digest!) ?? { size: entry.size, paths: [] };
    s.paths.unshift(entry.path);
    sources.set(entry.digest!, s);
  }
  const lost: string[] = [];
  const progress = new Progress({ label: `${ctx.set.name}: upload` });
  progress.start(sources.size, [...sources.values()].reduce((n, s) => n + s.size, 0));
  try {
    await mapLimit([...sources], UPLOADS_IN_FLIGHT, async ([digest, { size, paths }]) => {
      for (const path of paths) {
        if (await uploadFrom(ctx, join(ctx.set.path, path), digest, size)) {
          ctx.manifest.addBlob(digest);
          ctx.stats.bytesUp += size;
          progress.tick(1, size);
          return;
        }
      }
      // A crash after an upload and before it was noted leaves the blob stored already. One
      // stored too long ago counts as missing: nothing here can store it again to refresh it.
      const found = await ctx.store.stat(ctx.blobKey(digest));
      if (!found || !noteStoredBlob(ctx, digest, found.lastModified)) lost.push(digest);
      progress.tick(1, 0);
    });
  } finally {
    progress.done();
  }
  return lost;
}

/** The outbox records of `path` queued after (seq, idx), in order. */
function queuedAfter(ctx: SetContext, seq: number, idx: number, path: string): Queued[] {
  const out: Queued[] = [];
  for (const { seq: s } of ctx.manifest.outboxSegments()) {
    if (s < seq) continue;
    for (const row of ctx.manifest.outboxRecords(s)) {
      if (s === seq && row.idx <= idx) continue;
      const entry = JSON.parse(row.record) as Entry;
      if (entry.path === path) out.push({ seq: s, idx: row.idx, entry });
    }
  }
  return out;
}

/** Whether the blob must be stored: not known stored, or stored long ago and so near collection. */
function needsUpload(ctx: SetContext, digest: string): boolean {
  return (ctx.manifest.blobStoredAt(digest) ?? 0) <= Date.now() - ctx.set.gcGrace / 2;
}

/**
 * Notes a blob found in the store with the date the store gave it (never later than now),
 * when that is recent enough to count as stored; false when it is not: collection may take it
 * before a segment naming it is seen, so it must be stored again (refreshed) first.
 */
function noteStoredBlob(ctx: SetContext, digest: string, at: Date): boolean {
  const now = Date.now();
  const storedAt = Math.min(at.getTime(), now);
  if (storedAt <= now - ctx.set.gcGrace / 2) return false;
  ctx.manifest.addBlob(digest, storedAt);
  return true;
}

/**
 * When many blobs are to be stored, learns which of them the store already has (another node
 * published the same content, or a run crashed after uploading) with one listing of
 * `blobs/` instead of a request per blob. One listing for all the unstored segments: listing
 * before each of them would make a first publish of N files (N/10,000 segments) cost a number
 * of requests growing with N². Only blobs young enough not to need a refresh count as stored.
 */
async function learnStoredBlobs(ctx: SetContext, unstored: { seq: number; count: number }[]): Promise<void> {
  // The usual cycle publishes a handful of records: not worth reading them twice.
  if (unstored.reduce((n, s) => n + s.count, 0) < LIST_BLOBS_ABOVE) return;
  const wanted = new Map<string, string>();
  for (const { seq } of unstored) {
    for (const r of ctx.manifest.outboxRecords(seq)) {
      const e = JSON.parse(r.record) as Entry;
      if (e.kind === 'file' && needsUpload(ctx, e.digest!)) wanted.set(ctx.blobKey(e.digest!), e.digest!);
    }
  }
  if (wanted.size < LIST_BLOBS_ABOVE) return;
  const found: [string, Date][] = [];
  for await (const o of ctx.store.list(BLOBS_PREFIX)) {
    const digest = wanted.get(o.key);
    if (digest) found.push([digest, o.lastModified]);
  }
  ctx.manifest.transaction(() => {
    for (const [digest, at] of found) noteStoredBlob(ctx, digest, at);
  });
}

/** Uploads the file as the blob if it still has that content; false when it does not. */
async function uploadFrom(ctx: SetContext, abs: string, digest: string, size: number): Promise<boolean> {
  const key = ctx.blobKey(digest);
  try {
    if (size <= SMALL_FILE) {
      const body = await readFile(abs);
      if (body.length !== size || createHash('sha256').update(body).digest('hex') !== digest) return false;
      await ctx.store.put(key, body);
      return true;
    }
    await ctx.store.putStream(
      key,
      () => {
        const v = new VerifyStream(digest, size, abs);
        pipeline(createReadStream(abs, { highWaterMark: LARGE_CHUNK }), v).catch(() => {});
        return v;
      },
      size,
    );
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof DigestMismatchError || code === 'ENOENT' || code === 'EISDIR') return false;
    if (err instanceof Error && err.cause instanceof DigestMismatchError) return false;
    throw err;
  }
}

/** Writes this node's head: the commit point of everything published, plus acks and heartbeat. */
export async function writeHead(ctx: SetContext, seq: number): Promise<void> {
  const acks: Record<string, number> = {};
  for (const p of ctx.manifest.peers()) acks[p.node] = p.cursor;
  const head: Head = {
    fedsync: 'head',
    v: 1,
    node: ctx.nodeId,
    name: ctx.nodeName,
    role: ctx.set.role,
    seq,
    hlc: ctx.clock.current,
    heartbeat: new Date().toISOString(),
    acks,
  };
  const etag = await putHead(ctx, encodeHead(head));
  // Durable: the next cycle compares the listed head with this ETag (DESIGN rule 6).
  ctx.manifest.durableTransaction(() => {
    ctx.manifest.setMeta(META.publishedSeq, seq);
    ctx.manifest.setMeta(META.headAt, Date.now());
    ctx.manifest.setMeta(META.headAcks, JSON.stringify(acks));
    ctx.manifest.setMeta(META.hlc, ctx.clock.current);
    ctx.manifest.setMeta(META.headEtag, etag);
    ctx.manifest.setMeta(META.headPending, '');
  });
}

/** A head write is due when acks moved or the heartbeat is old (publishing writes one anyway). */
export function headDue(ctx: SetContext): boolean {
  const at = metaNumber(ctx, META.headAt);
  if (at === 0 || Date.now() - at >= ctx.set.heartbeat) return true;
  const acks: Record<string, number> = {};
  for (const p of ctx.manifest.peers()) acks[p.node] = p.cursor;
  return JSON.stringify(acks) !== (ctx.manifest.getMeta(META.headAcks) ?? '{}');
}
