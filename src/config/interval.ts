import type { SetConfig } from './types.js';

/**
 * The time between a set's cycles, in ms, as `status` and the metrics judge staleness by: the
 * watch daemon's `poll` for a lightweight set; for a heavyweight one `interval` (what
 * `run --loop` waits), never under the cron minute that runs it otherwise.
 */
export function expectedInterval(set: SetConfig): number {
  return set.mode === 'lightweight' ? set.poll : Math.max(set.interval, 60_000);
}
