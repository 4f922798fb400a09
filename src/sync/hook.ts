import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { SetConfig } from '../config/types.js';
import { formatDuration } from '../config/duration.js';
import { escapeBytes } from '../log/escape.js';
import { Lock } from './lock.js';

/**
 * The `on_apply` hook: a shell command run after a cycle changed files on this disk from
 * other nodes' records, with the set's name, its root and the list of changed paths in its
 * environment, bounded by `on_apply_timeout`. Its outcome is kept in
 * `<state_dir>/<set>/on-apply.json` for `status` and the metrics; it never fails a cycle.
 */

/** After SIGTERM at the timeout, how long the process group has before SIGKILL. */
const KILL_GRACE_MS = 2_000;
/** After the hook exits, how long its output pipes may stay open (a daemon it started may hold them). */
const DRAIN_MS = 200;
/** The tail of the output kept to find its last line. */
const TAIL_BYTES = 4_096;
const LAST_LINE_MAX = 500;

export interface HookRun {
  startedAt: string;
  durationMs: number;
  /** How many paths the list held. */
  changed: number;
  ok: boolean;
  /** The exit code; -1 when it timed out, died of a signal or did not start. */
  exitCode: number;
  /** "exit N", "timeout", "signal SIGxxx" or "failed to start: ...". */
  result: string;
  /** The last non-empty line of its output (stdout and stderr together), escaped; null when silent. */
  lastLine: string | null;
}

/** `<state_dir>/<set>/on-apply.json`: written only under the hook lock. */
export interface HookRecord {
  version: 1;
  set: string;
  runs: number;
  failures: number;
  last: HookRun | null;
}

export function hookRecordPath(stateDir: string, set: string): string {
  return join(stateDir, set, 'on-apply.json');
}

export function readHookRecord(stateDir: string, set: string): HookRecord | null {
  try {
    const r = JSON.parse(readFileSync(hookRecordPath(stateDir, set), 'utf8')) as HookRecord;
    return r?.version === 1 ? r : null;
  } catch {
    return null;
  }
}

function writeHookRecord(stateDir: string, r: HookRecord): void {
  const file = hookRecordPath(stateDir, r.set);
  mkdirSync(join(stateDir, r.set), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(r, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

/**
 * Runs the set's hook on a complete list of `count` changed paths and records the outcome.
 * One hook of a set at a time across processes: a second waits for the first (which its
 * timeout bounds). Null when the wait ran out and this run was left out.
 */
export async function runHook(stateDir: string, set: SetConfig, list: string, count: number, log: Logger): Promise<HookRun | null> {
  const out = log.child({ set: set.name });
  const lockFile = join(stateDir, set.name, 'on-apply.lock');
  const waitUntil = Date.now() + set.onApplyTimeout + KILL_GRACE_MS + 10_000;
  let lock = Lock.tryAcquire(lockFile);
  while (!lock && Date.now() < waitUntil) {
    await sleep(200);
    lock = Lock.tryAcquire(lockFile);
  }
  if (!lock) {
    out.error({ changed: count }, 'on_apply hook not run: another run of it did not finish in time');
    return null;
  }
  try {
    const run = await execute(set, list, count);
    const prev = readHookRecord(stateDir, set.name);
    writeHookRecord(stateDir, {
      version: 1,
      set: set.name,
      runs: (prev?.runs ?? 0) + 1,
      failures: (prev?.failures ?? 0) + (run.ok ? 0 : 1),
      last: run,
    });
    const line = { changed: count, result: run.result, exitCode: run.exitCode, lastLine: run.lastLine, ms: run.durationMs };
    if (run.ok) out.info(line, 'on_apply hook done');
    else if (run.exitCode >= 0) out.warn(line, 'on_apply hook failed');
    else out.error(line, run.result === 'timeout' ? `on_apply hook timed out after ${formatDuration(set.onApplyTimeout)}; its process group was killed` : 'on_apply hook failed');
    return run;
  } finally {
    lock.release();
  }
}

/** Spawns `/bin/sh -c <on_apply>` in its own process group, in the root, and waits for it. */
function execute(set: SetConfig, list: string, count: number): Promise<HookRun> {
  const started = Date.now();
  const tail = new Tail();
  return new Promise((resolve) => {
    let timedOut = false;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (exitCode: number, result: string): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      const ok = result === 'exit 0';
      resolve({ startedAt: new Date(started).toISOString(), durationMs: Date.now() - started, changed: count, ok, exitCode, result, lastLine: tail.lastLine() });
    };
    const child = spawn('/bin/sh', ['-c', set.onApply!], {
      cwd: set.path,
      env: { ...process.env, FEDSYNC_SET: set.name, FEDSYNC_ROOT: set.path, FEDSYNC_CHANGED: list },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout.on('data', (b: Buffer) => tail.push(b));
    child.stderr.on('data', (b: Buffer) => tail.push(b));
    child.on('error', (err) => finish(-1, `failed to start: ${err.message}`));
    const group = (signal: NodeJS.Signals | 0): boolean => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
        return child.pid !== undefined;
      } catch {
        return false; // gone
      }
    };
    // At the timeout the whole group goes, whatever the shell left running: SIGTERM, and
    // SIGKILL for what is still there after the grace.
    const timeout = setTimeout(async () => {
      timedOut = true;
      group('SIGTERM');
      const until = Date.now() + KILL_GRACE_MS;
      while (group(0) && Date.now() < until) await sleep(100);
      group('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
      finish(-1, 'timeout');
    }, set.onApplyTimeout);
    timers.push(timeout);
    child.on('exit', (code, signal) => {
      // Exited in time: what it left running in the background (a service it restarted) stays.
      if (!timedOut) clearTimeout(timeout);
      // What it printed last may still be in the pipes; a process it left running may hold
      // them open for good, so they get a moment, not a wait.
      const done = () => {
        if (timedOut) return; // the timeout ends the run once the group is gone
        child.stdout.destroy();
        child.stderr.destroy();
        if (signal) finish(-1, `signal ${signal}`);
        else finish(code ?? -1, `exit ${code}`);
      };
      let drained = 0;
      const closed = () => ++drained === 2 && done();
      child.stdout.once('close', closed);
      child.stderr.once('close', closed);
      timers.push(setTimeout(done, DRAIN_MS));
    });
  });
}

/** The last bytes of the combined output, enough to find its last line. */
class Tail {
  private buf = Buffer.alloc(0);

  push(b: Buffer): void {
    this.buf = Buffer.concat([this.buf, b]);
    if (this.buf.length > TAIL_BYTES * 2) this.buf = this.buf.subarray(this.buf.length - TAIL_BYTES);
  }

  lastLine(): string | null {
    let end = this.buf.length;
    while (end > 0) {
      const nl = this.buf.lastIndexOf(0x0a, end - 1);
      const text = escapeBytes(trimEnd(this.buf.subarray(nl + 1, end)));
      if (text.trim() !== '') return text.length > LAST_LINE_MAX ? `${text.slice(0, LAST_LINE_MAX)}...` : text;
      end = Math.max(nl, 0);
    }
    return null;
  }
}

/** Without a trailing carriage return or spaces. */
function trimEnd(b: Buffer): Buffer {
  let end = b.length;
  while (end > 0 && (b[end - 1] === 0x0d || b[end - 1] === 0x20 || b[end - 1] === 0x09)) end--;
  return b.subarray(0, end);
}
