import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { expectedInterval } from '../config/interval.js';
import { loadConfig } from '../config/load.js';
import type { SetConfig } from '../config/types.js';
import { peerLagSeconds, readCounters, type Counters } from '../ops/counters.js';
import { probeWritable, stateFileError } from '../fsutil/state-error.js';
import { escapePath, escapeText } from '../log/escape.js';
import { readHookRecord, type HookRecord } from '../sync/hook.js';
import { readStatus, statusPath, type SetStatus } from '../sync/status.js';
import type { SkippedStatus } from '../sync/skipped.js';
import { EXIT, print, selectSets, UserError, type GlobalOptions } from './common.js';

/** Health of a set, as a monitoring check reads it: 0 healthy, 1 last cycle failed, 2 stale or never run. */
export type Health = 'healthy' | 'failed' | 'stale' | 'never';
const HEALTH_EXIT: Record<Health, number> = { healthy: 0, failed: 1, stale: 2, never: 2 };

export function health(set: SetConfig, s: SetStatus | null, now = Date.now(), stateError: string | null = null): Health {
  if (!s?.lastCycle) return 'never';
  if (!s.lastCycle.ok || stateError) return 'failed';
  const last = s.lastSuccess ? Date.parse(s.lastSuccess) : 0;
  return now - last > 3 * expectedInterval(set) ? 'stale' : 'healthy';
}

/** One set in `status --json`; docs/status-schema.json is the contract. */
export interface SetReport {
  name: string;
  mode: string;
  role: string;
  path: string;
  health: Health;
  exitCode: number;
  staleAfterSeconds: number;
  lastCycleAgeSeconds: number | null;
  lastSuccessAgeSeconds: number | null;
  lastError: { at: string; message: string } | null;
  totals: Omit<Counters, 'version' | 'set' | 'counted' | 'caughtUp' | 'lastError'> | null;
  peers: PeerReport[];
  /** Records received and not applied here yet (retried), as the last cycle counted them. */
  wanted: { count: number; oldestSince: string | null; oldestAgeSeconds: number | null };
  /** Paths on this disk not published because other nodes would refuse them (DESIGN rule 8). */
  skipped: SkippedStatus;
  /** The on_apply hook (null: none configured). */
  onApply: OnApplyReport | null;
  /** The set's state directory, and whether it takes writes now (see stateDirWritable). */
  stateDir: { path: string; writable: boolean; error: string | null };
  /** status.json as the last cycle wrote it. */
  status: SetStatus | null;
}

export interface OnApplyReport {
  command: string;
  timeoutSeconds: number;
  runs: number;
  failures: number;
  lastRunAt: string | null;
  lastRunAgeSeconds: number | null;
  /** "exit N", "timeout", "signal SIGxxx" or "failed to start: ..." (null: never run). */
  result: string | null;
  /** -1 for a timeout, a signal or a failure to start. */
  exitCode: number | null;
  ok: boolean | null;
  changed: number | null;
  /** Its last output line, escaped. */
  lastLine: string | null;
}

export interface PeerReport {
  node: string;
  name: string;
  role: string;
  heartbeat: string | null;
  heartbeatAgeSeconds: number | null;
  seq: number;
  cursor: number;
  lagSegments: number;
  lagSeconds: number;
  error: string | null;
}

const age = (iso: string | null | undefined, now: number) => (iso ? Math.max(0, Math.round((now - Date.parse(iso)) / 1000)) : null);

function onApplyReport(set: SetConfig, hook: HookRecord | null, now: number): OnApplyReport | null {
  if (set.onApply === undefined) return null;
  const last = hook?.last ?? null;
  return {
    command: set.onApply,
    timeoutSeconds: set.onApplyTimeout / 1000,
    runs: hook?.runs ?? 0,
    failures: hook?.failures ?? 0,
    lastRunAt: last?.startedAt ?? null,
    lastRunAgeSeconds: age(last?.startedAt, now),
    result: last?.result ?? null,
    exitCode: last?.exitCode ?? null,
    ok: last?.ok ?? null,
    changed: last?.changed ?? null,
    lastLine: last?.lastLine ?? null,
  };
}

export function setReport(
  set: SetConfig,
  status: SetStatus | null,
  counters: Counters | null,
  now = Date.now(),
  hook: HookRecord | null = null,
  state = { path: '', error: null as string | null },
): SetReport {
  const h = health(set, status, now, state.error);
  let totals: SetReport['totals'] = null;
  if (counters) {
    const { version: _v, set: _s, counted: _c, caughtUp: _u, lastError: _e, ...rest } = counters;
    totals = rest;
  }
  let failed = status?.lastCycle && !status.lastCycle.ok ? { at: status.lastCycle.startedAt, message: status.lastCycle.error ?? 'unknown error' } : null;
  if (status?.lastCycle && state.error) failed = { at: new Date(now).toISOString(), message: state.error };
  return {
    name: set.name,
    mode: set.mode,
    role: set.role,
    path: set.path,
    health: h,
    exitCode: HEALTH_EXIT[h],
    staleAfterSeconds: (3 * expectedInterval(set)) / 1000,
    lastCycleAgeSeconds: age(status?.lastCycle?.startedAt, now),
    lastSuccessAgeSeconds: age(status?.lastSuccess, now),
    lastError: failed ?? counters?.lastError ?? null,
    totals,
    peers: (status?.peers ?? []).map((p) => ({
      node: p.node,
      name: p.name,
      role: p.role,
      heartbeat: p.heartbeat,
      heartbeatAgeSeconds: age(p.heartbeat, now),
      seq: p.seq,
      cursor: p.cursor,
      lagSegments: p.lag,
      lagSeconds: peerLagSeconds(counters, p, now),
      error: p.error,
    })),
    wanted: { count: status?.wanted?.count ?? 0, oldestSince: status?.wanted?.oldestSince ?? null, oldestAgeSeconds: age(status?.wanted?.oldestSince, now) },
    skipped: status?.skipped ?? { count: 0, paths: [] },
    onApply: onApplyReport(set, hook, now),
    stateDir: { path: state.path, writable: state.error === null, error: state.error },
    status,
  };
}

/**
 * `fedsync status`: a table of the sets (health, last cycle, pending, conflicts), then per
 * set its peers and last error. Exit code: the worst set's (0 healthy, 1 failed, 2 stale or
 * never run), so it can serve as a monitoring check as it is.
 */
export async function statusCommand(opts: GlobalOptions & { json?: boolean; set?: string }): Promise<number> {
  // No logger: a monitoring check must not create or write the log file.
  const config = loadConfig(opts.config);
  const now = Date.now();
  const reports = selectSets(config, opts.set).map((set) => {
    readable(statusPath(config.stateDir, set.name));
    const dir = join(config.stateDir, set.name);
    const state = { path: dir, error: stateDirWritable(dir, statusPath(config.stateDir, set.name)) };
    return setReport(set, readStatus(config.stateDir, set.name), readCounters(config.stateDir, set.name), now, readHookRecord(config.stateDir, set.name), state);
  });
  const exitCode = Math.max(EXIT.ok, ...reports.map((r) => r.exitCode));
  if (opts.json) {
    const out = { version: 1, node: config.node, config: config.file, generatedAt: new Date(now).toISOString(), exitCode, sets: reports };
    print(JSON.stringify(out, null, 2));
  } else {
    printTable(config.node, config.file, reports);
  }
  return exitCode;
}

/**
 * Null when the set's state directory takes writes, else why not. A cycle that cannot write
 * there (read-only or full file system, immutable directory) cannot record that it failed:
 * status.json is in that directory, and so is everything else the cycle owns (manifest,
 * lock, counters), so no timestamp or marker of its failure can be left anywhere it reads.
 * Only the directory itself can tell, so status asks it, at the moment it reports: a
 * directory refusing writes now fails the next cycle too, whatever the old status.json says;
 * one that refused and has recovered is caught up by that next cycle (and the stale check
 * covers the wait). The probe is one small file created and removed in that directory, and
 * a check that status.json itself may be replaced.
 */
function stateDirWritable(dir: string, file: string): string | null {
  if (!existsSync(dir)) return null; // never initialised: health says "never"
  const refused = probeWritable(dir);
  if (refused) return refused.message;
  try {
    // An immutable status.json (EPERM) cannot be replaced, though its directory takes writes.
    if (existsSync(file)) accessSync(file, constants.W_OK);
  } catch (err) {
    return stateFileError(file, 'write', err).message;
  }
  return null;
}

/** status.json that exists but cannot be read must not pass for "never run". */
function readable(file: string): void {
  if (!existsSync(file)) return;
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}; run fedsync status as the user fedsync runs as (root)`, EXIT.usage);
  }
}

function printTable(node: string, file: string, reports: SetReport[]): void {
  print(`node ${node}, ${reports.length} set${reports.length === 1 ? '' : 's'} (${file})`);
  print();
  const rows = [['SET', 'MODE', 'HEALTH', 'LAST CYCLE', 'RESULT', 'LAST OK', 'PENDING', 'WANTED', 'CONFLICTS']];
  for (const r of reports) {
    const c = r.status?.lastCycle;
    rows.push([
      r.name,
      r.mode,
      r.health === 'healthy' ? 'healthy' : r.health === 'never' ? 'NEVER RUN' : r.health.toUpperCase(),
      c ? `${ago(r.lastCycleAgeSeconds)} (${duration(c.durationMs)})` : '-',
      c ? (c.ok ? 'ok' : 'FAILED') : '-',
      ago(r.lastSuccessAgeSeconds),
      String(r.status?.pending ?? '-'),
      r.status ? String(r.wanted.count) : '-',
      String(r.totals?.conflicts ?? c?.stats.conflicts ?? '-'),
    ]);
  }
  for (const line of columns(rows)) print(line);
  for (const r of reports) {
    print();
    print(`${r.name}: ${escapePath(r.path)}${r.status ? ` <-> ${escapeText(r.status.store)}` : ''}`);
    const c = r.status?.lastCycle;
    if (!c) {
      print('  no cycle has run yet: run `fedsync run` (heavyweight) or start `fedsync watch` (lightweight)');
      continue;
    }
    const s = c.stats;
    const settling = r.status?.settling?.count ?? 0;
    print(`  this node   published seq ${r.status?.publishedSeq ?? 0}, ${r.status?.pending ?? 0} record${r.status?.pending === 1 ? '' : 's'} pending, ${settling} file${settling === 1 ? '' : 's'} settling${settling ? ` (${(r.status?.settling?.paths ?? []).slice(0, 3).map(escapePath).join(', ')}${settling > 3 ? ', ...' : ''}: still being written, published once unchanged for \`settle\`)` : ''}`);
    print(`  last cycle  published ${s.published}, applied ${s.applied}, deleted ${s.deleted}, conflicts ${s.conflicts}, rejected ${s.rejected}, up ${bytes(s.bytesUp)}, down ${bytes(s.bytesDown)}`);
    if (r.health === 'stale') print(`  stale       no successful cycle for ${ago(r.lastSuccessAgeSeconds).replace(' ago', '')} (expected every ${r.staleAfterSeconds / 3}s): is cron or the watch daemon running?`);
    if (r.wanted.count > 0) {
      const n = r.wanted.count;
      print(`  wanted      ${n} record${n === 1 ? '' : 's'} not applied here yet (the oldest became wanted ${ago(r.wanted.oldestAgeSeconds)}), retried every cycle, then at least hourly; the log says why`);
    }
    const copies = r.status?.conflictCopies ?? 0;
    if (copies > 0) print(`  conflicts   ${copies} conflict cop${copies === 1 ? 'y' : 'ies'} (*.sync-conflict-*) in the set not deleted yet: keep the right version, delete the copy`);
    if (r.skipped.count > 0) {
      const n = r.skipped.count;
      print(`  skipped     ${n} path${n === 1 ? '' : 's'} on this disk not published: other nodes would refuse ${n === 1 ? 'it' : 'them'} (rename or remove; see docs/troubleshooting.md)`);
      for (const p of r.skipped.paths.slice(0, 10)) print(`    ${escapePath(p.path)}  (${escapeText(p.reason)})`);
      if (n > 10) print(`    ... and ${n - 10} more (status --json lists ${Math.min(n, r.skipped.paths.length)})`);
    }
    if (r.stateDir.error) print(`  state dir   ${escapeText(r.stateDir.error)}; cycles cannot record their state, so the figures above may be old`);
    const h = r.onApply;
    if (h && h.result === null) print('  on_apply    not run yet (it runs after a cycle that applied changes from other nodes)');
    else if (h) {
      const what = `${h.ok ? 'ok' : 'FAILED'} (${h.result === 'timeout' ? `timeout after ${h.timeoutSeconds}s` : h.result})`;
      print(`  on_apply    last run ${ago(h.lastRunAgeSeconds)}: ${what}, ${h.changed} path${h.changed === 1 ? '' : 's'}; ${h.runs} runs, ${h.failures} failed`);
      if (h.lastLine !== null) print(`    last line: ${h.lastLine}`);
    }
    if (!c.ok) print(`  error       ${escapeText(c.error ?? '')}`);
    else if (r.lastError && !r.stateDir.error) print(`  last error  ${ago(age(r.lastError.at, Date.now()))}: ${escapeText(r.lastError.message)}`);
    if (r.peers.length === 0) print('  peers       none yet');
    const peerRows = r.peers.map((p) => [
      `  peer ${escapeText(p.name || p.node)}`,
      `heartbeat ${ago(p.heartbeatAgeSeconds)}`,
      `seq ${p.seq}`,
      `cursor ${p.cursor}`,
      `lag ${p.lagSegments} segment${p.lagSegments === 1 ? '' : 's'}, ${p.lagSeconds}s`,
      p.error ? `ERROR: ${escapeText(p.error)}` : '',
    ]);
    for (const line of columns(peerRows)) print(line);
  }
}

/** Left-aligned columns, two spaces apart. */
function columns(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

function ago(s: number | null): string {
  if (s === null) return 'never';
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}
