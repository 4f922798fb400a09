import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsutil/atomic.js';
import type { Manifest, Peer } from '../manifest/manifest.js';
import type { RequestCounts } from '../store/store.js';
import type { CycleStats } from './context.js';
import type { SkippedStatus } from './skipped.js';

export interface CycleRecord {
  startedAt: string;
  durationMs: number;
  ok: boolean;
  error: string | null;
  /** The max_delete rail refused deletions this cycle (FailureKinds); absent in old files. */
  railTripped?: boolean;
  /** The cycle failed because the store could not be reached or answered errors (FailureKinds); absent in old files. */
  storeUnreachable?: boolean;
  stats: CycleStats;
  requests: RequestCounts;
}

export interface PeerStatus {
  node: string;
  name: string;
  role: string;
  heartbeat: string | null;
  /** The peer's published seq, as its head last said. */
  seq: number;
  /** How far this node has applied its journal. */
  cursor: number;
  /** Segments published by the peer and not yet applied here. */
  lag: number;
  error: string | null;
}

/** `<state_dir>/<set>/status.json`: what `fedsync status` and monitoring read. */
export interface SetStatus {
  version: 1;
  set: string;
  mode: string;
  role: string;
  node: string;
  nodeId: string;
  root: string;
  store: string;
  publishedSeq: number;
  pending: number;
  lastCycle: CycleRecord | null;
  lastSuccess: string | null;
  peers: PeerStatus[];
  /** Records received and not applied here yet, retried (DESIGN rule 7); absent in old files. */
  wanted?: WantedStatus;
  /** Paths on this disk not published because receivers would refuse them (DESIGN rule 8); absent in old files. */
  skipped?: SkippedStatus;
  /** Conflict copies (`*.sync-conflict-*`) in the federation's state, not yet deleted; absent in old files. */
  conflictCopies?: number;
  /** Files the last scan left for later because they were still being written (DESIGN rule 1); absent in old files. */
  settling?: { count: number; paths: string[] };
  updatedAt: string;
}

/** How many settling paths status.json lists: enough to recognise them, not a file list. */
export const SETTLING_LISTED = 10;

export interface WantedStatus {
  count: number;
  /** When the oldest of them became wanted. */
  oldestSince: string | null;
}

export function wantedStatus(m: Manifest): WantedStatus {
  const w = m.wantedSummary();
  return { count: w.count, oldestSince: w.oldestSince === null ? null : new Date(w.oldestSince).toISOString() };
}

export function statusPath(stateDir: string, set: string): string {
  return join(stateDir, set, 'status.json');
}

export function peerStatus(p: Peer): PeerStatus {
  return {
    node: p.node,
    name: p.name,
    role: p.role,
    heartbeat: p.heartbeat,
    seq: p.headSeq,
    cursor: p.cursor,
    lag: Math.max(0, p.headSeq - p.cursor),
    error: p.error,
  };
}

export function readStatus(stateDir: string, set: string): SetStatus | null {
  try {
    return JSON.parse(readFileSync(statusPath(stateDir, set), 'utf8')) as SetStatus;
  } catch {
    return null;
  }
}

/**
 * Written to a temp file and renamed, so a reader never sees half a status; a failed write
 * leaves the old file and no temp file, and throws an error naming status.json.
 */
export function writeStatus(stateDir: string, status: SetStatus): void {
  writeFileAtomic(statusPath(stateDir, status.set), JSON.stringify(status, null, 2) + '\n', 0o600, 0o700);
}
