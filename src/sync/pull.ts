import { IntegrityError } from '../fsutil/hash.js';
import type { Peer } from '../manifest/manifest.js';
import { mapLimit } from '../util/pool.js';
import type { SetContext } from './context.js';
import { checkFormatInForce } from './format.js';
import { decodeHead, type Head } from './head.js';
import { checkOwnHead } from './identity.js';
import type { ObjectInfo } from '../store/store.js';
import { HEADS_PREFIX, headNode, JOURNAL_PREFIX, segmentKey } from './layout.js';
import type { Entry } from './record.js';
import { decodeSegment } from './segment.js';

const SEGMENTS_IN_FLIGHT = 4;
const MAX_SEGMENTS_PER_CYCLE = 256;

/** What was fetched from one peer this cycle. */
export interface PeerBatch {
  peer: Peer;
  head: Head;
  etag: string;
  /** Records of the new segments, in journal order. */
  records: Entry[];
  /** The last segment fetched and accepted; the cursor moves here once they are applied. */
  through: number;
  /** False when a malformed segment stopped this peer's stream short of its head. */
  complete: boolean;
  /**
   * The next segment this node needs was pruned by housekeeping: the node was away longer
   * than the journals are kept and must start from a snapshot.
   */
  gap: boolean;
  /** With `gap`: the first segment of the peer's journal still kept. */
  firstKept?: number;
  /** Paths deleted by segments their author published with --force. */
  forced?: Set<string>;
}

/**
 * One LIST of `heads/` says which peers moved (their ETags); only those heads are fetched,
 * and only the segments after this node's cursor. An idle cycle is exactly that one LIST.
 * The same listing shows this node's own head, checked against the one it wrote last (DESIGN
 * rule 6, identity.ts); when the node takes a new id there, the old id is read as a peer
 * in this same cycle. A peer whose head or segment is malformed is stopped with a logged
 * error; the others go on.
 */
export async function fetchPeers(ctx: SetContext, opts: { dryRun?: boolean; from?: Record<string, number> } = {}): Promise<PeerBatch[]> {
  const heads: { node: string; etag: string; info: ObjectInfo }[] = [];
  for await (const obj of ctx.store.list(HEADS_PREFIX)) {
    const node = headNode(obj.key);
    if (node) heads.push({ node, etag: obj.etag, info: obj });
  }
  await checkOwnHead(ctx, heads.find((h) => h.node === ctx.nodeId)?.info, opts.dryRun);
  const known = new Map(ctx.manifest.peers().map((p) => [p.node, p]));
  const moved: { node: string; etag: string }[] = [];
  for (const { node, etag } of heads) {
    if (node === ctx.nodeId) continue;
    if (known.get(node)?.headEtag !== etag) moved.push({ node, etag });
  }
  // `from`: a snapshot's cursors, whose state stands for every segment up to them.
  const start = (p: Peer): Peer => ({ ...p, cursor: Math.max(p.cursor, opts.from?.[p.node] ?? 0) });
  const batches = await mapLimit(moved, SEGMENTS_IN_FLIGHT, (m) => fetchPeer(ctx, start(known.get(m.node) ?? newPeer(m.node)), m.etag));
  return batches.filter((b): b is PeerBatch => b !== null);
}

function newPeer(node: string): Peer {
  return { node, name: '', role: '', cursor: 0, headEtag: null, headSeq: 0, heartbeat: null, error: null };
}

async function fetchPeer(ctx: SetContext, peer: Peer, etag: string): Promise<PeerBatch | null> {
  let body: Buffer | null;
  try {
    body = await ctx.store.get(`${HEADS_PREFIX}${peer.node}.json`);
  } catch (err) {
    // An encrypted head that fails authentication is as bad as one that does not parse,
    // unless this node's own format is the odd one out (then it stops here, loudly).
    if (!(err instanceof IntegrityError)) throw err;
    await checkFormatInForce(ctx);
    reject(ctx, peer, err.message);
    return null;
  }
  if (!body) return null; // removed between LIST and GET: nothing to do this cycle
  let head: Head;
  try {
    head = decodeHead(body, peer.node);
  } catch (err) {
    // A plain node reading a sealed head (or the reverse) sees only a head that does not parse.
    await checkFormatInForce(ctx);
    reject(ctx, peer, (err as Error).message);
    return null;
  }
  const updated: Peer = { ...peer, name: head.name, role: head.role, headSeq: head.seq, heartbeat: head.heartbeat };
  if (head.seq < peer.cursor) {
    reject(ctx, updated, `head of ${peer.node} went back from seq ${peer.cursor} to ${head.seq}; ignoring it`);
    return null;
  }
  // At most MAX_SEGMENTS_PER_CYCLE: a head may announce any seq (2^53), and a node far behind
  // should not hold thousands of segments in memory at once. The rest comes next cycle.
  const last = Math.min(head.seq, peer.cursor + MAX_SEGMENTS_PER_CYCLE);
  const seqs: number[] = [];
  for (let s = peer.cursor + 1; s <= last; s++) seqs.push(s);
  const bodies = await mapLimit(seqs, SEGMENTS_IN_FLIGHT, async (s): Promise<Buffer | null | Error> => {
    try {
      return await ctx.store.get(segmentKey(peer.node, s));
    } catch (err) {
      if (err instanceof IntegrityError) return err;
      throw err;
    }
  });
  const records: Entry[] = [];
  let through = peer.cursor;
  let error: string | null = null;
  const forced = new Set<string>();
  for (const [i, seq] of seqs.entries()) {
    const seg = bodies[i];
    const firstKept = !seg && i === 0 ? await firstKeptSegment(ctx, peer.node) : 0;
    if (firstKept > seq) {
      ctx.log.info({ peer: head.name || peer.node, cursor: peer.cursor }, 'journal pruned past this node\'s cursor; catching up from a snapshot');
      // A journal pruned to nothing starts, in effect, after the head's seq.
      return { peer: updated, head, etag, records: [], through: peer.cursor, complete: false, gap: true, firstKept: Math.min(firstKept, head.seq + 1) };
    }
    try {
      if (seg instanceof Error) throw seg;
      if (!seg) throw new Error(`segment ${peer.node}/${seq} is announced by its head but missing from the store`);
      const decoded = decodeSegment(seg, peer.node, seq, { allowExternalSymlinks: ctx.set.allowExternalSymlinks });
      for (const r of decoded.rejected) {
        if (!firstReport(ctx, `${peer.node}/${seq}/${r.line}`)) continue;
        ctx.stats.rejected++;
        ctx.log.error({ peer: head.name || peer.node, seq, line: r.line, reason: r.reason }, 'rejected a remote record');
      }
      records.push(...decoded.records);
      if (decoded.forced) for (const r of decoded.records) if (r.kind === 'deleted') forced.add(r.path);
      through = seq;
    } catch (err) {
      if (seg) await checkFormatInForce(ctx);
      error = (err as Error).message;
      reject(ctx, updated, error);
      break;
    }
  }
  return { peer: { ...updated, error }, head, etag, records, through, complete: error === null && through === head.seq, gap: false, forced };
}

/** The lowest seq still kept in a node's journal (Infinity when it has none). */
async function firstKeptSegment(ctx: SetContext, node: string): Promise<number> {
  for await (const o of ctx.store.list(`${JOURNAL_PREFIX}${node}/`)) {
    const seq = Number(o.key.slice(o.key.lastIndexOf('/') + 1));
    if (Number.isSafeInteger(seq)) return seq;
  }
  return Infinity;
}

function reject(ctx: SetContext, peer: Peer, message: string): void {
  if (firstReport(ctx, `${peer.node}\0${message}`)) {
    ctx.stats.rejected++;
    ctx.log.error({ peer: peer.name || peer.node }, `${message}; this peer's updates are paused until it is fixed`);
  }
  ctx.manifest.putPeer({ ...peer, error: message });
}

/** A cycle may fetch a peer twice (again after catching up from a snapshot): report once. */
const reported = new WeakMap<object, Set<string>>();
function firstReport(ctx: SetContext, what: string): boolean {
  let seen = reported.get(ctx.stats);
  if (!seen) reported.set(ctx.stats, (seen = new Set()));
  if (seen.has(what)) return false;
  seen.add(what);
  return true;
}
