// Helpers for the end-to-end tests of `fedsync watch` (and the propagation benchmark): nodes as
// separate processes of the built binary, each with its own root, state directory, log and
// config; stores (s3rver, Ceph RGW, file://); tree snapshots for equality checks.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createBucket, freshBucketName, rgwTargetFromEnv, type S3Target } from '../support/s3.js';
import { startS3rver } from '../support/s3rver.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = process.env.FEDSYNC_E2E_BIN ?? join(REPO, 'bin', 'fedsync');

// ---------------------------------------------------------------------------------------------
// Stores

/** Where the nodes of one test meet; `fresh()` gives each test its own empty store. */
export interface StoreBackend {
  name: string;
  /** A new, empty store location: the `[store]` table's keys and the env the nodes need. */
  fresh(): { store: Record<string, string | boolean>; env: Record<string, string> };
  /** The S3 target (for a proxy in front of it), when this is an S3 store. */
  s3?: S3Target;
  /** Puts the nodes behind `endpoint` (a proxy) instead of the server itself. */
  withEndpoint?(endpoint: string): StoreBackend;
  stop(): Promise<void>;
}

function s3Backend(target: S3Target, bucket: string, stop: () => Promise<void>, endpoint = target.endpoint): StoreBackend {
  let n = 0;
  const run = Math.random().toString(36).slice(2, 8);
  return {
    name: target.name,
    s3: target,
    fresh: () => ({
      store: { url: `s3://${bucket}/t-${run}-${++n}`, endpoint, region: target.region, force_path_style: true },
      env: { AWS_ACCESS_KEY_ID: target.accessKeyId, AWS_SECRET_ACCESS_KEY: target.secretAccessKey, AWS_REGION: target.region },
    }),
    withEndpoint: (e) => s3Backend(target, bucket, async () => {}, e),
    stop,
  };
}

export async function s3rverBackend(): Promise<StoreBackend> {
  const server = await startS3rver();
  const bucket = freshBucketName('fedsync-watch');
  await createBucket(server, bucket);
  return s3Backend(server, bucket, () => server.stop());
}

export async function rgwBackend(target: S3Target): Promise<StoreBackend> {
  const bucket = freshBucketName('fedsync-watch');
  await createBucket(target, bucket);
  return s3Backend(target, bucket, async () => {});
}

export function fileBackend(): StoreBackend {
  const dir = mkdtempSync(join(tmpdir(), 'fedsync-watch-store-'));
  let n = 0;
  return {
    name: 'file',
    fresh: () => ({ store: { url: `file://${dir}/t${++n}` }, env: {} }),
    stop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The backends to run: s3rver and file:// always, RGW when test/support/rgw.sh's exports are set. */
export function backendsFromEnv(): { name: string; start: (() => Promise<StoreBackend>) | null; skip?: string }[] {
  const rgw = rgwTargetFromEnv();
  return [
    { name: 's3rver', start: s3rverBackend },
    rgw
      ? { name: 'rgw', start: () => rgwBackend(rgw) }
      : { name: 'rgw', start: null, skip: 'FEDSYNC_TEST_RGW_ENDPOINT not set (eval "$(bash test/support/rgw.sh start DIR)")' },
    { name: 'file', start: async () => fileBackend() },
  ];
}

// ---------------------------------------------------------------------------------------------
// Nodes

export interface SetSpec {
  name: string;
  /** Extra `[[sync]]` keys (durations as strings). */
  keys?: Record<string, string | number | boolean | string[]>;
}

export interface NodeOptions {
  sets: SetSpec[];
  /** Keys every set gets unless its spec overrides them. */
  defaults?: Record<string, string | number | boolean | string[]>;
  logLevel?: string;
}

/** One node of a test federation: its own directory with roots, state, log and config. */
export class Node {
  readonly dir: string;
  readonly config: string;
  readonly stateDir: string;
  readonly logFile: string;
  readonly env: Record<string, string>;
  /** Root of each set, by set name. */
  readonly roots: Record<string, string> = {};
  daemon: Daemon | null = null;

  constructor(
    base: string,
    readonly name: string,
    location: ReturnType<StoreBackend['fresh']>,
    opts: NodeOptions,
  ) {
    this.dir = join(base, name);
    this.stateDir = join(this.dir, 'state');
    this.logFile = join(this.dir, 'log', 'fedsync.log');
    this.config = join(this.dir, 'fedsync.toml');
    this.env = location.env;
    const lines = [
      `node = ${toml(name)}`,
      `state_dir = ${toml(this.stateDir)}`,
      `log_file = ${toml(this.logFile)}`,
      `log_level = ${toml(opts.logLevel ?? 'info')}`,
      '',
      '[store]',
      ...Object.entries(location.store).map(([k, v]) => `${k} = ${toml(v)}`),
    ];
    for (const set of opts.sets) {
      const root = join(this.dir, 'roots', set.name);
      mkdirSync(root, { recursive: true });
      this.roots[set.name] = root;
      const keys = { mode: 'lightweight', ...opts.defaults, ...set.keys };
      lines.push('', '[[sync]]', `name = ${toml(set.name)}`, `path = ${toml(root)}`, ...Object.entries(keys).map(([k, v]) => `${k} = ${toml(v)}`));
    }
    writeFileSync(this.config, `${lines.join('\n')}\n`);
  }

  /** The root of the only (or the named) set. */
  root(set?: string): string {
    const names = Object.keys(this.roots);
    return this.roots[set ?? names[0]!]!;
  }

  /**
   * Runs `fedsync -c <config> <args>` to completion. Asynchronous on purpose: a proxy in this
   * process must go on serving while the command runs.
   */
  fedsync(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = track(spawn(process.execPath, [BIN, '-c', this.config, ...args], { env: childEnv(this.env), stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  async init(): Promise<void> {
    const r = await this.fedsync(['init']);
    if (r.code !== 0) throw new Error(`fedsync init on ${this.name} exited ${r.code}: ${r.stderr}${r.stdout}`);
  }

  /** Starts `fedsync -c <config> watch [args]`; it runs until stopped. */
  start(args: string[] = []): Daemon {
    if (this.daemon?.running) throw new Error(`${this.name}: daemon already running`);
    this.daemon = new Daemon(this, track(spawn(process.execPath, [BIN, '-c', this.config, 'watch', ...args], { env: childEnv(this.env), stdio: ['ignore', 'pipe', 'pipe'] })));
    return this.daemon;
  }

  /** Log lines (parsed JSON) of the current log file. */
  logLines(file = this.logFile): LogLine[] {
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        try {
          return JSON.parse(l) as LogLine;
        } catch {
          return { msg: l } as LogLine;
        }
      });
  }
}

export interface LogLine {
  level: string;
  time: string;
  msg: string;
  [k: string]: unknown;
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, AWS_EC2_METADATA_DISABLED: 'true' };
  for (const k of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'FEDSYNC_CONFIG']) if (!(k in extra)) delete env[k];
  return env;
}

function toml(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(toml).join(', ')}]`;
  return String(v);
}

// Children still running when this process exits (a failed assertion, a timeout, Ctrl-C) are
// killed, so no daemon outlives the test run that started it.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of live) c.kill('SIGKILL');
    process.kill(process.pid, sig);
  });
}
function track(c: ChildProcess): ChildProcess {
  live.add(c);
  c.once('exit', () => live.delete(c));
  return c;
}

/** A running `fedsync watch`. */
export class Daemon {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly node: Node,
    readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (d: Buffer) => (this.stdout = (this.stdout + d.toString()).slice(-20_000)));
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-20_000)));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** Sends `signal` and waits for the exit, at most `timeoutMs` (then SIGKILL, and an error). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const t0 = Date.now();
    if (this.running) this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.exited, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)))]);
    clearTimeout(timer);
    if (!r) {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`${this.node.name}: daemon did not exit within ${timeoutMs} ms of ${signal}\n${this.stderr}`);
    }
    return { ...r, ms: Date.now() - t0 };
  }

  /** kill -9, and wait for it to be gone. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** What the node's manifest says of each path (kind and digest), read while its daemon runs. */
export function manifestEntries(node: Node, set?: string): Map<string, { kind: string; digest: string | null }> {
  const name = set ?? Object.keys(node.roots)[0]!;
  const db = new Database(join(node.stateDir, name, 'manifest.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT path, kind, digest FROM files').all() as { path: string; kind: string; digest: string | null }[];
    return new Map(rows.map((r) => [r.path, { kind: r.kind, digest: r.digest }]));
  } finally {
    db.close();
  }
}

/**
 * Why A and B differ, path by path: a local change A's daemon never recorded (its manifest
 * disagrees with its disk: the watcher missed it), or something B has not applied.
 */
export function explainDivergence(a: Node, b: Node, set?: string, max = 8): string {
  const ta = snapshot(a.root(set));
  const tb = snapshot(b.root(set));
  const ma = manifestEntries(a, set);
  const mb = manifestEntries(b, set);
  const missedByA: string[] = [];
  const notApplied: string[] = [];
  const paths = new Set([...ta.keys(), ...tb.keys()]);
  for (const p of paths) {
    const ea = ta.get(p);
    const eb = tb.get(p);
    if (JSON.stringify(ea) === JSON.stringify(eb)) continue;
    const rec = ma.get(p);
    const disk = !ea ? 'deleted' : ea.kind;
    const recorded = !rec ? 'deleted' : rec.kind;
    const sameOnA = disk === recorded && (disk !== 'file' || rec?.digest === ea?.content);
    if (!sameOnA) missedByA.push(`${p} (A's disk: ${disk}, A's manifest: ${rec ? recorded : 'never recorded'})`);
    else notApplied.push(`${p} (B's manifest: ${mb.get(p)?.kind ?? 'never recorded'})`);
  }
  const show = (l: string[]) => l.slice(0, max).join('; ') + (l.length > max ? `; ... (${l.length} in all)` : '');
  const out: string[] = [];
  if (missedByA.length) out.push(`${missedByA.length} local change(s) A's daemon never recorded (its watcher missed them): ${show(missedByA)}`);
  if (notApplied.length) out.push(`${notApplied.length} path(s) A recorded that B does not have yet: ${show(notApplied)}`);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// A federation of nodes for one test

export class Federation {
  readonly base: string;
  readonly nodes: Node[] = [];
  private readonly location: ReturnType<StoreBackend['fresh']>;

  constructor(
    readonly backend: StoreBackend,
    label = 'fed',
  ) {
    this.base = mkdtempSync(join(tmpdir(), `fedsync-watch-${label}-`));
    this.location = backend.fresh();
  }

  /** A node with its config written and `fedsync init` done. */
  async add(name: string, opts: NodeOptions): Promise<Node> {
    const node = new Node(this.base, name, this.location, opts);
    await node.init();
    this.nodes.push(node);
    return node;
  }

  /** Stops every daemon still running (SIGKILL if it does not exit) and removes the files. */
  async close(keep = process.env.FEDSYNC_KEEP_E2E === '1'): Promise<void> {
    for (const n of this.nodes) {
      if (n.daemon?.running) await n.daemon.stop('SIGTERM', 10_000).catch(() => n.daemon?.kill());
    }
    if (keep) process.stderr.write(`kept ${this.base}\n`);
    else rmSync(this.base, { recursive: true, force: true });
  }

  /** Every node's daemon stderr and the tail of its log, for a failure message. */
  diagnostics(): string {
    return this.nodes
      .map((n) => {
        const tail = n
          .logLines()
          .slice(-15)
          .map((l) => JSON.stringify(l))
          .join('\n');
        return `--- ${n.name} stderr:\n${n.daemon?.stderr ?? ''}\n--- ${n.name} log tail:\n${tail}`;
      })
      .join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Trees

export interface TreeEntry {
  kind: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  /** Files: sha256 of the content; symlinks: the target. */
  content?: string;
  size?: number;
  /** Files: mtime in ms (floor of the ns value), as fedsync carries it. */
  mtimeMs?: number;
}

export type Tree = Map<string, TreeEntry>;

const hashCache = new Map<string, string>();

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Every entry under `root` except `.fedsync/`: kind, permission bits, and for files the
 * sha256, size and mtime in ms (hashes are cached by path and full stat, so polling a large
 * tree costs little more than its lstat calls).
 */
export function snapshot(root: string): Tree {
  const out: Tree = new Map();
  const walk = (rel: string) => {
    let names: string[];
    try {
      names = readdirSync(rel ? join(root, rel) : root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // renamed or deleted while walking
      throw err;
    }
    for (const name of names) {
      if (!rel && name === '.fedsync') continue;
      const p = rel ? `${rel}/${name}` : name;
      const abs = join(root, p);
      const st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
      if (!st) continue;
      const mode = Number(st.mode) & 0o777;
      if (st.isDirectory()) {
        out.set(p, { kind: 'dir', mode });
        walk(p);
      } else if (st.isFile()) {
        const key = `${abs}\0${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}`;
        let h = hashCache.get(key);
        if (h === undefined) {
          try {
            h = sha256(readFileSync(abs));
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
            throw err;
          }
          hashCache.set(key, h);
        }
        out.set(p, { kind: 'file', mode, content: h, size: Number(st.size), mtimeMs: Number(st.mtimeNs / 1_000_000n) });
      } else if (st.isSymbolicLink()) out.set(p, { kind: 'symlink', mode: 0o777, content: readlinkSync(abs) });
      else out.set(p, { kind: 'other', mode });
    }
  };
  walk('');
  if (hashCache.size > 200_000) hashCache.clear();
  return out;
}

/** Differences between two trees, as a short text ('' when equal). */
export function treeDiff(a: Tree, b: Tree, names = ['A', 'B'], max = 10): string {
  const missing: string[] = [];
  const extra: string[] = [];
  const differ: string[] = [];
  for (const [p, e] of a) {
    const o = b.get(p);
    if (!o) missing.push(p);
    else if (JSON.stringify(e) !== JSON.stringify(o)) differ.push(`${p}: ${JSON.stringify(e)} vs ${JSON.stringify(o)}`);
  }
  for (const p of b.keys()) if (!a.has(p)) extra.push(p);
  if (missing.length + extra.length + differ.length === 0) return '';
  const show = (l: string[]) => l.slice(0, max).join(', ') + (l.length > max ? `, ... (${l.length} in all)` : '');
  const parts = [];
  if (missing.length) parts.push(`${missing.length} only on ${names[0]}: ${show(missing)}`);
  if (extra.length) parts.push(`${extra.length} only on ${names[1]}: ${show(extra)}`);
  if (differ.length) parts.push(`${differ.length} differ (${names[0]} vs ${names[1]}): ${show(differ)}`);
  return parts.join('\n');
}

/** Counts of files and directories in a tree. */
export function counts(t: Tree): { files: number; dirs: number } {
  let files = 0;
  let dirs = 0;
  for (const e of t.values()) {
    if (e.kind === 'dir') dirs++;
    else files++;
  }
  return { files, dirs };
}

/**
 * Waits until every root in `others` equals `root` (snapshots taken back to back), at most
 * `timeoutMs`. Returns the milliseconds it took; throws with the remaining difference.
 */
export async function converge(root: string, others: string[], timeoutMs: number, what = 'trees'): Promise<number> {
  const t0 = Date.now();
  let diff = '';
  for (;;) {
    const ts = Date.now();
    const a = snapshot(root);
    diff = others.map((o) => treeDiff(a, snapshot(o))).filter(Boolean).join('\n');
    if (!diff) {
      // Equal at one instant; equal again a moment later means nothing was still in flight.
      await sleep(100);
      const again = snapshot(root);
      diff = others.map((o) => treeDiff(again, snapshot(o))).filter(Boolean).join('\n');
      if (!diff) return Date.now() - t0;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what} did not converge within ${timeoutMs} ms:\n${diff}`);
    // Comparing large trees costs CPU the daemons need: at most a quarter of the time.
    await sleep(Math.max(200, 3 * (Date.now() - ts)));
  }
}

/** Polls `cond` every `everyMs` until it returns truthy or `timeoutMs` passes. */
export async function waitFor<T>(cond: () => T | Promise<T>, timeoutMs: number, what: string, everyMs = 100): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
