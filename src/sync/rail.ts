import { liveFiles } from '../manifest/kept-hashes.js';
import { placedView } from '../manifest/manifest.js';
import { SafetyError, type SetContext } from './context.js';
import type { Decision } from './plan.js';
import type { Entry } from './record.js';
import type { Change } from './scan.js';

/**
 * The max-delete rail (DESIGN rule 5). It guards against losing a tree by accident (an
 * unmounted volume whose mount point still has a marker, an `rm -r` in the wrong place), so
 * it counts what such an accident loses: files and symlinks, not directories (a tree of many
 * small folders is no easier to empty), and not content that reappears at another path in
 * the same cycle (a renamed directory loses nothing). A cycle that would delete every file
 * is refused whatever the size of the tree, unless max_delete is 100%.
 */

/** The rail's refusal: a SafetyError that monitoring tells apart (fedsync_deletion_rail_tripped). */
export class DeletionRailError extends SafetyError {
  override name = 'DeletionRailError';
}

type Content = Pick<Entry, 'kind' | 'digest' | 'target'>;

/** What a file or symlink holds, as moves are matched: a file's digest, a symlink's target. */
function contentKey(e: Content): string | null {
  if (e.kind === 'file' && e.digest) return `f:${e.digest}`;
  if (e.kind === 'symlink' && e.target !== null) return `l:${e.target}`;
  return null;
}

/**
 * The deletions the rail counts: of the states `gone`, the files and symlinks whose content
 * is not among the states `written` in the same cycle. Matched one to one: ten copies of a
 * file deleted and one written elsewhere are nine deletions.
 */
export function countDeletions(gone: (Content | undefined)[], written: Content[]): number {
  const arriving = new Map<string, number>();
  for (const w of written) {
    const k = contentKey(w);
    if (k) arriving.set(k, (arriving.get(k) ?? 0) + 1);
  }
  let n = 0;
  for (const g of gone) {
    if (g?.kind !== 'file' && g?.kind !== 'symlink') continue;
    const k = contentKey(g);
    const left = k ? (arriving.get(k) ?? 0) : 0;
    if (left > 0) arriving.set(k!, left - 1);
    else n++;
  }
  return n;
}

/** The rail on a scan's changes, before they are recorded. */
export function checkScan(ctx: SetContext, changes: Change[], opts: { force?: boolean }): void {
  if (opts.force) return;
  const gone = changes.filter((c) => c.entry.kind === 'deleted').map((c) => placedView(ctx.manifest.getEntry(c.entry.path)));
  if (gone.length === 0) return;
  const written = changes.filter((c) => c.entry.kind !== 'deleted').map((c) => c.entry);
  checkDeletions(ctx, countDeletions(gone, written), liveFiles(ctx.manifest), opts, 'publish');
}

/**
 * The rail on a plan's decisions, except deletions of `forced` paths (their author forced
 * them past its own rail: a deliberate deletion every peer's ordinary run applies).
 */
export function checkPlan(ctx: SetContext, decisions: Decision[], opts: { force?: boolean; forced?: Set<string> }): void {
  if (opts.force) return;
  const gone = decisions.filter((d) => d.op === 'delete' && !opts.forced?.has(d.path)).map((d) => d.local);
  if (gone.length === 0) return;
  const written = decisions.filter((d) => d.op === 'write').map((d) => d.final);
  checkDeletions(ctx, countDeletions(gone, written), liveFiles(ctx.manifest), opts, 'apply');
}

/** Stops a cycle that would delete `deletions` of the `live` files and symlinks, unless forced. */
export function checkDeletions(ctx: SetContext, deletions: number, live: number, opts: { force?: boolean }, where: 'publish' | 'apply'): void {
  if (deletions === 0 || opts.force) return;
  const m = ctx.set.maxDelete;
  if (m.kind === 'fraction' && m.value >= 1) return;
  const what = where === 'publish' ? 'publish the deletion of' : 'apply remote deletions of';
  if (deletions >= live) {
    throw new DeletionRailError(
      `set "${ctx.set.name}": refusing to ${what} every file (${deletions} of ${live}), which max_delete refuses at any size of the tree. ` +
        `Check that ${ctx.set.path} is complete and mounted; if the deletion is intended, run \`fedsync run --set ${ctx.set.name} --force\``,
    );
  }
  let limit: number;
  if (m.kind === 'count') limit = m.value;
  else if (live <= 10) return;
  else limit = Math.floor(m.value * live);
  if (deletions <= limit) return;
  throw new DeletionRailError(
    `set "${ctx.set.name}": refusing to ${what} ${deletions} of ${live} files (max_delete is ${m.kind === 'count' ? m.value : `${Math.round(m.value * 100)}%`}; moved files are not counted). ` +
      `Check that ${ctx.set.path} is complete and mounted; if the deletion is intended, run \`fedsync run --set ${ctx.set.name} --force\``,
  );
}
