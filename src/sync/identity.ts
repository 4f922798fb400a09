import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Manifest } from '../manifest/manifest.js';
import type { ObjectInfo } from '../store/store.js';
import type { SetContext } from './context.js';
import { newNodeId } from './ids.js';
import { headKey } from './layout.js';
import { decodeHead } from './head.js';
import { META } from './outbox.js';
import { recordJson, type Entry } from './record.js';
import { sortVV } from './vv.js';

/** Manifest meta keys of the node's identity. */
export const NODE_META = { id: 'node_id', machine: 'machine_id', host: 'hostname', created: 'created', former: 'former_ids', heirOf: 'heir_of' } as const;

/**
 * The former ids this node is the heir of: ids it gave up because its own state went back in
 * time (a VM snapshot, a restored backup), not because a clone took them. What such an id
 * published and this disk lost is nobody else's to keep: a version of it that loses a
 * conflict is kept here as a conflict copy (DESIGN rule 3), from the store if need be.
 */
export function heirOf(m: Manifest): Set<string> {
  try {
    return new Set(JSON.parse(m.getMeta(NODE_META.heirOf) ?? '[]') as string[]);
  } catch {
    return new Set();
  }
}

/**
 * Thrown where a write finds that another writer used this node's id (a head that is not the
 * one this node wrote, a segment seq taken with other bytes). The node has already taken a
 * new id when this is thrown: the caller publishes again, under it.
 */
export class IdentityTakenError extends Error {
  override name = 'IdentityTakenError';
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * DESIGN rule 6, from the heads listing every cycle makes anyway: this node's own head must
 * be the one it wrote last (the ETag its last head write returned). A head it did not write
 * last means its state went back in time (a VM snapshot, a restored backup, a lost fsync) or
 * a clone of its disk runs under the same id; both get the same answer, a new id. Costs no
 * request unless the answer of the last head write was lost (a crash between the write and
 * its bookkeeping), or the manifest predates the ETag bookkeeping: then one GET of the head.
 */
export async function checkOwnHead(ctx: SetContext, own: ObjectInfo | undefined, dryRun = false): Promise<void> {
  const m = ctx.manifest;
  const known = m.getMeta(META.headEtag) ?? '';
  const pending = m.getMeta(META.headPending) ?? '';
  if (!own) {
    // Nothing to compare with (a store emptied by hand, or no head written yet): the next
    // head write creates it.
    if (known && !dryRun) m.setMeta(META.headEtag, '');
    return;
  }
  if (own.etag === known) return;
  const published = Number(m.getMeta(META.publishedSeq) ?? 0);
  if (pending || !known) {
    const body = await ctx.store.get(headKey(ctx.nodeId));
    if (!body) return;
    // Our own write whose answer never came back (its digest was committed before it).
    let mine = pending !== '' && sha256Hex(body) === pending;
    if (!mine && !known && !pending) {
      // A manifest from before ETags were kept: a head not ahead of what it published is taken as its own.
      try {
        mine = decodeHead(body, ctx.nodeId).seq <= published;
      } catch {
        mine = false;
      }
    }
    if (mine && dryRun) return;
    if (mine) {
      m.durableTransaction(() => {
        m.setMeta(META.headEtag, own.etag);
        m.setMeta(META.headPending, '');
      });
      return;
    }
  }
  if (dryRun) {
    ctx.log.error({ etag: own.etag, expected: known || null }, 'its own head in the store is not the one it wrote last: the next run takes a new id');
    return;
  }
  // Written under this node's own name: this state went back in time (a clone runs under
  // another name, and keeps the versions the old id wrote on its own disk).
  const heir = (await headName(ctx)) === ctx.nodeName;
  const old = ctx.nodeId;
  takeNewId(ctx, 'its own head in the store is not the one it wrote last', { etag: own.etag, expected: known || null, publishedSeq: published });
  if (heir) m.durableTransaction(() => m.setMeta(NODE_META.heirOf, JSON.stringify([...heirOf(m), old])));
}

/** The node name in this node's own head in the store (null: none, or unreadable). */
async function headName(ctx: SetContext): Promise<string | null> {
  try {
    const body = await ctx.store.get(headKey(ctx.nodeId));
    return body ? decodeHead(body, ctx.nodeId).name : null;
  } catch {
    return null;
  }
}

/**
 * Gives the context's node a new id (see retireId) and says so loudly. The old id becomes a
 * peer, read from what this node's manifest says it published on: the segments the old id
 * published beyond that (before a rollback, or by the clone) come back as any peer's do.
 */
export function takeNewId(ctx: SetContext, reason: string, detail: Record<string, unknown> = {}): string {
  const old = ctx.nodeId;
  const id = retireId(ctx.manifest, old, ctx.nodeName);
  ctx.nodeId = id;
  logNewId(ctx.log, old, id, reason, detail);
  return id;
}

export function logNewId(log: Logger, old: string, id: string, reason: string, detail: Record<string, unknown>): void {
  log.error(
    { ...detail, old, new: id },
    `${reason}: this node's state was rolled back (VM snapshot, restored backup, lost write) or its disk was cloned; ` +
      `it takes a new id ${id}, reads ${old} as a peer and republishes its unpublished changes under the new id`,
  );
}

/**
 * In one durable manifest transaction: a new id for this node, the old id a peer whose
 * cursor is the last seq this manifest knows it published, and every unpublished change
 * (the outbox) moved to the new id, renumbered from segment 1. Returns the new id.
 *
 * A queued record's vector counted its change under the old id; another machine may still
 * count under that id (a clone), and the same counter there means another version. So the
 * change moves to the new id's counter and its old-id counter goes back to the version it was
 * made on (one less): it stays newer than what the old id published before, and concurrent
 * with what the old id publishes after, which the conflict rules then keep both of.
 */
export function retireId(m: Manifest, old: string, name: string, also: () => void = () => {}): string {
  const id = newNodeId();
  m.durableTransaction(() => {
    const published = Number(m.getMeta(META.publishedSeq) ?? 0);
    const existing = m.peers().find((p) => p.node === old);
    if (!existing) m.putPeer({ node: old, name, role: '', cursor: published, headEtag: null, headSeq: published, heartbeat: null, error: null });
    const forced = Number(m.getMeta(META.forcedSeq) ?? 0);
    let newForced = 0;
    const base = new Map<string, number>();
    const count = new Map<string, number>();
    const segments = m.outboxSegments().map(({ seq }) => ({ seq, rows: m.outboxRecords(seq).map((r) => JSON.parse(r.record) as Entry) }));
    m.clearOutboxThrough(Number.MAX_SAFE_INTEGER);
    segments.forEach(({ seq, rows }, i) => {
      const moved = rows.map((r) => {
        if (r.author !== old) return recordJson(r);
        if (!base.has(r.path)) base.set(r.path, (r.vv[old] ?? 1) - 1);
        const n = (count.get(r.path) ?? 0) + 1;
        count.set(r.path, n);
        const vv = { ...r.vv, [id]: n };
        const b = base.get(r.path)!;
        if (b > 0) vv[old] = b;
        else delete vv[old];
        const e: Entry = { ...r, vv: sortVV(vv), author: id };
        const local = m.getEntry(r.path);
        if (local && local.author === old && local.hlc === r.hlc) m.putEntry({ ...local, vv: e.vv, author: id }, local.stat);
        return recordJson(e);
      });
      m.addToOutbox(i + 1, moved);
      if (seq <= forced) newForced = i + 1;
    });
    m.setMeta(META.forcedSeq, newForced);
    for (const k of [META.publishedSeq, META.storedSeq, META.reservedSeq, META.headAt]) m.setMeta(k, 0);
    for (const k of [META.headAcks, META.headEtag, META.headPending, META.reservedBody]) m.setMeta(k, '');
    const former = JSON.parse(m.getMeta(NODE_META.former) ?? '[]') as string[];
    m.setMeta(NODE_META.former, JSON.stringify([...former, old]));
    m.setMeta(NODE_META.id, id);
    also();
  });
  return id;
}
