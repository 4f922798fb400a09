import { mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SetContext } from './context.js';
import type { Decision } from './plan.js';
import { MARKER_DIR } from './record.js';
import { receiveApply } from './receive-apply.js';
import type { ScanResult } from './scan.js';

/**
 * `role = "subscribe"`: the node mirrors the federation, so a local change is drift. Each
 * drifted path's content is moved to `<root>/.fedsync/drift/<time>/<path>` (kept, never
 * synced: nothing is lost) and the federation's state is put back, with a log line per path.
 */
export async function revertDrift(ctx: SetContext, scan: ScanResult): Promise<void> {
  if (scan.changes.length === 0) return;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const keep = join(ctx.set.path, MARKER_DIR, 'drift', stamp);
  const decisions: Decision[] = [];
  for (const c of scan.changes) {
    const fed = ctx.manifest.getEntry(c.entry.path);
    const modeOnly = c.entry.kind === 'dir' && fed?.kind === 'dir';
    if (c.entry.kind !== 'deleted' && !modeOnly) {
      try {
        mkdirSync(dirname(join(keep, c.entry.path)), { recursive: true, mode: 0o700 });
        renameSync(join(ctx.set.path, c.entry.path), join(keep, c.entry.path));
      } catch (err) {
        // Already moved with a drifted parent directory.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      ctx.log.warn({ path: c.entry.path, kept: join(keep, c.entry.path) }, 'local change on a subscriber reverted; the changed content is kept');
    } else if (!modeOnly) {
      ctx.log.warn({ path: c.entry.path }, 'local deletion on a subscriber reverted');
    }
    if (fed && fed.kind !== 'deleted') {
      const { stat: _stat, ...final } = fed;
      decisions.push({ path: fed.path, local: modeOnly ? fed : undefined, final, op: 'write', keepLocal: false });
    }
  }
  await receiveApply(ctx, decisions);
}
