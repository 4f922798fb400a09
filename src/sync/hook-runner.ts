import type { Logger } from 'pino';
import type { SetConfig } from '../config/types.js';
import { ChangedPaths, changedDir, removeStaleLists } from './changed.js';
import { runHook } from './hook.js';

/**
 * When a set's `on_apply` hook runs. Cycles list what they change from other nodes into the
 * pending list (`begin` / `end` around each cycle); once `quiet` has passed after the last
 * cycle that added to it, the hook runs on that list while later cycles go on filling a new
 * one. So cycles never wait for the hook, a burst of batches makes one run, and two runs of
 * the hook never overlap. A cycle that changed nothing never leads to a run.
 */
export class HookRunner {
  private pending: ChangedPaths | null = null;
  private cycles = 0;
  private countAtBegin = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The timer fired while a cycle or a run was in progress: run once they end. */
  private due = false;
  private running: Promise<void> | null = null;
  private readonly dir: string;

  constructor(
    private readonly stateDir: string,
    private readonly set: SetConfig,
    private readonly log: Logger,
    /** How long after the last applying cycle the hook waits (0: at once). */
    private readonly quiet: number,
    /** Called after each run was recorded (the metrics file). */
    private readonly afterRun?: () => void,
  ) {
    this.dir = changedDir(stateDir, set.name);
    removeStaleLists(this.dir);
  }

  /** The list a cycle starting now writes to. */
  begin(): ChangedPaths {
    this.cycles++;
    this.pending ??= new ChangedPaths(this.dir);
    this.countAtBegin = this.pending.count;
    return this.pending;
  }

  /** The cycle ended: what it added is run `quiet` after the last cycle that added something. */
  end(): void {
    this.cycles--;
    const added = (this.pending?.count ?? 0) > this.countAtBegin;
    if (added || (this.due && this.cycles === 0)) this.arm();
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.due = false;
    this.timer = setTimeout(() => this.fire(), this.quiet);
  }

  private fire(): void {
    this.timer = null;
    if (this.cycles > 0 || this.running) {
      this.due = true;
      return;
    }
    const list = this.pending;
    if (!list || list.count === 0) return;
    this.pending = null;
    this.running = this.run(list).finally(() => {
      this.running = null;
      if (this.due || (this.pending?.count ?? 0) > 0) {
        if (this.cycles === 0) this.arm();
        else this.due = true;
      }
    });
  }

  private async run(list: ChangedPaths): Promise<void> {
    try {
      list.close();
      await runHook(this.stateDir, this.set, list.file, list.count, this.log);
      this.afterRun?.();
    } catch (err) {
      this.log.error({ set: this.set.name, err: (err as Error).message }, 'on_apply hook could not be run');
    } finally {
      list.remove();
    }
  }

  /** Runs what is pending now, without waiting for `quiet`, and waits for every run to end. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      if (this.running) {
        await this.running;
        continue;
      }
      if (!this.pending || this.pending.count === 0 || this.cycles > 0) break;
      this.fire();
    }
    if (this.pending?.count === 0) {
      this.pending.remove();
      this.pending = null;
    }
  }
}
