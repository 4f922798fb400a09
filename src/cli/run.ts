import { setTimeout as sleep } from 'node:timers/promises';
import type { SetConfig } from '../config/types.js';
import { recordCycleMetrics } from '../ops/metrics.js';
import { runCycle } from '../sync/cycle.js';
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
  if (!opts.loop) return (await cycleAll(sets)) ? EXIT.ok : EXIT.failed;

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
  log.info('stopped');
  return EXIT.ok;

  async function cycleAll(list: SetConfig[]): Promise<boolean> {
    let ok = true;
    for (const set of list) {
      try {
        const r = await runCycle(config, set, log, { dryRun: opts.dryRun, force: opts.force, print, afterStatus: () => recordCycleMetrics(config, set.name, log) });
        if (!r.ok) {
          ok = false;
          process.stderr.write(`fedsync: ${set.name}: ${escapeText(r.error?.message ?? '')}\n`);
        }
      } catch (err) {
        ok = false;
        log.error({ set: set.name, err: (err as Error).message }, 'cycle refused');
        process.stderr.write(`fedsync: ${escapeText((err as Error).message)}\n`);
      }
    }
    return ok;
  }
}
