import { reopenOnSighup } from '../log/logger.js';
import { recordCycleMetrics, refreshMetrics } from '../ops/metrics.js';
import { SetDaemon } from '../watch/daemon.js';
import { EXIT, selectSets, setup, UserError, type GlobalOptions } from './common.js';

/**
 * `fedsync watch`: the daemon for lightweight sets (or the named set). Runs until SIGTERM or
 * SIGINT, then finishes the cycle in flight and exits 0; SIGHUP reopens the log file.
 */
export async function watchCommand(opts: GlobalOptions & { set?: string }): Promise<number> {
  const { config, log } = setup(opts);
  const sets = selectSets(config, opts.set, 'lightweight');
  if (sets.length === 0) throw new UserError(`no lightweight sets in ${config.file}; heavyweight sets are synced by \`fedsync run\` (or name one with --set)`, EXIT.usage);
  reopenOnSighup(log);
  const daemons = sets.map((s) => new SetDaemon(config, s, log, () => recordCycleMetrics(config, s.name, log), () => refreshMetrics(config, log)));
  let stopping: Promise<unknown> | null = null;
  const done = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      log.info({ signal }, 'stopping');
      stopping = Promise.all(daemons.map((d) => d.stop())).then(() => resolve());
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  log.info({ sets: sets.map((s) => s.name) }, 'watching');
  await Promise.all(daemons.map((d) => d.start()));
  await done;
  log.info('stopped');
  return EXIT.ok;
}
