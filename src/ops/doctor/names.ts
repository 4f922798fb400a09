import { escapePath, escapeText } from '../../log/escape.js';
import { readStatus } from '../../sync/status.js';
import { ok, skip, warn, type CheckResult } from './check.js';

/**
 * Paths the last cycle did not publish because the other nodes would refuse them (DESIGN
 * rule 8): the set works, but those files exist on this node only.
 */
export function skippedPaths(stateDir: string, set: string): CheckResult {
  const s = readStatus(stateDir, set);
  if (!s?.lastCycle) return skip('no cycle has run yet');
  const n = s.skipped?.count ?? 0;
  if (n === 0) return ok('every path on disk can be published');
  const first = s.skipped!.paths[0];
  const example = first ? ` (first: ${escapePath(first.path)}: ${escapeText(first.reason)})` : '';
  return warn(`${n} path${n === 1 ? '' : 's'} on this disk ${n === 1 ? 'is' : 'are'} not published: the other nodes would refuse ${n === 1 ? 'it' : 'them'}${example}`, 'rename or remove them; `fedsync status` lists them all');
}
