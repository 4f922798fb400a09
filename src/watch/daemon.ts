import { watch, type FSWatcher } from 'chokidar';
import { statSync } from 'node:fs';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import type { Logger } from 'pino';
import type { Config, SetConfig } from '../config/types.js';
import { runCycle } from '../sync/cycle.js';
import { HookRunner } from '../sync/hook-runner.js';
import { MARKER_DIR } from '../sync/record.js';
import { openSession, type Session } from '../sync/session.js';
import { inotifyAdvice, inotifyWatchLimit, watchesFit } from './limits.js';

/**
 * Keeps one lightweight set in sync: a filesystem watcher marks paths dirty, and `delay`
 * after the last event only those are scanned and published; the store is polled every
 * `poll`; a full reconciling scan runs at start, every `rescan`, and after any watcher error,
 * so a burst the watcher could not follow loses nothing. Cycles never overlap: each one runs
 * after the previous finished, and decides from the flags what it has to do.
 */
export class SetDaemon {
  private session: Session | null = null;
  private watcher: FSWatcher | null = null;
  private readonly dirty = new Set<string>();
  private full = true;
  private queued = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];
  private debounce: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Set when the watcher cannot be used: every poll is then a full scan. */
  private polling = false;
  /** The set's on_apply hook, run once batches that changed files here are quiet. */
  private readonly hook: HookRunner | null;

  constructor(
    private readonly config: Config,
    private readonly set: SetConfig,
    private readonly log: Logger,
    /** Passed on to every cycle (see CycleOptions.afterStatus). */
    private readonly afterStatus?: () => void,
    /** Called after each run of the on_apply hook. */
    afterHook?: () => void,
  ) {
    this.hook = set.onApply ? new HookRunner(config.stateDir, set, log, Math.max(set.delay, 1_000), afterHook) : null;
  }

  async start(): Promise<void> {
    this.session = openSession(this.config, this.set, this.log);
    // chokidar holds an inotify watch per file and per directory.
    this.checkWatchLimit();
    if (!this.polling) {
      // Watching first, scanning after: a change made while the first full scan runs is
      // either seen by that scan or reported by the watcher afterwards, never neither.
      await this.startWatcher();
    }
    this.schedule(true);
    await this.chain;
    if (this.stopped) return;
    // A new node learns how big its tree is only from the first full scan.
    if (!this.polling) this.checkWatchLimit();
    this.timers.push(setInterval(() => this.schedule(this.polling), this.set.poll));
    this.timers.push(setInterval(() => this.schedule(true), this.set.rescan));
  }

  private startWatcher(): Promise<void> {
    const root = this.set.path;
    const session = this.session!;
    this.watcher = watch(root, {
      ignoreInitial: true,
      followSymlinks: false,
      ignored: (abs, stats) => {
        const rel = relative(root, abs).split(sep).join('/');
        if (rel === '' || rel.startsWith('..')) return false;
        if (rel === MARKER_DIR || rel.startsWith(`${MARKER_DIR}/`)) return true;
        return session.excluded(rel, stats?.isDirectory() ?? false);
      },
    });
    const rel = (abs: string) => relative(root, abs).split(sep).join('/');
    this.watcher.on('all', (_event, abs) => this.mark(rel(abs)));
    // The kernel's own events too: chokidar throttles directory re-reads and, when its event
    // loop was busy, can drop what arrived meanwhile (a directory renamed into place).
    this.watcher.on('raw', (_event, name, details) => {
      const dir = (details as { watchedPath?: string } | undefined)?.watchedPath;
      if (!name || !dir) return;
      const abs = isAbsolute(name) ? name : basename(dir) === name ? dir : join(dir, name);
      if (abs.startsWith(root)) this.mark(rel(abs));
    });
    this.watcher.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      this.log.warn({ set: this.set.name, err: (err as Error).message }, 'watcher error; running a full scan');
      if (code === 'ENOSPC' || code === 'EMFILE') {
        // Out of inotify watches or descriptors: the watcher cannot be trusted any more.
        this.pollInstead(this.session!.manifest.liveCount() + 1, inotifyWatchLimit() ?? 0);
      }
      this.schedule(true);
    });
    // Out of watches while setting up, chokidar may never become ready: polling goes on then.
    const watcher = this.watcher;
    return new Promise((resolve) => {
      watcher.once('ready', () => resolve());
      watcher.on('error', () => {
        if (this.polling) resolve();
      });
    });
  }

  /** Too many files and directories for the inotify limit: periodic full scans instead. */
  private checkWatchLimit(): void {
    const watches = this.session!.manifest.liveCount() + 1;
    const limit = inotifyWatchLimit();
    if (!watchesFit(watches, limit)) this.pollInstead(watches, limit!);
  }

  private pollInstead(watches: number, limit: number): void {
    this.log.warn({ set: this.set.name }, inotifyAdvice(watches, limit));
    this.polling = true;
    void this.watcher?.close();
    this.watcher = null;
  }

  /** A path changed: scan it once events have been quiet for `delay`. */
  private mark(rel: string): void {
    if (rel.startsWith('..')) return;
    this.dirty.add(rel);
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.schedule();
    }, this.set.delay);
  }

  /** Queues one cycle after the current one (several requests coalesce into one). */
  private schedule(full = false): void {
    if (full) this.full = true;
    if (this.queued || this.stopped) return;
    this.queued = true;
    this.chain = this.chain.then(() => this.cycle());
  }

  private async cycle(): Promise<void> {
    this.queued = false;
    if (this.stopped) return;
    const full = this.full;
    const only = full ? undefined : [...this.dirty];
    this.full = false;
    this.dirty.clear();
    const changed = this.hook?.begin();
    try {
      const r = await runCycle(this.config, this.set, this.log, { session: this.session!, only, changed, afterStatus: this.afterStatus });
      if (r.skipped || !r.ok) this.retryLater(full, only);
      for (const p of r.settling) this.dirty.add(p);
      if (r.settling.length > 0) setTimeout(() => this.schedule(), this.settleWait(r.settling)).unref();
    } catch (err) {
      this.log.error({ set: this.set.name, err: (err as Error).message }, 'cycle refused');
      this.retryLater(full, only);
    } finally {
      this.hook?.end();
    }
  }

  /**
   * Until the first settling file has been quiet for `settle`: waiting a whole `settle` after
   * the cycle instead made every change wait `delay` + `settle` before it was published.
   */
  private settleWait(paths: string[]): number {
    const now = Date.now();
    let wait = this.set.settle;
    for (const p of paths.slice(0, 1000)) {
      try {
        wait = Math.min(wait, statSync(join(this.set.path, p)).ctimeMs + this.set.settle - now);
      } catch {
        return 10; // gone: the next cycle records that at once
      }
    }
    return Math.max(10, Math.ceil(wait));
  }

  /** Nothing that was dirty is forgotten when a cycle could not run or failed. */
  private retryLater(full: boolean, only: string[] | undefined): void {
    if (full || !only) this.full = true;
    else for (const p of only) this.dirty.add(p);
  }

  /**
   * Stops watching, lets the cycle in flight finish (and write its status), runs the hook
   * for what was applied and not yet handed to it, closes the set.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.debounce) clearTimeout(this.debounce);
    await this.watcher?.close();
    await this.chain;
    await this.hook?.flush();
    await this.session?.close();
    this.session = null;
  }
}
