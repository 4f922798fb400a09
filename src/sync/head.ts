import { isHlc, type Hlc } from './hlc.js';
import { isNodeId } from './ids.js';

/** `heads/<node>.json`: the only mutable object a node writes, and its commit point. */
export interface Head {
  fedsync: 'head';
  v: 1;
  node: string;
  name: string;
  role: string;
  /** The last journal segment published; readers fetch nothing beyond it. */
  seq: number;
  hlc: Hlc;
  /** ISO time of the write, for liveness. */
  heartbeat: string;
  /** For each peer, the last of its segments this node has consumed. */
  acks: Record<string, number>;
}

export function encodeHead(h: Head): Buffer {
  return Buffer.from(JSON.stringify(h));
}

/** Parses and validates a head; throws with the reason. */
export function decodeHead(body: Buffer, node: string): Head {
  let h: Partial<Head>;
  try {
    h = JSON.parse(body.toString('utf8')) as Partial<Head>;
  } catch {
    throw new Error(`head of ${node} is not valid JSON`);
  }
  if (typeof h !== 'object' || h === null || h.fedsync !== 'head' || h.v !== 1) throw new Error(`head of ${node} is not a fedsync head`);
  if (h.node !== node) throw new Error(`head of ${node} claims to belong to ${String(h.node)}`);
  if (typeof h.seq !== 'number' || !Number.isSafeInteger(h.seq) || h.seq < 0) throw new Error(`head of ${node} has an invalid seq`);
  if (!isHlc(h.hlc)) throw new Error(`head of ${node} has an invalid hlc`);
  if (typeof h.heartbeat !== 'string' || Number.isNaN(Date.parse(h.heartbeat))) throw new Error(`head of ${node} has an invalid heartbeat`);
  const acks: Record<string, number> = {};
  if (typeof h.acks === 'object' && h.acks !== null) {
    for (const [k, v] of Object.entries(h.acks)) {
      if (isNodeId(k) && typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) acks[k] = v;
    }
  }
  return {
    fedsync: 'head',
    v: 1,
    node,
    name: typeof h.name === 'string' ? h.name.slice(0, 255) : '',
    role: typeof h.role === 'string' ? h.role.slice(0, 32) : 'both',
    seq: h.seq,
    hlc: h.hlc,
    heartbeat: h.heartbeat,
    acks,
  };
}
