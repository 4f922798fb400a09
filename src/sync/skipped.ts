import { noteSkipped, skippedSummary } from '../manifest/skipped.js';
import type { Manifest } from '../manifest/manifest.js';
import type { SetContext } from './context.js';
import type { ScanResult } from './scan.js';

/** How many skipped paths status.json lists by name (the count is always whole). */
const LISTED = 50;

/**
 * Keeps the list of paths a scan did not publish (DESIGN rule 8) and warns about each one
 * the first time it is found, not every cycle: the list itself is in `status`.
 */
export function reportSkipped(ctx: SetContext, scan: Pick<ScanResult, 'skipped' | 'roots'>): void {
  for (const s of noteSkipped(ctx.manifest, scan.skipped, scan.roots)) {
    ctx.log.warn({ path: s.path, reason: s.reason }, 'not publishing a path other nodes would refuse');
  }
}

export interface SkippedStatus {
  count: number;
  /** The first of them in path order, with why and since when. */
  paths: { path: string; reason: string; since: string }[];
}

export function skippedStatus(m: Manifest): SkippedStatus {
  const s = skippedSummary(m, LISTED);
  return { count: s.count, paths: s.paths.map((p) => ({ path: p.path, reason: p.reason, since: new Date(p.since).toISOString() })) };
}
