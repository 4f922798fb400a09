import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config, SetConfig } from '../config/types.js';
import type { RequestCounts } from '../store/store.js';
import { applyDecisions } from './apply.js';
import { newCycleStats, SafetyError, step, StepError, type CycleStats, type SetContext } from './context.js';
import { diskMatches, diskState } from './disk.js';
import { loadFormat } from './format.js';
import { Lock } from './lock.js';
import { META, metaNumber, recordChanges } from './outbox.js';
import { byPath, decide, type Decision } from './plan.js';
import { headDue, publishOutbox, writeHead } from './publish.js';
import { fetchPeers, type PeerBatch } from './pull.js';
import { MARKER_DIR, type Entry } from './record.js';
import { scanTree, type ScanResult } from './scan.js';
import { openSession, type Session } from './session.js';
import { peerStatus, readStatus, writeStatus, type CycleRecord } from './status.js';

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
  checkRoot(set);
  cleanTemp(set);
  const session = opts.session ?? openSession(config, set, log);
  const { ctx } = session;
  const { manifest, store } = ctx;
  ctx.stats = newCycleStats();
  const before = { ...store.requests };
  let error: Error | null = null;
  let settling: string[] = [];
  try {
    await step('format', () => loadFormat(store, manifest));
    if (opts.dryRun) await dryRun(ctx, opts);
    else settling = await cycleSteps(ctx, opts);
  } catch (err) {
    error = err as Error;
  }
  const requests = { ...store.requests };
  for (const k of Object.keys(requests) as (keyof RequestCounts)[]) requests[k] -= before[k];
  const record: CycleRecord = {
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    ok: error === null,
    error: error?.message ?? null,
    stats: ctx.stats,
    requests,
  };
  if (!opts.dryRun) {
    const previous = readStatus(config.stateDir, set.name);
    writeStatus(config.stateDir, {
      version: 1,
      set: set.name,
      mode: set.mode,
      role: set.role,
      node: config.node,
      nodeId: ctx.nodeId,
      root: set.path,
      store: store.location,
      publishedSeq: metaNumber(ctx, META.publishedSeq),
      pending: manifest.outboxSegments().reduce((n, s) => n + s.count, 0),
      lastCycle: record,
      lastSuccess: error ? (previous?.lastSuccess ?? null) : record.startedAt,
      peers: manifest.peers().map(peerStatus),
      updatedAt: new Date().toISOString(),
    });
    const line = { ...ctx.stats, requests, ms: record.durationMs };
    if (error) ctx.log.error({ ...line, err: error.message }, 'cycle failed');
    else if (opts.only === undefined || hasNews(ctx.stats)) ctx.log.info(line, 'cycle done');
  }
  if (!opts.session) await session.close();
  return { set: set.name, skipped: false, ok: error === null, error, record, settling };
}

/** A watcher's quiet polls are not worth a log line each. */
function hasNews(s: CycleStats): boolean {
  return s.published + s.applied + s.deleted + s.conflicts + s.rejected > 0;
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

/** The steps of a cycle; returns the files left to settle. */
async function cycleSteps(ctx: SetContext, opts: CycleOptions): Promise<string[]> {
  let settling: string[] = [];
  if (ctx.set.role !== 'subscribe') {
    const scan = await step('scan', () => scanTree(ctx, opts.only));
    settling = scan.settling;
    checkDeletions(ctx, scan.changes.filter((c) => c.entry.kind === 'deleted').length, scan.liveBefore, opts, 'publish');
    recordChanges(ctx, scan.changes, scan.restat);
  }
  if (ctx.set.role !== 'publish') {
    const batches = await step('pull', () => fetchPeers(ctx));
    const decisions = await step('plan', () => planBatches(ctx, batches, opts));
    const outcome = await step('apply', () => applyDecisions(ctx, decisions));
    const follow = [...outcome.keptAside, ...outcome.madeParents];
    if (follow.length > 0 && ctx.set.role !== 'subscribe') {
      const rescan = await step('record conflicts', () => scanTree(ctx, follow, { ignoreSettle: true }));
      recordChanges(ctx, rescan.changes, rescan.restat);
    }
    // Cursors move only once everything fetched is applied (or rejected for good), so a
    // store or disk failure is retried from the same place next cycle.
    if (outcome.retryable) throw new StepError('apply', outcome.retryable);
    saveCursors(ctx, batches);
  }
  if (ctx.set.role !== 'subscribe' && ctx.manifest.outboxSegments().length > 0) {
    await step('publish', () => publishOutbox(ctx));
  } else if (headDue(ctx)) {
    await step('head', () => writeHead(ctx, metaNumber(ctx, META.publishedSeq)));
  }
  return settling;
}

/**
 * Decides every path the received records touch. A path whose disk no longer matches the
 * manifest holds a local change no scan has recorded yet: it is recorded first (or, on a
 * new node, adopted when it already has the federation's content), so the decision treats
 * it as the concurrent version it is.
 */
async function planBatches(ctx: SetContext, batches: PeerBatch[], opts: CycleOptions): Promise<Decision[]> {
  const received = batches.flatMap((b) => b.records);
  for (const r of received) ctx.clock.observe(r.hlc);
  // What this node's `exclude` keeps out is node-local: never written from remote.
  const incoming = byPath(received.filter((r) => !ctx.excluded(r.path, r.kind === 'dir')));
  const dirty: string[] = [];
  for (const path of incoming.keys()) {
    const local = ctx.manifest.getEntry(path);
    if (!diskMatches(local, diskState(ctx.set.path, path))) dirty.push(path);
  }
  if (dirty.length > 0) {
    const scan = await scanTree(ctx, dirty, { ignoreSettle: true });
    recordChanges(ctx, adoptKnownContent(ctx, scan, incoming), scan.restat);
  }
  const decisions: Decision[] = [];
  for (const [path, records] of incoming) {
    const d = decide(path, ctx.manifest.getEntry(path), records, ctx.nodeId);
    if (d) decisions.push(d);
  }
  const deleting = decisions.filter((d) => d.op === 'delete').length;
  checkDeletions(ctx, deleting, ctx.manifest.liveCount(), opts, 'apply');
  return decisions;
}

/**
 * A file this node has never recorded that already holds what the federation says is at
 * its path (a new node set up from a copy) is taken as it is: no conflict, no transfer.
 */
function adoptKnownContent(ctx: SetContext, scan: ScanResult, incoming: Map<string, Entry[]>): ScanResult['changes'] {
  return scan.changes.filter((c) => {
    if (ctx.manifest.getEntry(c.entry.path)) return true;
    const last = incoming.get(c.entry.path)?.at(-1);
    if (!last || last.kind !== c.entry.kind || last.digest !== c.entry.digest || last.target !== c.entry.target) return true;
    // Recorded with an empty vector: every received version is newer, and has this content.
    ctx.manifest.putEntry({ ...c.entry, vv: {}, author: '' }, c.stat);
    return false;
  });
}

function saveCursors(ctx: SetContext, batches: PeerBatch[]): void {
  ctx.manifest.transaction(() => {
    for (const b of batches) {
      ctx.manifest.putPeer({ ...b.peer, cursor: b.through, headEtag: b.complete ? b.etag : b.peer.headEtag });
    }
    ctx.manifest.setMeta(META.hlc, ctx.clock.current);
  });
}

/** The max_delete rail: a cycle that would delete too much of the tree stops unless forced. */
function checkDeletions(ctx: SetContext, deletions: number, live: number, opts: CycleOptions, where: 'publish' | 'apply'): void {
  if (deletions === 0 || opts.force) return;
  const m = ctx.set.maxDelete;
  let limit: number;
  if (m.kind === 'count') limit = m.value;
  else if (live <= 10) return;
  else limit = Math.floor(m.value * live);
  if (deletions <= limit) return;
  const what = where === 'publish' ? 'publish the deletion of' : 'apply remote deletions of';
  throw new SafetyError(
    `set "${ctx.set.name}": refusing to ${what} ${deletions} of ${live} entries (max_delete is ${m.kind === 'count' ? m.value : `${Math.round(m.value * 100)}%`}). ` +
      `Check that ${ctx.set.path} is complete and mounted; if the deletion is intended, run \`fedsync run --set ${ctx.set.name} --force\``,
  );
}

async function dryRun(ctx: SetContext, opts: CycleOptions): Promise<void> {
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const scan = ctx.set.role === 'subscribe' ? null : await step('scan', () => scanTree(ctx));
  const overlay = new Map((scan?.changes ?? []).map((c) => [c.entry.path, { ...c.entry, stat: c.stat }]));
  for (const c of scan?.changes ?? []) print(`publish  ${symbol(c.entry.kind, ctx.manifest.getEntry(c.entry.path)?.kind)} ${c.entry.path}`);
  const pending = ctx.manifest.outboxSegments().reduce((n, s) => n + s.count, 0);
  if (pending > 0) print(`publish  ${pending} change(s) already queued from an earlier run`);
  if (ctx.set.role !== 'publish') {
    const batches = await step('pull', () => fetchPeers(ctx));
    for (const [path, records] of byPath(batches.flatMap((b) => b.records))) {
      const d = decide(path, overlay.get(path) ?? ctx.manifest.getEntry(path), records, ctx.nodeId);
      if (!d || d.op === 'record') continue;
      const from = batches.find((b) => b.head.node === d.final.author)?.head.name || d.final.author;
      print(`apply    ${d.op === 'delete' ? '-' : symbol(d.final.kind, d.local?.kind)} ${path} (from ${from})${d.keepLocal ? ' [conflict: local copy kept]' : ''}`);
    }
  }
  print(`dry run: nothing was changed (${ctx.set.name})`);
}

function symbol(kind: string, before: string | undefined): string {
  if (kind === 'deleted') return '-';
  return !before || before === 'deleted' ? '+' : 'M';
}
