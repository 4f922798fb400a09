import { escapePath } from '../log/escape.js';
import type { SetContext } from './context.js';
import type { Incoming } from './reconcile.js';
import type { Plan } from './receive-plan.js';
import type { Change } from './scan.js';

/**
 * One action of a cycle's plan, as the dry run prints it and the real run logs it (debug,
 * "planned"), so the two can be compared line for line:
 * - `publish`: a local change, recorded and published;
 * - `adopt`: a file already here with the federation's content, taken without a transfer;
 * - `download`: a file's content fetched and put in place;
 * - `keep-both`: the local version is kept as a conflict copy, the federation's put in place;
 * - `apply`: any other remote change (a directory, a symlink, a mode or mtime, a deletion).
 */
export interface PlanLine {
  action: 'publish' | 'adopt' | 'download' | 'keep-both' | 'apply';
  /** `+` new, `M` modified, `-` deleted (none for adopt). */
  sym: string;
  path: string;
  /** The node whose version is applied (its name when known). */
  from?: string;
}

export function publishLines(changes: Change[], before: (path: string) => string | undefined): PlanLine[] {
  return changes.map((c) => ({ action: 'publish', sym: symbol(c.entry.kind, before(c.entry.path)), path: c.entry.path }));
}

/** The lines of a receive's plan; decisions that only update the manifest have none. */
export function planLines(plan: Plan, names: Map<string, string>, before: (path: string) => string | undefined): PlanLine[] {
  const out = publishLines(plan.local, before);
  const adopted = new Set(plan.adopted.map((c) => c.entry.path));
  const keepBoth = new Set(plan.keepBoth);
  for (const d of plan.decisions) {
    const from = names.get(d.final.author) || d.final.author;
    if (adopted.has(d.path) && (d.op === 'record' || d.op === 'meta')) out.push({ action: 'adopt', sym: '', path: d.path });
    else if (d.op === 'record') continue;
    else if (d.keepLocal || keepBoth.has(d.path)) out.push({ action: 'keep-both', sym: symbol(d.final.kind, d.local?.kind), path: d.path, from });
    else if (d.op === 'write' && d.final.kind === 'file') out.push({ action: 'download', sym: symbol(d.final.kind, d.local?.kind), path: d.path, from });
    else out.push({ action: 'apply', sym: d.op === 'delete' ? '-' : symbol(d.final.kind, d.local?.kind), path: d.path, from });
  }
  return out;
}

/** Node id → name, from the heads just read and the peers known. */
export function nodeNames(ctx: SetContext, inc: Incoming): Map<string, string> {
  const names = new Map(ctx.manifest.peers().map((p) => [p.node, p.name]));
  for (const b of inc.batches) if (b.head.name) names.set(b.head.node, b.head.name);
  names.set(ctx.nodeId, ctx.nodeName);
  return names;
}

export function formatLine(l: PlanLine): string {
  return `${l.action.padEnd(10)}${l.sym ? `${l.sym} ` : ''}${escapePath(l.path)}${l.from ? ` (from ${escapePath(l.from)})` : ''}`;
}

/** The real run's plan, at debug level: what the dry run would have printed. */
export function logLines(ctx: SetContext, lines: PlanLine[]): void {
  if (!ctx.log.isLevelEnabled('debug')) return;
  for (const l of lines) ctx.log.debug({ action: l.action, path: l.path, from: l.from }, 'planned');
}

export function logPlan(ctx: SetContext, plan: Plan, inc: Incoming): void {
  if (ctx.log.isLevelEnabled('debug')) logLines(ctx, planLines(plan, nodeNames(ctx, inc), (p) => ctx.manifest.getEntry(p)?.kind));
}

function symbol(kind: string, before: string | undefined): string {
  if (kind === 'deleted') return '-';
  return !before || before === 'deleted' ? '+' : 'M';
}
