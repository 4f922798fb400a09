/**
 * Running totals per set, kept in `<state_dir>/<set>/counters.json` beside status.json. cron
 * starts one process a minute, so a Prometheus counter has to live on disk to keep counting.
 * Only the process holding the set's lock updates it (the cycle calls in under the lock).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { newRequestCounts, type RequestCounts } from '../store/store.js';
import type { CycleStats } from '../sync/context.js';
import type { PeerStatus, SetStatus } from '../sync/status.js';
import { writeFileAtomic } from './atomic.js';

/** The cycle stats that add up across cycles. */
const TOTALS = ['published', 'applied', 'deleted', 'conflicts', 'rejected', 'bytesUp', 'bytesDown'] as const;
type Totals = Pick<CycleStats, (typeof TOTALS)[number]>;

export interface Counters extends Totals {
  version: 1;
  set: string;
  /** When counting began (a missing or unreadable file starts again from zero). */
  since: string;
  /** `startedAt` of the last cycle counted, so counting the same cycle twice is a no-op. */
  counted: string | null;
  cycles: number;
  failures: number;
  requests: RequestCounts;
  /** Per peer id: when a cycle last ended with nothing of that peer left to apply. */
  caughtUp: Record<string, string>;
  /** The last failed cycle, kept after later cycles succeed (a flapping set shows here). */
  lastError: { at: string; message: string } | null;
}

export function countersPath(stateDir: string, set: string): string {
  return join(stateDir, set, 'counters.json');
}

export function newCounters(set: string, now = new Date()): Counters {
  return {
    version: 1,
    set,
    since: now.toISOString(),
    counted: null,
    cycles: 0,
    failures: 0,
    ...(Object.fromEntries(TOTALS.map((k) => [k, 0])) as Totals),
    requests: newRequestCounts(),
    caughtUp: {},
    lastError: null,
  };
}

/** The set's counters, or null when none were written yet (or the file is damaged). */
export function readCounters(stateDir: string, set: string): Counters | null {
  try {
    const c = JSON.parse(readFileSync(countersPath(stateDir, set), 'utf8')) as Counters;
    return c?.version === 1 ? { ...newCounters(set), ...c, requests: { ...newRequestCounts(), ...c.requests } } : null;
  } catch {
    return null;
  }
}

export function writeCounters(stateDir: string, c: Counters): void {
  writeFileAtomic(countersPath(stateDir, c.set), JSON.stringify(c, null, 2) + '\n', 0o600);
}

/** Adds the last cycle of `status` to `c` (unless it was counted already) and notes who we caught up with. */
export function addCycle(c: Counters, status: SetStatus): Counters {
  const cycle = status.lastCycle;
  if (!cycle || cycle.startedAt === c.counted) return c;
  const totals = {} as Totals;
  for (const k of TOTALS) totals[k] = c[k] + cycle.stats[k];
  const requests = { ...c.requests };
  for (const [k, v] of Object.entries(cycle.requests) as [keyof RequestCounts, number][]) requests[k] = (requests[k] ?? 0) + v;
  const caughtUp = { ...c.caughtUp };
  for (const p of status.peers) {
    // A peer seen for the first time with a backlog counts its lag from now.
    if (p.lag === 0 || !caughtUp[p.node]) caughtUp[p.node] = status.updatedAt;
  }
  return {
    ...c,
    counted: cycle.startedAt,
    cycles: c.cycles + 1,
    failures: c.failures + (cycle.ok ? 0 : 1),
    ...totals,
    requests,
    caughtUp,
    lastError: cycle.ok ? c.lastError : { at: cycle.startedAt, message: cycle.error ?? 'unknown error' },
  };
}

/** How long this node has been behind the peer, in seconds (0 when caught up). */
export function peerLagSeconds(c: Counters | null, p: PeerStatus, now = Date.now()): number {
  if (p.lag === 0) return 0;
  const since = c?.caughtUp[p.node];
  return since ? Math.max(0, Math.round((now - Date.parse(since)) / 1000)) : 0;
}
