import { IntegrityError } from '../fsutil/hash.js';
import { PreconditionFailedError } from '../store/errors.js';
import type { PutOptions } from '../store/store.js';
import type { SetContext } from './context.js';
import { IdentityTakenError, sha256Hex, takeNewId } from './identity.js';
import { HEADS_PREFIX, headKey, headNode, segmentKey } from './layout.js';
import { META } from './outbox.js';
import { checkOwnHead } from './identity.js';

/**
 * The writes only this node makes (its journal segments and its head), with the checks of
 * DESIGN rule 6. Conditional writes are a second line where the store honours them: whether
 * it does is learnt once, by the first head write, and kept in the manifest, so it costs no
 * request per cycle.
 */

/** An ETag no object has: a store that honours If-Match refuses a write conditioned on it. */
const PROBE_ETAG = 'fedsync-probe-no-object-has-this-etag';

/** The node ids (per manifest) whose next free seq this process has confirmed. */
const confirmed = new WeakMap<object, Set<string>>();

function honoured(ctx: SetContext): boolean {
  return ctx.manifest.getMeta(META.conditional) === 'yes';
}

/**
 * Stores segment `seq` of this node's journal (write-once). Where conditional writes are
 * honoured every segment is written with If-None-Match; elsewhere the first upload of a
 * process is preceded by a HEAD, since a segment uploaded but never announced (by a state
 * since rolled back, or by a clone) is invisible in the heads listing. A segment found
 * stored is read back: our own earlier attempt (the same bytes) is fine; other bytes mean
 * another writer uses this id, and the node takes a new one (IdentityTakenError).
 */
export async function putSegment(ctx: SetContext, seq: number, body: Buffer): Promise<void> {
  const key = segmentKey(ctx.nodeId, seq);
  const cond = honoured(ctx);
  let ids = confirmed.get(ctx.manifest);
  if (!ids) confirmed.set(ctx.manifest, (ids = new Set()));
  if (!cond && !ids.has(ctx.nodeId)) {
    const found = await ctx.store.stat(key);
    ids.add(ctx.nodeId);
    if (found) return sameOrTakeOver(ctx, seq, body);
  }
  ids.add(ctx.nodeId);
  try {
    await ctx.store.put(key, body, cond ? { ifNoneMatch: true } : undefined);
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
    await sameOrTakeOver(ctx, seq, body);
  }
}

async function sameOrTakeOver(ctx: SetContext, seq: number, body: Buffer): Promise<void> {
  const key = segmentKey(ctx.nodeId, seq);
  let stored: Buffer | null;
  try {
    stored = await ctx.store.get(key);
  } catch (err) {
    // Not even readable (not sealed with this federation's key, cut short): not this node's
    // bytes either, so the id is given up like for any other writer's.
    if (!(err instanceof IntegrityError)) throw err;
    stored = null;
  }
  // Gone again (pruned, or the HEAD raced a delete): never ours to rewrite blindly, so as taken.
  if (stored && stored.equals(body)) {
    ctx.log.info({ seq }, 'segment already stored by an earlier attempt of this node');
    return;
  }
  takeNewId(ctx, `segment ${seq} of this node's journal is already stored with other bytes`, { key });
  throw new IdentityTakenError(`segment ${key} was written by another writer; this node took a new id`);
}

/**
 * Writes this node's head and returns its ETag. The digest of the body is committed first
 * (durably), so that a write whose answer is lost is recognised as this node's own by the
 * next check. Where the store honours conditions the write is conditioned on the ETag of the
 * head this node wrote last (If-Match), or on there being none (If-None-Match); a refusal
 * means another writer uses this id: the node takes a new one (IdentityTakenError).
 */
export async function putHead(ctx: SetContext, body: Buffer): Promise<string> {
  const m = ctx.manifest;
  const key = headKey(ctx.nodeId);
  m.durableTransaction(() => m.setMeta(META.headPending, sha256Hex(body)));
  if (m.getMeta(META.conditional) === undefined) {
    // Learnt once: a store that ignores the condition writes the head (which was due anyway).
    try {
      const { etag } = await ctx.store.put(key, body, { ifMatch: PROBE_ETAG });
      m.setMeta(META.conditional, 'no');
      ctx.log.info('the store ignores conditional writes: a HEAD confirms the next segment is free before the first upload of each run');
      return etag;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      m.setMeta(META.conditional, 'yes');
    }
  }
  const last = m.getMeta(META.headEtag) ?? '';
  const opts: PutOptions | undefined = honoured(ctx) ? (last ? { ifMatch: last } : { ifNoneMatch: true }) : undefined;
  try {
    return (await ctx.store.put(key, body, opts)).etag;
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
    takeNewId(ctx, 'its own head in the store was changed by another writer', { expected: last || null });
    throw new IdentityTakenError(`head ${key} was written by another writer; this node took a new id`);
  }
}

/** The own-head check (identity.ts) for a node that lists heads/ for nothing else (role `publish`). */
export async function checkIdentity(ctx: SetContext): Promise<void> {
  for await (const obj of ctx.store.list(HEADS_PREFIX)) {
    if (headNode(obj.key) === ctx.nodeId) return checkOwnHead(ctx, obj);
  }
  return checkOwnHead(ctx, undefined);
}
