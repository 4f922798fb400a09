import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parseDuration } from '../config/duration.js';
import { recordCycleMetrics } from '../ops/metrics.js';
import { runCycle, withSet } from '../sync/cycle.js';
import { chooseVersions, listVersions, writeVersions } from '../sync/history.js';
import { escapePath, escapeText } from '../log/escape.js';
import { EXIT, print, selectSets, setup, UserError, type GlobalOptions } from './common.js';

/** The set's relative path for what the user typed: relative to the root, or absolute inside it. */
function relPath(root: string, typed: string): string {
  const abs = typed.startsWith('/') ? resolve(typed) : resolve(root, typed);
  if (abs === root) return '';
  if (!abs.startsWith(`${root}/`)) throw new UserError(`${escapePath(typed)} is not inside the set's root ${escapePath(root)}`, EXIT.usage);
  return abs.slice(root.length + 1);
}

/** `--at`: an ISO date/time, or a duration meaning that long ago ("2h", "3d"). */
export function parseAt(text: string, now = Date.now()): Date {
  if (/^\d+(ms|s|m|h|d)/.test(text) && !/^\d{4}-/.test(text)) {
    try {
      return new Date(now - parseDuration(text));
    } catch {
      // fall through to the date form
    }
  }
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UserError(`--at ${JSON.stringify(text)}: give a date and time ("2026-11-20T14:00:00Z", "2026-11-20 14:00") or how long ago ("2h", "3d")`, EXIT.usage);
  return new Date(t);
}

export async function historyCommand(path: string, opts: GlobalOptions & { set: string; json?: boolean }): Promise<number> {
  const { config, log } = setup(opts);
  const [set] = selectSets(config, opts.set);
  const rel = relPath(set!.path, path);
  const versions = await withSet(config, set!, log, (ctx) => listVersions(ctx, rel));
  if (!versions) throw new UserError(`set "${set!.name}" is busy (a run holds its lock); try again in a moment`);
  if (opts.json) {
    print(JSON.stringify(versions.map((v) => ({ id: v.id, time: v.time.toISOString(), node: v.node, ...v.entry })), null, 2));
    return EXIT.ok;
  }
  if (versions.length === 0) {
    print(`no versions of ${escapePath(rel) || '/'} are kept in the store (history keeps ${set!.history / 86_400_000} days)`);
    return EXIT.failed;
  }
  for (const v of versions) {
    const e = v.entry;
    const what = e.kind === 'deleted' ? 'deleted' : e.kind === 'file' ? `${e.size} B  ${e.digest!.slice(0, 12)}` : e.kind === 'symlink' ? `-> ${escapePath(e.target!)}` : 'directory';
    print(`${v.time.toISOString()}  ${v.id}  ${escapePath(v.node).padEnd(12)}  ${escapePath(e.path)}  ${what}`);
  }
  return EXIT.ok;
}

export async function restoreCommand(path: string, opts: GlobalOptions & { set: string; at?: string; version?: string; to?: string }): Promise<number> {
  const { config, log } = setup(opts);
  const [set] = selectSets(config, opts.set);
  const rel = relPath(set!.path, path);
  const choice = { at: opts.at ? parseAt(opts.at) : undefined, version: opts.version };
  if (!opts.to) {
    // What is on disk now is published first, so the restore itself cannot lose it.
    const afterStatus = () => recordCycleMetrics(config, set!.name, log);
    const before = await runCycle(config, set!, log, { afterStatus });
    if (!before.ok && !before.skipped) throw new UserError(`cannot restore: the sync cycle before it failed: ${before.error?.message}`);
  }
  const written = await withSet(config, set!, log, async (ctx) => {
    const entries = chooseVersions(await listVersions(ctx, rel), choice);
    if (entries.length === 0) throw new UserError(`no kept version of ${escapePath(rel) || '/'} matches${choice.at ? ` at ${choice.at.toISOString()}` : ''}${choice.version ? ` with id ${choice.version}` : ''}; see \`fedsync history --set ${set!.name} ${path}\``);
    if (!opts.to) return writeVersions(ctx, entries, set!.path, (p) => p);
    const dest = resolve(opts.to);
    const single = entries.length === 1 && entries[0]!.path === rel;
    if (single && !(existsSync(dest) && statSync(dest).isDirectory())) {
      mkdirSync(dirname(dest), { recursive: true });
      return writeVersions(ctx, entries, dirname(dest), () => basename(dest));
    }
    mkdirSync(dest, { recursive: true });
    // DEST receives what is inside PATH (the directory itself maps to DEST).
    return writeVersions(ctx, entries, dest, (p) => (p === rel ? '' : rel === '' ? p : p.slice(rel.length + 1)));
  });
  if (written === null) throw new UserError(`set "${set!.name}" is busy (a run holds its lock); try again in a moment`);
  print(`restored ${written} file(s) of ${escapePath(rel) || '/'}${opts.to ? ` to ${escapePath(resolve(opts.to))}` : ' in place'}`);
  if (!opts.to) {
    const after = await runCycle(config, set!, log, { afterStatus: () => recordCycleMetrics(config, set!.name, log) });
    if (after.ok && !after.skipped) print(`published the restored files; every node gets them on its next cycle`);
    else print(`the restored files are published by the next cycle${after.error ? ` (this one failed: ${escapeText(after.error.message)})` : ''}`);
  }
  return EXIT.ok;
}
