import { readStatus, type SetStatus } from '../sync/status.js';
import { print, selectSets, setup, type GlobalOptions } from './common.js';
import type { SetConfig } from '../config/types.js';

/** Health of a set, as a monitoring check reads it: 0 healthy, 1 last cycle failed, 2 stale. */
export type Health = 'healthy' | 'failed' | 'stale' | 'never';
const HEALTH_EXIT: Record<Health, number> = { healthy: 0, failed: 1, stale: 2, never: 2 };

export function health(set: SetConfig, s: SetStatus | null, now = Date.now()): Health {
  if (!s?.lastCycle) return 'never';
  if (!s.lastCycle.ok) return 'failed';
  const expected = set.mode === 'lightweight' ? set.poll : Math.max(set.interval, 60_000);
  const last = s.lastSuccess ? Date.parse(s.lastSuccess) : 0;
  return now - last > 3 * expected ? 'stale' : 'healthy';
}

function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export async function statusCommand(opts: GlobalOptions & { json?: boolean; set?: string }): Promise<number> {
  const { config } = setup(opts);
  const now = Date.now();
  const sets = selectSets(config, opts.set).map((set) => {
    const status = readStatus(config.stateDir, set.name);
    return { set, status, health: health(set, status, now) };
  });
  if (opts.json) {
    print(JSON.stringify({ node: config.node, sets: sets.map((s) => ({ name: s.set.name, mode: s.set.mode, health: s.health, status: s.status })) }, null, 2));
  } else {
    for (const { set, status, health: h } of sets) {
      const c = status?.lastCycle;
      print(`${set.name}  ${set.mode}  ${set.role}  ${h.toUpperCase()}  ${set.path}`);
      if (!c) {
        print('  no cycle has run yet');
        continue;
      }
      print(`  last cycle  ${ago(c.startedAt, now)}, ${c.durationMs} ms, ${c.ok ? 'ok' : `FAILED: ${c.error}`}`);
      print(`  last ok     ${ago(status.lastSuccess, now)}`);
      print(`  did         published ${c.stats.published}, applied ${c.stats.applied}, deleted ${c.stats.deleted}, conflicts ${c.stats.conflicts}, rejected ${c.stats.rejected}, up ${c.stats.bytesUp} B, down ${c.stats.bytesDown} B`);
      print(`  pending     ${status.pending} change(s) not yet published`);
      for (const p of status.peers) {
        print(`  peer ${p.name || p.node}  heartbeat ${ago(p.heartbeat, now)}  seq ${p.seq}  cursor ${p.cursor}  lag ${p.lag}${p.error ? `  ERROR: ${p.error}` : ''}`);
      }
    }
  }
  return Math.max(0, ...sets.map((s) => HEALTH_EXIT[s.health]));
}
