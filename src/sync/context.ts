import type { Logger } from 'pino';
import type { SetConfig } from '../config/types.js';
import type { Manifest } from '../manifest/manifest.js';
import type { Store } from '../store/store.js';
import type { ChangedPaths } from './changed.js';
import type { Clock } from './hlc.js';

/** What every step of the protocol works with, for one sync set on this node. */
export interface SetContext {
  set: SetConfig;
  /** This node's id in the set, and its display name. */
  nodeId: string;
  nodeName: string;
  store: Store;
  manifest: Manifest;
  clock: Clock;
  log: Logger;
  /** The store key of a content digest (an HMAC of it when the store is encrypted). */
  blobKey: (digest: string) => string;
  /** True for paths (relative, `/`-separated) that the set's `exclude` keeps out. */
  excluded: (rel: string, isDir: boolean) => boolean;
  stats: CycleStats;
  /** Where this cycle lists the paths it changed on disk from other nodes' records (for `on_apply`). */
  changed?: ChangedPaths;
}

/** What one cycle did, for the log line, status.json and metrics. */
export interface CycleStats {
  scanned: number;
  hashed: number;
  published: number;
  applied: number;
  deleted: number;
  conflicts: number;
  rejected: number;
  bytesUp: number;
  bytesDown: number;
  settling: number;
}

export function newCycleStats(): CycleStats {
  return { scanned: 0, hashed: 0, published: 0, applied: 0, deleted: 0, conflicts: 0, rejected: 0, bytesUp: 0, bytesDown: 0, settling: 0 };
}

/** An error that says which step of the protocol failed. */
export class StepError extends Error {
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    super(`${step}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StepError';
  }
}

/** Runs one named step, wrapping whatever it throws with the step's name. */
export async function step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // A refusal stays what it is, so callers can tell it from a failure wherever it arose.
    if (err instanceof StepError || err instanceof SafetyError) throw err;
    throw new StepError(name, err);
  }
}

/** A refusal the user can override or must fix (unmounted root, mass deletion). */
export class SafetyError extends Error {
  override name = 'SafetyError';
}
