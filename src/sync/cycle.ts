import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config, SetConfig } from '../config/types.js';
import { dropKeptHashes, keepHashes } from '../manifest/kept-hashes.js';
import type { RequestCounts } from '../store/store.js';
import type { ChangedPaths } from './changed.js';
import { newCycleStats, SafetyError, step, type CycleStats, type SetContext } from './context.js';
import { Lock } from './lock.js';
import { META, metaNumber, recordChanges } from './outbox.js';
import { conflictCopies } from './conflict.js';
import { dryRun } from './dry-run.js';
import { failureKinds } from './failure.js';
import { logLines, publishLines } from './plan-lines.js';
import { headDue, publishOutbox, writeHead } from './publish.js';
import { revertDrift } from './drift.js';
import { deferFirstHousekeeping, housekeep, housekeepingDue } from './housekeep/index.js';
import { IdentityTakenError } from './identity.js';
import { checkIdentity } from './own-writes.js';
import { isFresh, receive } from './receive.js';
import { checkScan } from './rail.js';
import { MARKER_DIR } from './record.js';
import { scanTree } from './scan.js';
import { reportSkipped, skippedStatus } from './skipped.js';
import { openSession, type Session } from './session.js';
import { peerStatus, readStatus, SETTLING_LISTED, wantedStatus, writeStatus, type CycleRecord } from './status.js';

export interface CycleOptions {
  dryRun?: boolean;
  /** Scan only these paths (and their subtrees) instead of the whole tree: the watcher's dirty set. */
  only?: string[];
  /** An open session to reuse (a daemon's); otherwise one is opened and closed. */
  session?: Session;
  /** Override the max_delete rail. */
  force?: boolean;
  /** Where a dry run prints its plan. */
  print?: (line: string) => void;
  /**
   * Called right after status.json is written, still under the set's lock (the metrics
   * file is kept this way, by the layer above, without the cycle knowing of it).
   */
  afterStatus?: () => void;
  /** Lists the paths this cycle changes on disk from other nodes' records (the on_apply hook's input). */
  changed?: ChangedPaths;
}

export interface CycleResult {
  set: string;
  /** Another run held the lock: nothing was done. */
  skipped: boolean;
  ok: boolean;
  error: Error | null;
  record: CycleRecord | null;
  /** Files the scan left because they were still being written. */
  settling: string[];
}

/**
 * One heavyweight cycle for one set, as a sequence of named steps: check the root, take the
 * lock, scan and record local changes, fetch what peers published, decide and apply, publish
 * the outbox, write the head when due, write status. Errors come out wrapped with the step.
 */
export async function runCycle(config: Config, set: SetConfig, log: Logger, opts: CycleOptions = {}): Promise<CycleResult> {
  const lock = Lock.tryAcquire(join(config.stateDir, set.name, 'lock'));
  if (!lock) {
    log.info({ set: set.name }, 'another fedsync run holds the lock for this set; skipping');
    return { set: set.name, skipped: true, ok: true, error: null, record: null, settling: [] };
  }
  try {
    return await lockedCycle(config, set, log, opts);
  } finally {
    lock.release();
  }
}

async function lockedCycle(config: Config, set: SetConfig, log: Logger, opts: CycleOptions): Promise<CycleResult> {
  const started = Date.now();
  const session = opts.session ?? openSession(config, set, log);
  const { manifest } = session;
  const before = { ...session.requests };
  let ctx: SetContext | null = null;
  let error: Error | null = null;
  let settling: string[] = [];
  // The rail's refusal of this node's scan, kept even when another error ends the cycle.
  const rail: RailRefusal = {};
  try {
    // Inside the try: a refused cycle (unmounted root) is recorded as failed in status.
    checkRoot(set);
    if (!opts.dryRun) cleanTemp(set);
    ctx = await step('format', () => session.context());
    ctx.stats = newCycleStats();
    ctx.changed = opts.dryRun ? undefined : opts.changed;
    if (opts.dryRun) await dryRun(ctx, opts);
    else settling = await cycleSteps(ctx, opts, rail);
  } catch (err) {
    error = err as Error;
  }
  if (ctx) ctx.changed = undefined;
  const stats = ctx?.stats ?? newCycleStats();
  const requests = { ...session.requests };
  for (const k of Object.keys(requests) as (keyof RequestCounts)[]) requests[k] -= before[k];
  const kinds = failureKinds(error);
  const record: CycleRecord = {
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    ok: error === null,
    error: error?.message ?? null,
    railTripped: kinds.railTripped || rail.refused !== undefined,
    storeUnreachable: kinds.storeUnreachable,
    stats,
    requests,
  };
  if (!opts.dryRun) {
    const previous = readStatus(config.stateDir, set.name);
    try {
      writeStatus(config.stateDir, {
        version: 1,
        set: set.name,
        mode: set.mode,
        role: set.role,
        node: config.node,
        nodeId: session.nodeId,
        root: set.path,
        store: session.location,
        publishedSeq: Number(manifest.getMeta(META.publishedSeq) ?? 0),
        pending: manifest.outboxSegments().reduce((n, s) => n + s.count, 0),
        lastCycle: record,
        lastSuccess: error ? (previous?.lastSuccess ?? null) : record.startedAt,
        peers: manifest.peers().map(peerStatus),
        wanted: wantedStatus(manifest),
        skipped: skippedStatus(manifest),
        conflictCopies: conflictCopies(manifest),
        settling: { count: settling.length, paths: settling.slice(0, SETTLING_LISTED) },
        updatedAt: new Date().toISOString(),
      });
      opts.afterStatus?.();
    } catch (err) {
      // The cycle's outcome could not be recorded (read-only or full state dir): the run fails
      // with that, so cron mails it; `fedsync status` sees the state dir refuse writes itself.
      error = error ? new Error(`${error.message}; and ${(err as Error).message}`) : (err as Error);
    }
    const line = { ...stats, requests, ms: record.durationMs };
    const out = log.child({ set: set.name });
    if (error) out.error({ ...line, err: error.message }, 'cycle failed');
    else if (opts.only === undefined || hasNews(stats)) out.info(line, 'cycle done');
  }
  if (!opts.session) await session.close();
  return { set: set.name, skipped: false, ok: error === null, error, record, settling };
}

/** A watcher's quiet polls are not worth a log line each. */
function hasNews(s: CycleStats): boolean {
  return s.published + s.applied + s.deleted + s.conflicts + s.rejected > 0;
}

/**
 * Runs `fn` on the set with the lock held and a session open, after the same root checks a
 * cycle makes: for commands other than `run` (housekeep, restore). Null when the lock is busy.
 */
export async function withSet<T>(config: Config, set: SetConfig, log: Logger, fn: (ctx: SetContext) => Promise<T>): Promise<T | null> {
  const lock = Lock.tryAcquire(join(config.stateDir, set.name, 'lock'));
  if (!lock) return null;
  try {
    checkRoot(set);
    const session = openSession(config, set, log);
    try {
      return await fn(await step('format', () => session.context()));
    } finally {
      await session.close();
    }
  } finally {
    lock.release();
  }
}

/** A root without its marker is most likely an unmounted volume: syncing it would delete everything. */
function checkRoot(set: SetConfig): void {
  if (!existsSync(set.path) || !statSync(set.path).isDirectory()) {
    throw new SafetyError(`set "${set.name}": root ${set.path} does not exist or is not a directory (is the volume mounted?)`);
  }
  if (!existsSync(join(set.path, MARKER_DIR))) {
    throw new SafetyError(
      `set "${set.name}": ${set.path} has no ${MARKER_DIR}/ marker, so it may be an unmounted or wrong volume; refusing to sync it. If this is the right directory, run \`fedsync init\``,
    );
  }
}

/** Temp files left by a run that was killed mid-download; the lock says none is in use. */
function cleanTemp(set: SetConfig): void {
  const tmp = join(set.path, MARKER_DIR, 'tmp');
  for (const name of existsSync(tmp) ? readdirSync(tmp) : []) rmSync(join(tmp, name), { recursive: true, force: true });
}

/** The rail's refusal of this node's scan: the rest of the cycle still runs (DESIGN rule 5). */
interface RailRefusal {
  refused?: SafetyError;
}

/**
 * The steps of a cycle; returns the files left to settle. A node that has never synced
 * receives before it scans, so its pre-existing files meet the federation's state (adopted,
 * or kept per `adopt`) instead of all being published as new.
 */
async function cycleSteps(ctx: SetContext, opts: CycleOptions, rail: RailRefusal): Promise<string[]> {
  let settling: string[] = [];
  const scanAndRecord = async () => {
    const scan = await step('scan', () => scanTree(ctx, opts.only));
    settling = scan.settling;
    reportSkipped(ctx, scan);
    if (ctx.set.role === 'subscribe') return step('revert drift', () => revertDrift(ctx, scan));
    try {
      checkScan(ctx, scan.changes, opts);
    } catch (err) {
      if (!(err instanceof SafetyError)) throw err;
      rail.refused = err;
      // Nothing of the scan is published; what it learnt of unchanged content (stats,
      // interrupted applies) is recorded, and the digests it computed are kept for the next.
      recordChanges(ctx, [], scan.restat, scan.applied);
      keepHashes(ctx.manifest, scan.changes.flatMap((c) => (c.entry.kind === 'file' && c.stat ? [{ path: c.entry.path, stat: c.stat, digest: c.entry.digest!, size: c.entry.size }] : [])));
      return;
    }
    logLines(ctx, publishLines(scan.changes, (p) => ctx.manifest.getEntry(p)?.kind));
    recordChanges(ctx, scan.changes, scan.restat, scan.applied);
    dropKeptHashes(ctx.manifest);
    // Peers apply a forced deletion without being forced themselves: it was deliberate.
    const last = ctx.manifest.outboxSegments().at(-1);
    if (opts.force && last && scan.changes.some((c) => c.entry.kind === 'deleted')) ctx.manifest.setMeta(META.forcedSeq, last.seq);
  };
  const fresh = isFresh(ctx);
  if (!fresh) await scanAndRecord();
  try {
    await afterScan(ctx, opts, fresh ? scanAndRecord : null);
  } catch (err) {
    // One error per cycle is reported: this one, with the refusal in the log beside it.
    if (rail.refused) ctx.log.error({ err: rail.refused.message }, 'cycle refused');
    throw err;
  }
  if (rail.refused) throw rail.refused;
  return settling;
}

/**
 * The steps after a node's own scan: receive (then the scan, on a node that has never
 * synced), publish or write the head, housekeep.
 */
async function afterScan(ctx: SetContext, opts: CycleOptions, scanAndRecord: (() => Promise<void>) | null): Promise<void> {
  if (ctx.set.role !== 'publish') await receive(ctx, opts);
  if (scanAndRecord) await scanAndRecord();
  const publishing = ctx.set.role !== 'subscribe' && ctx.manifest.outboxSegments().length > 0;
  // A publish-only node lists heads/ for nothing else: it checks its own head before writing.
  if (ctx.set.role === 'publish' && (publishing || headDue(ctx))) await step('identity', () => checkIdentity(ctx));
  if (publishing) {
    await step('publish', () => publishOutbox(ctx));
  } else if (headDue(ctx)) {
    await step('head', async () => {
      try {
        await writeHead(ctx, metaNumber(ctx, META.publishedSeq));
      } catch (err) {
        // Another writer used this id: the node has a new one, under which all is published.
        if (!(err instanceof IdentityTakenError)) throw err;
        if (ctx.set.role !== 'subscribe') await publishOutbox(ctx);
        if (headDue(ctx)) await writeHead(ctx, metaNumber(ctx, META.publishedSeq));
      }
    });
  }
  // Housekeeping rides on full cycles only: a watcher's quick dirty-path cycles stay quick.
  if (opts.only === undefined && housekeepingDue(ctx) && !deferFirstHousekeeping(ctx)) await housekeep(ctx);
}
