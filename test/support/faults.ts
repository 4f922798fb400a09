// Random store faults for the fault proxy (proxy.ts), at a given rate, decided by a hash of
// the seed and the request (method, key with node ids replaced by stable names, and how many
// times that request was seen), not by arrival order: the same seed faults the same requests
// even when a node's uploads run concurrently and interleave differently.
import { createHash } from 'node:crypto';
import type { Fault, FaultHook, ProxyRequest } from './proxy.js';

export type FaultKind = 'error500' | 'error503' | 'reset' | 'slow' | 'truncate';
export type FaultCounts = Record<FaultKind | 'total', number>;

export interface RandomFaults {
  hook: FaultHook;
  counts: FaultCounts;
}

/** A number in [0, 1) from the hash of `parts`. */
function unit(parts: (string | number)[], salt: number): number {
  const h = createHash('sha256').update(`${salt}\0${parts.join('\0')}`).digest();
  return h.readUInt32LE(0) / 4294967296;
}

/**
 * A fault hook failing about `rate` of requests with one of: 500 InternalError, 503 SlowDown,
 * a connection reset (before forwarding, or after the store acted), a slow response, or (GET
 * only) a body cut short. `stable(key)` makes a key independent of random ids.
 */
export function randomFaults(seed: number, rate: number, stable: (key: string) => string = (k) => k): RandomFaults {
  const counts: FaultCounts = { error500: 0, error503: 0, reset: 0, slow: 0, truncate: 0, total: 0 };
  const seen = new Map<string, number>();
  const hook = (req: ProxyRequest): Fault | undefined => {
    const id = `${req.method} ${req.kind} ${stable(req.key ?? '')} ${JSON.stringify(req.query)}`;
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    if (unit([id, n], seed) >= rate) return undefined;
    const pick = unit([id, n], seed ^ 0x5bd1e995);
    const count = (k: FaultKind) => {
      counts[k]++;
      counts.total++;
    };
    if (pick < 0.25) {
      count('error500');
      return { action: 'error', status: 500 };
    }
    if (pick < 0.5) {
      count('error503');
      return { action: 'error', status: 503 };
    }
    if (pick < 0.7) {
      count('reset');
      return { action: 'reset', when: pick < 0.6 ? 'request' : 'response' };
    }
    if (pick < 0.85 || req.method !== 'GET') {
      count('slow');
      return { action: 'pass', delayMs: 100 + Math.floor(pick * 400) };
    }
    count('truncate');
    return { action: 'truncate', bytes: Math.floor(pick * 64) };
  };
  return { hook, counts };
}
