import { setTimeout as sleep } from 'node:timers/promises';
import type { SetConfig } from '../config/types.js';
import { recordCycleMetrics, refreshMetrics } from '../ops/metrics.js';
import { runCycle } from '../sync/cycle.js';
import { HookRunner } from '../sync/hook-runner.js';
import { escapeText } from '../log/escape.js';
import { EXIT, print, selectSets, setup, UserError, type GlobalOptions } from './common.js';

export interface RunOptions extends GlobalOptions {
  set?: string;
  dryRun?: boolean;
  loop?: boolean;
  force?: boolean;
}

/**
 * `fedsync run`: one cycle for each heavyweight set (or the named set, whatever its mode).
 * With --loop it repeats every `interval` until SIGTERM/SIGINT, finishing the cycle in flight.
 */
export async function runCommand(opts: RunOptions): Promise<number> {
  const { config, log } = setup(opts);
  const sets = selectSets(config, opts.set, 'heavyweight');
  if (sets.length === 0) throw new UserError(`no heavyweight sets in ${config.file}; lightweight sets are served by \`fedsync watch\` (or name one with --set)`, EXIT.usage);
  // A hook runs as soon as its cycle ends, beside the next cycles of a loop; its outcome
  // never changes the exit code (it is logged, and shown by status and the metrics).
  const hooks = new Map<string, HookRunner>();
  if (!opts.dryRun) {
    for (const s of sets) if (s.onApply) hooks.set(s.name, new HookRunner(config.stateDir, s, log, 0, () => refreshMetrics(config, log)));
  }
  const flushHooks = () => Promise.all([...hooks.values()].map((h) => h.flush()));
  if (!opts.loop) {
    const ok = await cycleAll(sets);
    await flushHooks();
    return ok ? EXIT.ok : EXIT.failed;
  }

  let stopping = false;
  const stop = new AbortController();
  const onSignal = () => {
    stopping = true;
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const interval = Math.min(...sets.map((s) => s.interval));
  while (!stopping) {
    const started = Date.now();
    await cycleAll(sets);
    await sleep(Math.max(0, interval - (Date.now() - started)), undefined, { signal: stop.signal }).catch(() => {});
  }
  await flushHooks();
  log.info('stopped');
  return EXIT.ok;

  async function cycleAll(list: SetConfig[]): Promise<boolean> {
    let ok = true;
    for (const set of list) {
      const hook = hooks.get(set.name);
      try {
        const changed = hook?.begin();
        const r = await runCycle(config, set, log, { dryRun: opts.dryRun, force: opts.force, print, changed, afterStatus: () => recordCycleMetrics(config, set.name, log) });
        if (!r.ok) {
          ok = false;
          process.stderr.write(`fedsync: ${set.name}: ${escapeText(r.error?.message ?? '')}\n`);
        }
      } catch (err) {
        ok = false;
        log.error({ set: set.name, err: (err as Error).message }, 'cycle refused');
        process.stderr.write(`fedsync: ${escapeText((err as Error).message)}\n`);
      } finally {
        hook?.end();
      }
    }
    return ok;
  }
}
