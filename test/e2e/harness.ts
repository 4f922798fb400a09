// End-to-end harness: federations of real `fedsync` processes (the built binary, one process per
// command, exactly as cron runs it) sharing one bucket on a real S3 server over HTTP.
//
// - servers(): the S3 servers a test file runs against (s3rver always, Ceph RGW when
//   test/support/rgw.sh's FEDSYNC_TEST_RGW_* are set; FEDSYNC_REQUIRE_RGW=1 makes it mandatory);
// - Federation.create(): N nodes, each with a root, a state dir, a log file and a config file,
//   on a fresh bucket, `fedsync init` run on each;
// - FedNode.run()/fedsync()/spawn(): async child processes with captured output and a timeout;
// - snapshotTree()/diffTrees()/assertTreesEqual(): what is on disk, compared field by field;
// - bucket inspection: keys, objects, journals (gunzipped segments).
//
// Environment knobs: FEDSYNC_E2E_BIN runs another build of the CLI (default: bin/fedsync of this
// checkout); FEDSYNC_E2E_KEEP=1 keeps the temp directories for a post-mortem.
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { createBucket, freshBucketName, rgwTargetFromEnv, testClient, type S3Target } from '../support/s3.js';
import { startS3rver } from '../support/s3rver.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = process.env.FEDSYNC_E2E_BIN ?? join(REPO, 'bin', 'fedsync');
const KEEP = process.env.FEDSYNC_E2E_KEEP === '1';

// ---------------------------------------------------------------------------------------------
// Servers

export interface Server {
  name: string;
  /** Starts the server (or attaches to it) for one test file. */
  start(): Promise<S3Target & { stop(): Promise<void> }>;
}

/**
 * The servers every e2e file runs against. When RGW is absent, a skipped test says so, or a
 * failing one under FEDSYNC_REQUIRE_RGW=1 (CI must not pass by silently testing less).
 */
export function servers(what: string): Server[] {
  const list: Server[] = [{ name: 's3rver', start: () => startS3rver() }];
  const rgw = rgwTargetFromEnv();
  if (rgw) list.push({ name: 'rgw', start: async () => ({ ...rgw, stop: async () => {} }) });
  else if (process.env.FEDSYNC_REQUIRE_RGW === '1') {
    it(`${what} on rgw: Ceph RGW is required (FEDSYNC_REQUIRE_RGW=1)`, () =>
      assert.fail('FEDSYNC_TEST_RGW_ENDPOINT/ACCESS_KEY/SECRET_KEY are not set: eval "$(bash test/support/rgw.sh start DIR)"'));
  } else {
    it(`${what} on rgw`, { skip: 'FEDSYNC_TEST_RGW_* not set (eval "$(bash test/support/rgw.sh start DIR)")' }, () => {});
  }
  return list;
}

/**
 * One real S3 server for suites whose subject is not the server (local crashes, encryption):
 * RGW where it is configured, else s3rver. The store's own behaviour, and the code paths where
 * servers differ (conditional writes), are covered by the suites that run on every server.
 */
export function oneServer(what: string): Server[] {
  const all = servers(what);
  return all.length > 1 ? all.filter((s) => s.name === 'rgw') : all;
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface CommandResult {
  args: string[];
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  pid: number;
}

export interface RunningCommand {
  child: ChildProcess;
  pid: number;
  done: Promise<CommandResult>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts `node BIN ...args` with `env`; `done` settles when it exits (or is killed at `timeoutMs`). */
export function spawnFedsync(args: string[], env: NodeJS.ProcessEnv, opts: { timeoutMs?: number; cwd?: string } = {}): RunningCommand {
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, ...args], { env, cwd: opts.cwd ?? tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let timedOut = false;
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise<CommandResult>((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = { args, code, signal, stdout, stderr, ms: Math.round(performance.now() - started), pid: child.pid ?? -1 };
      if (timedOut) reject(new Error(`fedsync ${args.join(' ')} did not finish within ${timeoutMs} ms\n${describeResult(result)}`));
      else resolve(result);
    });
  });
  return { child, pid: child.pid ?? -1, done, kill: (signal = 'SIGKILL') => void child.kill(signal) };
}

export function describeResult(r: CommandResult): string {
  const indent = (s: string) => s.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');
  return (
    `  fedsync ${r.args.join(' ')} -> ${r.code === null ? `killed by ${r.signal}` : `exit ${r.code}`} in ${r.ms} ms\n` +
    (r.stdout.trim() ? `  stdout:\n${indent(r.stdout)}\n` : '') +
    (r.stderr.trim() ? `  stderr:\n${indent(r.stderr)}\n` : '')
  );
}

/** Throws with the command's whole output unless it exited 0. */
export function assertOk(r: CommandResult, what = 'fedsync'): CommandResult {
  if (r.code !== 0) assert.fail(`${what} failed:\n${describeResult(r)}`);
  return r;
}

const SDK_WARNING = /^\(node:\d+\) Warning: NodeVersionSupportWarning[\s\S]*?\(Use `node --trace-warnings \.\.\.` to show where the warning was created\)\n?/m;

/**
 * stderr without the AWS SDK's Node-version warning (which fedsync does not suppress; see
 * safety.test.ts), as lines. For asserting what fedsync itself says.
 */
export function ownStderrLines(r: CommandResult): string[] {
  return r.stderr.replace(SDK_WARNING, '').split('\n').filter((l) => l.trim() !== '');
}

// ---------------------------------------------------------------------------------------------
// Federations

export interface FederationOptions {
  /** Node names (also their `node =` names in the config). */
  nodes: string[];
  /** The sync set's name. */
  setName?: string;
  /** Store prefix inside the bucket. */
  prefix?: string;
  /** `settle` of the set (default "0s": tests write, then run). */
  settle?: string;
  /** More keys for the [[sync]] table, written as TOML values. */
  sync?: Record<string, string | number | boolean>;
  /** The S3 endpoint fedsync talks to (a counting proxy), default the server itself. */
  endpoint?: string;
  logLevel?: string;
  /** Run `fedsync init` on every node (default true). */
  init?: boolean;
  /** Extra environment per node name, for every command it runs (e.g. faketimeEnv()). */
  nodeEnv?: Record<string, NodeJS.ProcessEnv>;
}

const tomlValue = (v: string | number | boolean) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

/** One node of a federation: its directories, its config and its commands. */
export class FedNode {
  readonly dir: string;
  readonly root: string;
  readonly stateDir: string;
  readonly logFile: string;
  readonly config: string;
  /** Set by init (parsed from its output). */
  id = '';
  /** Added to the environment of every command this node runs. */
  extraEnv: NodeJS.ProcessEnv;

  constructor(
    readonly fed: Federation,
    readonly name: string,
  ) {
    this.dir = join(fed.dir, name);
    this.root = join(this.dir, 'root');
    this.stateDir = join(this.dir, 'state');
    this.logFile = join(this.dir, 'fedsync.log');
    this.config = join(this.dir, 'fedsync.toml');
    this.extraEnv = fed.options.nodeEnv?.[name] ?? {};
  }

  writeConfig(endpoint: string): void {
    const o = this.fed.options;
    const sync = { settle: o.settle ?? '0s', ...o.sync };
    const lines = [
      `node = ${tomlValue(this.name)}`,
      `state_dir = ${tomlValue(this.stateDir)}`,
      `log_file = ${tomlValue(this.logFile)}`,
      `log_level = ${tomlValue(o.logLevel ?? 'info')}`,
      '',
      '[store]',
      `url = ${tomlValue(`s3://${this.fed.bucket}/${this.fed.prefix}`)}`,
      `endpoint = ${tomlValue(endpoint)}`,
      `region = ${tomlValue(this.fed.target.region)}`,
      'force_path_style = true',
      '',
      '[[sync]]',
      `name = ${tomlValue(this.fed.setName)}`,
      `path = ${tomlValue(this.root)}`,
      'mode = "heavyweight"',
      ...Object.entries(sync).map(([k, v]) => `${k} = ${tomlValue(v)}`),
      '',
    ];
    writeFileSync(this.config, lines.join('\n'));
  }

  /** The environment a user's cron job would give fedsync: AWS credentials, no CA bundle. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) {
      if (k.startsWith('AWS_') || k.startsWith('FEDSYNC_') || k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST')) delete env[k];
    }
    env.AWS_ACCESS_KEY_ID = this.fed.target.accessKeyId;
    env.AWS_SECRET_ACCESS_KEY = this.fed.target.secretAccessKey;
    env.AWS_EC2_METADATA_DISABLED = 'true';
    env.HOME = this.dir; // no ~/.aws of the machine's user
    return { ...env, ...this.extraEnv, ...extra };
  }

  /** Any fedsync command with this node's config. */
  spawn(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): RunningCommand {
    return spawnFedsync(['-c', this.config, ...args], this.env(opts.env), { timeoutMs: opts.timeoutMs, cwd: this.dir });
  }

  fedsync(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
    return this.spawn(args, opts).done;
  }

  /** `fedsync run [args]`, which must succeed. */
  async run(args: string[] = [], opts: { timeoutMs?: number } = {}): Promise<CommandResult> {
    return assertOk(await this.fedsync(['run', ...args], opts), `${this.name}: fedsync run ${args.join(' ')}`);
  }

  async init(): Promise<void> {
    const r = assertOk(await this.fedsync(['init']), `${this.name}: fedsync init`);
    const m = /\(([a-z2-7]{26})\)/.exec(r.stdout);
    assert.ok(m, `init printed no node id:\n${describeResult(r)}`);
    this.id = m[1]!;
  }

  /** The JSON lines of this node's log file. */
  logLines(): Record<string, unknown>[] {
    if (!existsSync(this.logFile)) return [];
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  snapshot(): Tree {
    return snapshotTree(this.root);
  }

  abs(rel: string): string {
    return join(this.root, rel);
  }
}

export class Federation {
  readonly dir: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly setName: string;
  readonly nodes: FedNode[];
  readonly s3: S3Client;

  private constructor(
    readonly target: S3Target,
    readonly options: FederationOptions,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'fedsync-e2e-'));
    this.bucket = freshBucketName('fedsync-e2e');
    this.prefix = options.prefix ?? 'fed';
    this.setName = options.setName ?? 'www';
    this.nodes = options.nodes.map((n) => new FedNode(this, n));
    this.s3 = testClient(target);
  }

  static async create(target: S3Target, options: FederationOptions): Promise<Federation> {
    const fed = new Federation(target, options);
    await createBucket(target, fed.bucket);
    for (const n of fed.nodes) {
      mkdirSync(n.root, { recursive: true });
      mkdirSync(n.stateDir, { recursive: true });
      n.writeConfig(options.endpoint ?? target.endpoint);
    }
    // One at a time: the first writes format.json, the others join.
    if (options.init !== false) for (const n of fed.nodes) await n.init();
    return fed;
  }

  node(name: string): FedNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** The set's prefix in the bucket: `<prefix>/<set>/`. */
  get setPrefix(): string {
    return `${this.prefix}/${this.setName}/`;
  }

  /** Every object under the set's prefix (keys relative to it), with ETags. */
  async listObjects(sub = ''): Promise<{ key: string; etag: string; size: number }[]> {
    const out: { key: string; etag: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const res = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.setPrefix + sub, ContinuationToken: token }));
      for (const o of res.Contents ?? []) out.push({ key: o.Key!.slice(this.setPrefix.length), etag: o.ETag ?? '', size: o.Size ?? 0 });
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async getObject(key: string): Promise<Buffer | null> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.setPrefix + key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw err;
    }
  }

  async putObject(key: string, body: Buffer | string): Promise<void> {
    const Body = typeof body === 'string' ? Buffer.from(body) : body;
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.setPrefix + key, Body, ContentLength: Body.length }));
  }

  async head(nodeId: string): Promise<{ seq: number; acks: Record<string, number> } & Record<string, unknown>> {
    const body = await this.getObject(`heads/${nodeId}.json`);
    assert.ok(body, `no head for ${nodeId}`);
    return JSON.parse(body.toString()) as { seq: number; acks: Record<string, number> };
  }

  /** Every segment of a node's journal, gunzipped and parsed, in seq order. */
  async journal(nodeId: string): Promise<JournalSegment[]> {
    const keys = (await this.listObjects(`journal/${nodeId}/`)).map((o) => o.key).sort();
    const out: JournalSegment[] = [];
    for (const key of keys) {
      const body = await this.getObject(key);
      assert.ok(body, `segment ${key} vanished`);
      const lines = gunzipSync(body).toString('utf8').split('\n').filter(Boolean);
      const header = JSON.parse(lines[0]!) as JournalSegment['header'];
      out.push({ key, seq: Number(key.split('/').pop()), header, records: lines.slice(1).map((l) => JSON.parse(l) as JournalRecord) });
    }
    return out;
  }

  async close(): Promise<void> {
    this.s3.destroy();
    if (!KEEP) rmSync(this.dir, { recursive: true, force: true });
    else console.log(`# kept ${this.dir} (bucket ${this.bucket})`);
  }
}

export interface JournalRecord {
  path: string;
  kind: string;
  digest?: string;
  size: number;
  mode: number;
  mtime: number;
  target?: string;
  vv: Record<string, number>;
  hlc: string;
  author: string;
}

export interface JournalSegment {
  key: string;
  seq: number;
  header: { fedsync: string; v: number; node: string; seq: number; count: number };
  records: JournalRecord[];
}

/**
 * Asserts no (path, vv) appears twice in one node's journal, and that its segments are
 * 1..head.seq; with `pruned`, housekeeping may have deleted a prefix, so they are first..head.seq.
 */
export async function assertJournalClean(fed: Federation, node: FedNode, opts: { pruned?: boolean } = {}): Promise<number> {
  const segments = await fed.journal(node.id);
  const seen = new Map<string, string>();
  const dups: string[] = [];
  let records = 0;
  const first = opts.pruned && segments.length > 0 ? segments[0]!.seq : 1;
  segments.forEach((s, i) => {
    assert.equal(s.seq, first + i, `${node.name}'s journal has a gap: segment #${i} is ${s.key}`);
    assert.equal(s.header.seq, s.seq, `${s.key}: header seq ${s.header.seq}`);
    assert.equal(s.header.node, node.id, `${s.key}: header node ${s.header.node}`);
    assert.equal(s.header.count, s.records.length, `${s.key}: header count ${s.header.count}, ${s.records.length} records`);
    for (const r of s.records) {
      records++;
      const key = `${r.path}\0${JSON.stringify(sortKeys(r.vv))}`;
      const prev = seen.get(key);
      if (prev) dups.push(`${JSON.stringify(r.path)} vv ${JSON.stringify(r.vv)} in ${prev} and ${s.key}`);
      else seen.set(key, s.key);
    }
  });
  assert.deepEqual(dups, [], `${node.name}'s journal publishes records twice:\n  ${dups.slice(0, 20).join('\n  ')}`);
  if (segments.length > 0) {
    const head = await fed.head(node.id);
    const last = first + segments.length - 1;
    assert.equal(head.seq, last, `${node.name}'s head says seq ${head.seq}, the journal ends at segment ${last}`);
  }
  return records;
}

function sortKeys(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}

// ---------------------------------------------------------------------------------------------
// Trees

export interface TreeEntry {
  kind: 'file' | 'dir' | 'symlink' | 'other';
  sha256?: string;
  size?: number;
  /** Permission bits (and set-id/sticky). */
  mode: number;
  /** Modification time, whole milliseconds (floor of the nanoseconds). */
  mtime: number;
  target?: string;
}

export type Tree = Map<string, TreeEntry>;

export const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** Every entry under `root` (the root's own `.fedsync/` aside), keyed by `/`-separated path. */
export function snapshotTree(root: string): Tree {
  const out: Tree = new Map();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      if (rel === '' && name === '.fedsync') continue;
      const p = rel ? `${rel}/${name}` : name;
      const abs = join(root, p);
      const st = lstatSync(abs, { bigint: true });
      const base = { mode: Number(st.mode & 0o7777n), mtime: Number(st.mtimeNs / 1_000_000n) };
      if (st.isDirectory()) {
        out.set(p, { kind: 'dir', ...base });
        walk(p);
      } else if (st.isSymbolicLink()) out.set(p, { kind: 'symlink', ...base, target: readlinkSync(abs) });
      else if (st.isFile()) {
        const body = readFileSync(abs);
        out.set(p, { kind: 'file', ...base, sha256: sha256(body), size: body.length });
      } else out.set(p, { kind: 'other', ...base });
    }
  };
  walk('');
  return out;
}

/** What must agree between nodes: files by content, mode and mtime; dirs by mode; symlinks by target. */
function comparable(e: TreeEntry): Record<string, unknown> {
  switch (e.kind) {
    case 'file':
      return { kind: e.kind, sha256: e.sha256, size: e.size, mode: e.mode.toString(8), mtime: e.mtime };
    case 'dir':
      return { kind: e.kind, mode: e.mode.toString(8) };
    case 'symlink':
      return { kind: e.kind, target: e.target };
    default:
      return { kind: e.kind };
  }
}

/** Whether two entries agree on what must agree between nodes (see comparable). */
export function sameEntry(a: TreeEntry | undefined, b: TreeEntry | undefined): boolean {
  if (!a || !b) return a === b;
  return JSON.stringify(comparable(a)) === JSON.stringify(comparable(b));
}

function show(e: TreeEntry | undefined): string {
  if (!e) return '(absent)';
  const c = comparable(e);
  if (typeof c.sha256 === 'string') c.sha256 = c.sha256.slice(0, 12);
  return JSON.stringify(c);
}

/** Readable differences between two trees (empty when they agree). */
export function diffTrees(a: Tree, b: Tree, la = 'a', lb = 'b'): string[] {
  const out: string[] = [];
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const p of paths) {
    const x = a.get(p);
    const y = b.get(p);
    if (x && y && JSON.stringify(comparable(x)) === JSON.stringify(comparable(y))) continue;
    let note = '';
    if (x?.kind === 'file' && y?.kind === 'file' && x.sha256 === y.sha256 && x.mode === y.mode) note = `  [mtime differs by ${y.mtime - x.mtime} ms]`;
    out.push(`${JSON.stringify(p)}\n      ${la}: ${show(x)}\n      ${lb}: ${show(y)}${note}`);
  }
  return out;
}

/** Asserts every tree equals the first, listing every difference (up to 60) when not. */
export function assertTreesEqual(trees: { name: string; tree: Tree }[], context = ''): void {
  const [first, ...rest] = trees;
  const problems: string[] = [];
  for (const t of rest) {
    const d = diffTrees(first!.tree, t.tree, first!.name, t.name);
    if (d.length) {
      const mtimeOnly = d.filter((l) => l.includes('[mtime differs')).length;
      problems.push(
        `${first!.name} vs ${t.name}: ${d.length} path(s) differ${mtimeOnly ? ` (${mtimeOnly} of them only in mtime)` : ''}:\n    ` +
          d.slice(0, 60).join('\n    ') +
          (d.length > 60 ? `\n    ... and ${d.length - 60} more` : ''),
      );
    }
  }
  if (problems.length) assert.fail(`trees differ${context ? ` (${context})` : ''}:\n  ${problems.join('\n  ')}`);
}

/** Files and directories under a root (relative paths, `.fedsync/` aside), sorted. */
export function listRoot(root: string): { files: string[]; dirs: string[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      if (rel === '' && name === '.fedsync') continue;
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      if (st.isDirectory()) {
        dirs.push(p);
        walk(p);
      } else if (st.isFile()) files.push(p);
    }
  };
  walk('');
  return { files, dirs };
}

/** Hash of a whole directory tree (content, kinds, modes, mtimes, targets), for "nothing changed". */
export function treeDigest(root: string, opts: { includeMarker?: boolean } = {}): string {
  const tree = opts.includeMarker ? snapshotAll(root) : snapshotTree(root);
  return sha256(JSON.stringify([...tree.entries()]));
}

function snapshotAll(root: string): Tree {
  const out: Tree = new Map();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p), { bigint: true });
      const e: TreeEntry = { kind: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other', mode: Number(st.mode & 0o7777n), mtime: Number(st.mtimeNs / 1_000_000n) };
      if (e.kind === 'file') e.sha256 = sha256(readFileSync(join(root, p)));
      if (e.kind === 'symlink') e.target = readlinkSync(join(root, p));
      out.set(p, e);
      if (e.kind === 'dir') walk(p);
    }
  };
  walk('');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Randomness

/** A small seeded PRNG (sfc32), so a failing run can be replayed from its printed seed. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    this.d >>>= 0;
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    assert.ok(items.length > 0, 'pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One of `items`, each as likely as its weight. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    let x = this.next() * items.reduce((s, [w]) => s + w, 0);
    return (items.find(([w]) => (x -= w) < 0) ?? items[0]!)[1];
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i += 4) {
      const v = (this.next() * 4294967296) >>> 0;
      for (let j = 0; j < 4 && i + j < n; j++) b[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return b;
  }
}

/** A directory to move, and a parent to move it under that is outside its own subtree ('' is the root). */
export function pickDirMove(rng: Rng, dirs: readonly string[]): { from: string; parent: string } | null {
  if (dirs.length === 0) return null;
  const from = rng.pick(dirs);
  return { from, parent: rng.pick(['', ...dirs.filter((d) => d !== from && !d.startsWith(`${from}/`))]) };
}

/** The seed to use: FEDSYNC_E2E_SEED when set (to replay), else a fresh one. */
export function chooseSeed(): number {
  const env = process.env.FEDSYNC_E2E_SEED;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    assert.ok(Number.isSafeInteger(n), `FEDSYNC_E2E_SEED=${env} is not an integer`);
    return n >>> 0;
  }
  return (Math.random() * 2 ** 32) >>> 0;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
