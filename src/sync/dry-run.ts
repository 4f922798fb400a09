import type { LocalEntry } from '../manifest/manifest.js';
import { escapePath, escapeText } from '../log/escape.js';
import { step, type SetContext } from './context.js';
import { formatLine, nodeNames, planLines, publishLines, type PlanLine } from './plan-lines.js';
import { fetchIncoming, isFresh } from './receive.js';
import { planIncoming } from './reconcile.js';
import { scanTree, type ScanResult } from './scan.js';

/**
 * `run --dry-run`: the cycle's plan, made by the same steps as the real run's (scan, fetch,
 * `planIncoming`), printed instead of carried out. Where the real run records the scan's
 * changes before it receives, the dry run lays them over the manifest, so the receive is
 * planned against the same local states. Nothing is written to the disk, the manifest or
 * the store.
 */
export async function dryRun(ctx: SetContext, opts: { only?: string[]; force?: boolean; print?: (line: string) => void }): Promise<void> {
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const before = (p: string) => ctx.manifest.getEntry(p)?.kind;
  const fresh = isFresh(ctx);
  const scans = ctx.set.role !== 'subscribe';
  const lines: PlanLine[] = [];
  // Paths the scan does not publish because other nodes would refuse them.
  const skips: string[] = [];
  const skipped = (scan: ScanResult) => {
    for (const x of scan.skipped) skips.push(`${'skip'.padEnd(10)}! ${escapePath(x.path)} (${escapeText(x.reason)}: other nodes would refuse it)`);
  };
  let overlay = new Map<string, LocalEntry>();
  // A node that has synced scans first; one that never has receives first (cycle.ts).
  if (scans && !fresh) {
    const scan = await step('scan', () => scanTree(ctx, opts.only));
    lines.push(...publishLines(scan.changes, before));
    skipped(scan);
    overlay = recorded(ctx, scan);
  }
  const planned = new Set<string>();
  if (ctx.set.role !== 'publish') {
    const inc = await fetchIncoming(ctx, fresh, true);
    const plan = await step('plan', () => planIncoming(ctx, inc, { force: opts.force, fresh, retry: Date.now(), dryRun: true }, overlay));
    lines.push(...planLines(plan, nodeNames(ctx, inc), before));
    for (const p of [...plan.decisions.map((d) => d.path), ...plan.adopted.map((c) => c.entry.path), ...plan.local.map((c) => c.entry.path), ...plan.keepBoth]) planned.add(p);
  }
  if (scans && fresh) {
    // What the plan settles (adopted, downloaded, kept both) is no longer a change then.
    const scan = await step('scan', () => scanTree(ctx, opts.only));
    lines.push(...publishLines(scan.changes.filter((c) => !planned.has(c.entry.path)), before));
    skipped(scan);
  }
  for (const l of lines) print(formatLine(l));
  for (const l of skips) print(l);
  const pending = ctx.manifest.outboxSegments().reduce((n, s) => n + s.count, 0);
  if (pending > 0) print(`${'publish'.padEnd(10)}${pending} change(s) already queued from an earlier run`);
  print(`dry run: nothing was changed (${ctx.set.name})`);
}

/** The entries the real run's recording of `scan` would leave, by path. */
function recorded(ctx: SetContext, scan: ScanResult): Map<string, LocalEntry> {
  const out = new Map<string, LocalEntry>();
  for (const [path, stat] of scan.restat) {
    const e = ctx.manifest.getEntry(path);
    if (e && !e.absent) out.set(path, { ...e, stat });
  }
  for (const c of [...scan.applied, ...scan.changes]) out.set(c.entry.path, { ...c.entry, stat: c.stat });
  return out;
}
