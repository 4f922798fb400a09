/**
 * `<state_dir>/fedsync.prom`: the node's metrics in the Prometheus text format, for
 * node_exporter's textfile collector. Rewritten atomically after every cycle of any set, from
 * each set's status.json and counters.json, so whichever process wrote last (the cron run
 * or the watch daemon) leaves a file that covers every set.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { expectedInterval } from '../config/interval.js';
import type { Config } from '../config/types.js';
import type { RequestCounts } from '../store/store.js';
import { readHookRecord, type HookRecord } from '../sync/hook.js';
import { readStatus, type SetStatus } from '../sync/status.js';
import { writeFileAtomic } from './atomic.js';
import { addCycle, newCounters, peerLagSeconds, readCounters, writeCounters, type Counters } from './counters.js';

export const METRICS_FILE = 'fedsync.prom';

export function metricsPath(stateDir: string): string {
  return join(stateDir, METRICS_FILE);
}

export interface SetMetrics {
  name: string;
  mode: string;
  role: string;
  /** The set's node_timeout and expected time between cycles, in seconds: the alerts' thresholds. */
  nodeTimeout: number;
  interval: number;
  status: SetStatus | null;
  counters: Counters | null;
  /** The set has an on_apply hook: its runs are exported (from 0 before the first). */
  onApply?: boolean;
  hook?: HookRecord | null;
}

/**
 * Called after each cycle wrote status.json, still under the set's lock (CycleOptions.afterStatus): counts that
 * cycle and rewrites the metrics file. Metrics never fail a cycle: a problem is logged.
 */
export function recordCycleMetrics(config: Config, setName: string, log?: Logger): void {
  try {
    const status = readStatus(config.stateDir, setName);
    if (status) writeCounters(config.stateDir, addCycle(readCounters(config.stateDir, setName) ?? newCounters(setName), status));
    writeMetricsFile(config);
  } catch (err) {
    log?.warn({ err: (err as Error).message }, `cannot write the metrics file ${metricsPath(config.stateDir)}`);
  }
}

/** Rewrites the metrics file after something other than a cycle changed (an on_apply run). */
export function refreshMetrics(config: Config, log?: Logger): void {
  try {
    writeMetricsFile(config);
  } catch (err) {
    log?.warn({ err: (err as Error).message }, `cannot write the metrics file ${metricsPath(config.stateDir)}`);
  }
}

export function writeMetricsFile(config: Config, now = Date.now()): void {
  const sets: SetMetrics[] = config.sets.map((s) => ({
    name: s.name,
    mode: s.mode,
    role: s.role,
    nodeTimeout: s.nodeTimeout / 1000,
    interval: expectedInterval(s) / 1000,
    status: readStatus(config.stateDir, s.name),
    counters: readCounters(config.stateDir, s.name),
    onApply: s.onApply !== undefined,
    hook: s.onApply !== undefined ? readHookRecord(config.stateDir, s.name) : null,
  }));
  // 0644 in a 0700 (or 0711) state dir: node_exporter reads it by name, nothing else is exposed.
  writeFileAtomic(metricsPath(config.stateDir), renderMetrics(config.node, sets, now), 0o644);
}

type Labels = Record<string, string>;
interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: { labels: Labels; value: number }[];
}

const COUNTERS: [string, string, (c: Counters) => number][] = [
  ['fedsync_cycles_total', 'Cycles run (dry runs and skipped runs excluded).', (c) => c.cycles],
  ['fedsync_cycle_failures_total', 'Cycles that ended with an error.', (c) => c.failures],
  ['fedsync_files_published_total', 'Changes (files, directories, symlinks, deletions) published.', (c) => c.published],
  ['fedsync_files_applied_total', "Other nodes' files, directories and symlinks written here.", (c) => c.applied],
  ['fedsync_files_deleted_total', "Other nodes' deletions carried out here.", (c) => c.deleted],
  ['fedsync_conflicts_total', 'Local versions moved aside as conflict copies.', (c) => c.conflicts],
  ['fedsync_records_rejected_total', 'Remote records refused by validation.', (c) => c.rejected],
  ['fedsync_bytes_up_total', 'Bytes of content uploaded to the store.', (c) => c.bytesUp],
  ['fedsync_bytes_down_total', 'Bytes of content downloaded from the store.', (c) => c.bytesDown],
];

export function renderMetrics(node: string, sets: SetMetrics[], now = Date.now()): string {
  const fam = new Map<string, Family>();
  const add = (name: string, type: Family['type'], help: string, labels: Labels, value: number) => {
    const f = fam.get(name) ?? { name, type, help, samples: [] };
    f.samples.push({ labels, value });
    fam.set(name, f);
  };
  for (const s of sets) {
    const set = { set: s.name };
    const c = s.counters ?? newCounters(s.name);
    const st = s.status;
    add('fedsync_set_info', 'gauge', 'One per configured set; the labels say how it runs.', { ...set, mode: s.mode, role: s.role, node }, 1);
    add('fedsync_node_timeout_seconds', 'gauge', "The set's node_timeout: a peer silent for longer is no longer live.", set, s.nodeTimeout);
    add('fedsync_interval_seconds', 'gauge', 'The expected time between cycles (cron minute or interval; poll for a lightweight set).', set, s.interval);
    for (const [name, help, get] of COUNTERS) add(name, 'counter', help, set, get(c));
    for (const kind of Object.keys(c.requests).sort() as (keyof RequestCounts)[]) {
      add('fedsync_store_requests_total', 'counter', 'Requests sent to the store, by kind (retries included).', { ...set, kind }, c.requests[kind]);
    }
    const ts = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : 0);
    add('fedsync_last_success_timestamp_seconds', 'gauge', 'Start of the last successful cycle (0: never).', set, ts(st?.lastSuccess));
    add('fedsync_last_cycle_timestamp_seconds', 'gauge', 'Start of the last cycle (0: never).', set, ts(st?.lastCycle?.startedAt));
    add('fedsync_last_cycle_duration_seconds', 'gauge', 'Duration of the last cycle.', set, (st?.lastCycle?.durationMs ?? 0) / 1000);
    add('fedsync_last_cycle_success', 'gauge', '1 if the last cycle succeeded, 0 if it failed or none ran.', set, st?.lastCycle?.ok ? 1 : 0);
    add('fedsync_deletion_rail_tripped', 'gauge', '1 if the max_delete rail refused deletions in the last cycle.', set, st?.lastCycle?.railTripped ? 1 : 0);
    add('fedsync_store_unreachable', 'gauge', '1 if the last cycle failed because the store could not be reached or answered errors.', set, st?.lastCycle?.storeUnreachable ? 1 : 0);
    add('fedsync_conflict_copies', 'gauge', 'Conflict copies (*.sync-conflict-*) in the set not deleted yet.', set, st?.conflictCopies ?? 0);
    add('fedsync_pending_changes', 'gauge', 'Local changes recorded but not yet published.', set, st?.pending ?? 0);
    add('fedsync_wanted_records', 'gauge', 'Records received and not applied here yet (retried until they apply).', set, st?.wanted?.count ?? 0);
    add('fedsync_wanted_oldest_timestamp_seconds', 'gauge', 'When the oldest wanted record became wanted (0: none).', set, ts(st?.wanted?.oldestSince));
    add('fedsync_skipped_paths', 'gauge', 'Paths on this disk not published because other nodes would refuse them.', set, st?.skipped?.count ?? 0);
    if (s.onApply) {
      const h = s.hook;
      add('fedsync_on_apply_runs_total', 'counter', 'Runs of the on_apply hook.', set, h?.runs ?? 0);
      add('fedsync_on_apply_failures_total', 'counter', 'Runs of the on_apply hook that failed (non-zero exit, signal, timeout, failure to start).', set, h?.failures ?? 0);
      add('fedsync_on_apply_last_exit_code', 'gauge', 'Exit code of the last on_apply run (-1: timeout, signal or failure to start; 0 before the first).', set, h?.last?.exitCode ?? 0);
      add('fedsync_on_apply_last_run_timestamp_seconds', 'gauge', 'Start of the last on_apply run (0: never).', set, ts(h?.last?.startedAt));
    }
    for (const p of st?.peers ?? []) {
      const peer = { ...set, peer: p.name || p.node, peer_id: p.node };
      add('fedsync_peer_lag_segments', 'gauge', "Journal segments the peer published that this node has not applied.", peer, p.lag);
      add('fedsync_peer_lag_seconds', 'gauge', 'How long this node has been behind the peer (0: caught up).', peer, peerLagSeconds(s.counters, p, now));
      add('fedsync_peer_heartbeat_timestamp_seconds', 'gauge', "The peer's last heartbeat, from its head.", peer, ts(p.heartbeat));
      add('fedsync_peer_error', 'gauge', "1 while the peer's journal cannot be read (see fedsync status).", peer, p.error ? 1 : 0);
    }
  }
  const out: string[] = [];
  for (const f of fam.values()) {
    out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${f.name} ${f.type}`);
    for (const { labels, value } of f.samples) out.push(`${f.name}${labelText(labels)} ${num(value)}`);
  }
  return out.join('\n') + '\n';
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  return String(v);
}
