// Harness for the history acceptance tests (test/e2e/history*.test.ts): federations of real
// `fedsync` processes (the built binary, one process per command) on any of the three kinds
// of store the tests cover:
//
// - `file`: a `file://` store in the federation's temp directory;
// - `s3rver`: an s3rver child process (cheap tests only: it is slow with many objects);
// - `rgw`: the Ceph RGW of test/support/rgw.sh, when its FEDSYNC_TEST_RGW_* are set
//   (FEDSYNC_REQUIRE_RGW=1 turns its absence into a failing test).
//
// On top of harness.ts (processes, trees, Rng), which is S3-only, this adds: a store view
// that lists/reads/deletes objects on every backend (keys relative to the set's prefix, with
// their last-modified time); per-node S3 endpoints (so each node can go through its own
// counting proxy); config rewrites between phases; and `walkStore`, which reads the whole
// store the way a bootstrapping node would depend on it: every segment and snapshot gunzipped
// (JSON lines, header first), every digest they name checked against `blobs/<2hex>/<digest>`.
//
// Environment: FEDSYNC_HISTORY_BACKENDS=file,s3rver,rgw narrows the backends (a test's own
// exclusions still apply); FEDSYNC_E2E_KEEP=1 keeps the temp directories (and buckets);
// FEDSYNC_E2E_BIN runs another build of the CLI (harness.ts); FEDSYNC_E2E_SEED replays the
// randomized leader test.
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createBucket, freshBucketName, rgwTargetFromEnv, testClient, type S3Target } from '../support/s3.js';
import { startS3rver } from '../support/s3rver.js';
import { assertOk, describeResult, sha256, snapshotTree, spawnFedsync, type CommandResult, type RunningCommand, type Tree } from './harness.js';

const KEEP = process.env.FEDSYNC_E2E_KEEP === '1';

// ---------------------------------------------------------------------------------------------
// Backends

export type BackendName = 'file' | 's3rver' | 'rgw';

export interface BackendEnv {
  name: BackendName;
  /** Null for `file`. */
  target: S3Target | null;
  stop(): Promise<void>;
}

export interface Backend {
  name: BackendName;
  start(): Promise<BackendEnv>;
}

/**
 * The backends a test runs on: file:// always, s3rver unless `s3rver: false`, RGW when
 * configured. Without RGW a placeholder test is skipped, or fails under FEDSYNC_REQUIRE_RGW=1.
 */
export function backends(what: string, opts: { s3rver?: boolean; file?: boolean } = {}): Backend[] {
  // FEDSYNC_HISTORY_BACKENDS=file,rgw narrows the list (for debugging one backend).
  const only = process.env.FEDSYNC_HISTORY_BACKENDS?.split(',').map((x) => x.trim());
  if (only) opts = { s3rver: opts.s3rver !== false && only.includes('s3rver'), file: opts.file !== false && only.includes('file') };
  const list: Backend[] = [];
  if (opts.file !== false) list.push({ name: 'file', start: async () => ({ name: 'file', target: null, stop: async () => {} }) });
  if (opts.s3rver !== false) {
    list.push({
      name: 's3rver',
      start: async () => {
        const t = await startS3rver();
        return { name: 's3rver', target: t, stop: () => t.stop() };
      },
    });
  }
  if (only && !only.includes('rgw')) return list;
  const rgw = rgwTargetFromEnv();
  if (rgw) list.push({ name: 'rgw', start: async () => ({ name: 'rgw', target: rgw, stop: async () => {} }) });
  else if (process.env.FEDSYNC_REQUIRE_RGW === '1') {
    it(`${what} on rgw: Ceph RGW is required (FEDSYNC_REQUIRE_RGW=1)`, () =>
      assert.fail('FEDSYNC_TEST_RGW_ENDPOINT/ACCESS_KEY/SECRET_KEY are not set: eval "$(bash test/support/rgw.sh start DIR)"'));
  } else {
    it(`${what} on rgw`, { skip: 'FEDSYNC_TEST_RGW_* not set (eval "$(bash test/support/rgw.sh start DIR)")' }, () => {});
  }
  return list;
}

// ---------------------------------------------------------------------------------------------
// The store, seen from the test

export interface StoreObject {
  /** Relative to the set's prefix: `heads/<id>.json`, `blobs/ab/<digest>`, ... */
  key: string;
  size: number;
  lastModified: number;
}

/** What a test needs of the store, on every backend. */
interface StoreView {
  list(sub?: string): Promise<StoreObject[]>;
  get(key: string): Promise<Buffer | null>;
  delete(keys: string[]): Promise<void>;
  close(): void;
}

class FileStoreView implements StoreView {
  constructor(readonly setDir: string) {}

  async list(sub = ''): Promise<StoreObject[]> {
    const out: StoreObject[] = [];
    const walk = (rel: string) => {
      const abs = join(this.setDir, rel);
      let names: string[];
      try {
        names = readdirSync(abs);
      } catch {
        return;
      }
      for (const name of names) {
        if (name === '.fedsync-tmp') continue;
        const p = rel ? `${rel}/${name}` : name;
        let st;
        try {
          st = statSync(join(this.setDir, p));
        } catch {
          continue; // deleted meanwhile
        }
        if (st.isDirectory()) walk(p);
        else if (st.isFile() && p.startsWith(sub)) out.push({ key: p, size: st.size, lastModified: st.mtimeMs });
      }
    };
    walk('');
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return readFileSync(join(this.setDir, key));
    } catch {
      return null;
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) rmSync(join(this.setDir, k), { force: true });
  }

  close(): void {}
}

class S3StoreView implements StoreView {
  readonly s3: S3Client;

  constructor(
    target: S3Target,
    readonly bucket: string,
    readonly setPrefix: string,
  ) {
    this.s3 = testClient(target);
  }

  async list(sub = ''): Promise<StoreObject[]> {
    const out: StoreObject[] = [];
    let token: string | undefined;
    do {
      const res = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.setPrefix + sub, ContinuationToken: token }));
      for (const o of res.Contents ?? []) out.push({ key: o.Key!.slice(this.setPrefix.length), size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 });
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.setPrefix + key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw err;
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const Objects = keys.slice(i, i + 1000).map((k) => ({ Key: this.setPrefix + k }));
      await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects, Quiet: true } }));
    }
  }

  close(): void {
    this.s3.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Federations

export type SyncValues = Record<string, string | number | boolean | string[]>;

export interface HFedOptions {
  nodes: string[];
  setName?: string;
  /** Keys for every node's [[sync]] table (settle defaults to "0s"). */
  sync?: SyncValues;
  logLevel?: string;
  /** Run `fedsync init` on every node now (default true); otherwise call node.init() later. */
  init?: boolean;
  /**
   * Where the federation's temp directory goes (default the OS temp dir). Big trees use
   * /dev/shm (see fastTmp()): fedsync fsyncs every file it stores or writes, and these tests
   * count requests and compare trees, they do not measure the disk.
   */
  baseDir?: string;
}

/** /dev/shm when it is a usable directory, else the OS temp dir. */
export function fastTmp(): string {
  try {
    if (statSync('/dev/shm').isDirectory()) {
      accessSync('/dev/shm', constants.W_OK);
      return '/dev/shm';
    }
  } catch {
    // no /dev/shm here
  }
  return tmpdir();
}

// Strings and string arrays (`exclude`) are written as JSON, which TOML reads the same way.
const tomlValue = (v: string | number | boolean | string[]) => (typeof v === 'string' || Array.isArray(v) ? JSON.stringify(v) : String(v));

export class HNode {
  readonly dir: string;
  readonly root: string;
  readonly stateDir: string;
  readonly logFile: string;
  readonly config: string;
  id = '';
  /** This node's S3 endpoint (e.g. its own counting proxy); default the server's. */
  endpoint: string | undefined;
  /** [[sync]] keys of this node on top of the federation's. */
  sync: SyncValues = {};

  constructor(
    readonly fed: HFed,
    readonly name: string,
  ) {
    this.dir = join(fed.dir, name);
    this.root = join(this.dir, 'root');
    this.stateDir = join(this.dir, 'state');
    this.logFile = join(this.dir, 'fedsync.log');
    this.config = join(this.dir, 'fedsync.toml');
    mkdirSync(this.root, { recursive: true });
    mkdirSync(this.stateDir, { recursive: true });
  }

  writeConfig(): void {
    const f = this.fed;
    const sync = { settle: '0s', ...f.options.sync, ...this.sync };
    const store =
      f.env.target === null
        ? [`url = ${tomlValue(`file://${f.storeDir}`)}`]
        : [
            `url = ${tomlValue(`s3://${f.bucket}/${f.prefix}`)}`,
            `endpoint = ${tomlValue(this.endpoint ?? f.env.target.endpoint)}`,
            `region = ${tomlValue(f.env.target.region)}`,
            'force_path_style = true',
          ];
    const lines = [
      `node = ${tomlValue(this.name)}`,
      `state_dir = ${tomlValue(this.stateDir)}`,
      `log_file = ${tomlValue(this.logFile)}`,
      `log_level = ${tomlValue(f.options.logLevel ?? 'info')}`,
      '',
      '[store]',
      ...store,
      '',
      '[[sync]]',
      `name = ${tomlValue(f.setName)}`,
      `path = ${tomlValue(this.root)}`,
      'mode = "heavyweight"',
      ...Object.entries(sync).map(([k, v]) => `${k} = ${tomlValue(v)}`),
      '',
    ];
    writeFileSync(this.config, lines.join('\n'));
  }

  /** Changes [[sync]] keys of this node (and rewrites its config). */
  configure(sync: SyncValues, endpoint?: string): void {
    this.sync = { ...this.sync, ...sync };
    if (endpoint !== undefined) this.endpoint = endpoint;
    this.writeConfig();
  }

  env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) {
      if (k.startsWith('AWS_') || k.startsWith('FEDSYNC_') || k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST')) delete env[k];
    }
    const t = this.fed.env.target;
    if (t) {
      env.AWS_ACCESS_KEY_ID = t.accessKeyId;
      env.AWS_SECRET_ACCESS_KEY = t.secretAccessKey;
    }
    env.AWS_EC2_METADATA_DISABLED = 'true';
    env.HOME = this.dir;
    return env;
  }

  spawn(args: string[], opts: { timeoutMs?: number } = {}): RunningCommand {
    return spawnFedsync(['-c', this.config, ...args], this.env(), { timeoutMs: opts.timeoutMs, cwd: this.dir });
  }

  fedsync(args: string[], opts: { timeoutMs?: number } = {}): Promise<CommandResult> {
    return this.spawn(args, opts).done;
  }

  async ok(args: string[], opts: { timeoutMs?: number } = {}): Promise<CommandResult> {
    return assertOk(await this.fedsync(args, opts), `${this.name}: fedsync ${args.join(' ')}`);
  }

  run(args: string[] = [], opts: { timeoutMs?: number } = {}): Promise<CommandResult> {
    return this.ok(['run', ...args], opts);
  }

  /** `fedsync housekeep`; true when this node did it as the leader. */
  async housekeep(opts: { timeoutMs?: number } = {}): Promise<boolean> {
    const r = await this.ok(['housekeep'], opts);
    return /as leader/.test(r.stdout);
  }

  async init(): Promise<void> {
    const r = await this.ok(['init']);
    const m = /\(([a-z2-7]{26})\)/.exec(r.stdout);
    assert.ok(m, `init printed no node id:\n${describeResult(r)}`);
    this.id = m[1]!;
  }

  /** status.json of the set (the last cycle's requests are `lastCycle.requests`). */
  status(): { lastCycle: { ok: boolean; error: string | null; requests: Record<string, number>; stats: Record<string, number> } } & Record<string, unknown> {
    return JSON.parse(readFileSync(join(this.stateDir, this.fed.setName, 'status.json'), 'utf8'));
  }

  logLines(): Record<string, unknown>[] {
    if (!existsSync(this.logFile)) return [];
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  tree(): Tree {
    return snapshotTree(this.root);
  }

  abs(rel: string): string {
    return join(this.root, rel);
  }

  write(rel: string, body: string | Buffer, opts: { mode?: number; mtimeMs?: number } = {}): void {
    const p = this.abs(rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, body);
    if (opts.mode !== undefined) chmodSync(p, opts.mode);
    if (opts.mtimeMs !== undefined) utimesMs(p, opts.mtimeMs);
  }

  remove(rel: string): void {
    const p = this.abs(rel);
    if (statSync(p).isDirectory()) rmSync(p, { recursive: true });
    else unlinkSync(p);
  }

  read(rel: string): string | null {
    try {
      return readFileSync(this.abs(rel), 'utf8');
    } catch {
      return null;
    }
  }
}

function utimesMs(p: string, ms: number) {
  utimesSync(p, ms / 1000, ms / 1000);
}

export class HFed {
  readonly dir: string;
  readonly setName: string;
  readonly nodes: HNode[];
  /** file backend: the store's directory (`file://` URL). */
  readonly storeDir: string;
  /** s3 backends: bucket and prefix. */
  readonly bucket: string;
  readonly prefix = 'fed';
  readonly view: StoreView;

  private constructor(
    readonly env: BackendEnv,
    readonly options: HFedOptions,
  ) {
    this.dir = mkdtempSync(join(options.baseDir ?? tmpdir(), `fedsync-hist-${env.name}-`));
    this.setName = options.setName ?? 'www';
    this.storeDir = join(this.dir, 'store');
    this.bucket = freshBucketName('fedsync-hist');
    this.view = env.target ? new S3StoreView(env.target, this.bucket, `${this.prefix}/${this.setName}/`) : new FileStoreView(join(this.storeDir, this.setName));
    this.nodes = [];
    for (const n of options.nodes) this.nodes.push(new HNode(this, n));
  }

  static async create(env: BackendEnv, options: HFedOptions): Promise<HFed> {
    const fed = new HFed(env, options);
    if (env.target) await createBucket(env.target, fed.bucket);
    else mkdirSync(fed.storeDir, { recursive: true });
    for (const n of fed.nodes) n.writeConfig();
    if (options.init !== false) for (const n of fed.nodes) await n.init();
    return fed;
  }

  /** Adds a node later (a new server joining); its config is written, init is not run. */
  addNode(name: string, sync: SyncValues = {}, endpoint?: string): HNode {
    const n = new HNode(this, name);
    n.sync = sync;
    n.endpoint = endpoint;
    n.writeConfig();
    this.nodes.push(n);
    return n;
  }

  node(name: string): HNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** The key prefix of the set in the bucket, as the proxy log shows keys: `fed/www/`. */
  get s3SetPrefix(): string {
    return `${this.prefix}/${this.setName}/`;
  }

  list(sub = ''): Promise<StoreObject[]> {
    return this.view.list(sub);
  }

  get(key: string): Promise<Buffer | null> {
    return this.view.get(key);
  }

  deleteObjects(keys: string[]): Promise<void> {
    return this.view.delete(keys);
  }

  /** The node whose id is smallest among `among` (all by default): the leader when all are live. */
  leaderOf(among: HNode[] = this.nodes): HNode {
    return [...among].sort((a, b) => (a.id < b.id ? -1 : 1))[0]!;
  }

  async close(): Promise<void> {
    this.view.close();
    if (!KEEP) rmSync(this.dir, { recursive: true, force: true });
    else console.log(`# kept ${this.dir}${this.env.target ? ` (bucket ${this.bucket})` : ''}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Walking the store

export interface ParsedRecord {
  path: string;
  kind: string;
  digest?: string | null;
  size: number;
  mode: number;
  mtime: number;
  vv: Record<string, number>;
  hlc: string;
  author: string;
  target?: string | null;
}

export interface ParsedSnapshot {
  name: string;
  key: string;
  header: { fedsync: string; v: number; node: string; hlc: string; created: string; cursors: Record<string, number>; entries: number; bundles: number };
  entries: ParsedRecord[];
  bundles: { bundle: string; digest: string; offset: number; length: number }[];
}

export interface ParsedSegment {
  key: string;
  node: string;
  seq: number;
  header: { fedsync: string; v: number; node: string; seq: number; count: number };
  records: ParsedRecord[];
}

export interface StoreWalk {
  objects: StoreObject[];
  /** Objects by kind: format, heads, journal, blobs, snapshots, bundles, other. */
  counts: Record<string, number>;
  heads: Map<string, { seq: number; acks: Record<string, number>; name: string; heartbeat: string }>;
  segments: ParsedSegment[];
  snapshots: ParsedSnapshot[];
  blobs: Map<string, StoreObject>;
  bundles: Map<string, StoreObject>;
  /** digest -> where it is referenced (segment keys, snapshot keys). */
  referenced: Map<string, string[]>;
  /** Referenced digests without a blob: each a readable line. */
  missingBlobs: string[];
  /** Bundles a kept snapshot indexes that are not in the store. */
  missingBundles: string[];
  /** Blobs nothing kept references. */
  unreferencedBlobs: StoreObject[];
  /** Bundles no kept snapshot indexes. */
  unreferencedBundles: StoreObject[];
  /** Structural problems: unparsable objects, gaps in journals, unknown keys. */
  problems: string[];
  /** Journals pruned past what the newest snapshot covers (a bootstrapping node would stall). */
  uncovered: string[];
}

function gunzipLines(body: Buffer): string[] {
  const lines = gunzipSync(body).toString('utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/**
 * Reads everything under the set's prefix. `verifyBlobs` also hashes every blob (small stores).
 * Objects that vanish while being read (a concurrent prune) are reported as problems.
 */
export async function walkStore(fed: HFed, opts: { verifyBlobs?: boolean } = {}): Promise<StoreWalk> {
  const objects = await fed.list();
  const w: StoreWalk = {
    objects,
    counts: { format: 0, heads: 0, journal: 0, blobs: 0, snapshots: 0, bundles: 0, other: 0 },
    heads: new Map(),
    segments: [],
    snapshots: [],
    blobs: new Map(),
    bundles: new Map(),
    referenced: new Map(),
    missingBlobs: [],
    missingBundles: [],
    unreferencedBlobs: [],
    unreferencedBundles: [],
    problems: [],
    uncovered: [],
  };
  const ref = (digest: string, where: string) => {
    const l = w.referenced.get(digest);
    if (l) l.push(where);
    else w.referenced.set(digest, [where]);
  };
  for (const o of objects) {
    let m: RegExpExecArray | null;
    // A proposed format.json, left by an init on a store that ignores conditional writes.
    if (o.key === 'format.json' || /^formats\/[0-9a-f]{32}\.json$/.test(o.key)) w.counts.format!++;
    else if ((m = /^heads\/([a-z2-7]{26})\.json$/.exec(o.key))) {
      w.counts.heads!++;
      const body = await fed.get(o.key);
      if (!body) {
        w.problems.push(`${o.key} vanished`);
        continue;
      }
      const h = JSON.parse(body.toString('utf8')) as { seq: number; acks: Record<string, number>; name: string; heartbeat: string };
      w.heads.set(m[1]!, h);
    } else if ((m = /^journal\/([a-z2-7]{26})\/(\d{12})$/.exec(o.key))) {
      w.counts.journal!++;
      const body = await fed.get(o.key);
      if (!body) {
        w.problems.push(`${o.key} vanished`);
        continue;
      }
      try {
        const lines = gunzipLines(body);
        const header = JSON.parse(lines[0]!) as ParsedSegment['header'];
        const records = lines.slice(1).map((l) => JSON.parse(l) as ParsedRecord);
        if (header.fedsync !== 'segment' || header.node !== m[1] || header.seq !== Number(m[2]) || header.count !== records.length) {
          w.problems.push(`${o.key}: header ${JSON.stringify(header)} does not match (${records.length} records)`);
        }
        w.segments.push({ key: o.key, node: m[1]!, seq: Number(m[2]), header, records });
        for (const r of records) if (r.kind === 'file' && r.digest) ref(r.digest, o.key);
      } catch (err) {
        w.problems.push(`${o.key}: ${(err as Error).message}`);
      }
    } else if (/^blobs\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(o.key)) {
      w.counts.blobs!++;
      const digest = o.key.slice(9);
      if (o.key.slice(6, 8) !== digest.slice(0, 2)) w.problems.push(`${o.key}: wrong fan-out directory`);
      w.blobs.set(digest, o);
    } else if ((m = /^snapshots\/([0-9]{13}-[0-9]{6}-[a-z2-7]{26})$/.exec(o.key))) {
      w.counts.snapshots!++;
      const body = await fed.get(o.key);
      if (!body) {
        w.problems.push(`${o.key} vanished`);
        continue;
      }
      try {
        const lines = gunzipLines(body);
        const header = JSON.parse(lines[0]!) as ParsedSnapshot['header'];
        const entries = lines.slice(1, 1 + header.entries).map((l) => JSON.parse(l) as ParsedRecord);
        const bundles = lines.slice(1 + header.entries).map((l) => JSON.parse(l) as ParsedSnapshot['bundles'][number]);
        if (header.fedsync !== 'snapshot' || `${header.hlc}-${header.node}` !== m[1] || entries.length !== header.entries || bundles.length !== header.bundles) {
          w.problems.push(`${o.key}: header ${JSON.stringify({ ...header, cursors: undefined })} does not match its name or body`);
        }
        w.snapshots.push({ name: m[1]!, key: o.key, header, entries, bundles });
        for (const e of entries) if (e.kind === 'file' && e.digest) ref(e.digest, o.key);
      } catch (err) {
        w.problems.push(`${o.key}: ${(err as Error).message}`);
      }
    } else if (/^bundles\/[0-9]{13}-[0-9]{6}-[a-z2-7]{26}\/\d+$/.test(o.key)) {
      w.counts.bundles!++;
      w.bundles.set(o.key, o);
    } else {
      w.counts.other!++;
      w.problems.push(`unexpected object ${o.key}`);
    }
  }
  w.snapshots.sort((a, b) => (a.name < b.name ? -1 : 1));
  w.segments.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.seq - b.seq));

  for (const [digest, where] of w.referenced) {
    if (!w.blobs.has(digest)) w.missingBlobs.push(`blob ${digest.slice(0, 16)}… named by ${where.slice(0, 3).join(', ')}${where.length > 3 ? ` (+${where.length - 3})` : ''}`);
  }
  const usedBundles = new Set<string>();
  for (const s of w.snapshots) {
    for (const b of s.bundles) {
      const key = `bundles/${b.bundle}`;
      usedBundles.add(key);
      if (!w.bundles.has(key) && !w.missingBundles.some((x) => x.startsWith(key))) w.missingBundles.push(`${key} (indexed by ${s.key})`);
    }
  }
  for (const [digest, o] of w.blobs) if (!w.referenced.has(digest)) w.unreferencedBlobs.push(o);
  for (const [key, o] of w.bundles) if (!usedBundles.has(key)) w.unreferencedBundles.push(o);

  // Journals: what is kept of each must be one run of segments ending at the head's seq, and
  // one kept snapshot must reach everything pruned from all of them at once: a node catching
  // up starts from the newest such snapshot and replays the journals after it.
  const byNode = new Map<string, number[]>();
  for (const s of w.segments) byNode.set(s.node, [...(byNode.get(s.node) ?? []), s.seq]);
  const prunedThrough = new Map<string, number>();
  for (const [node, h] of w.heads) {
    const seqs = byNode.get(node) ?? [];
    for (let i = 1; i < seqs.length; i++) if (seqs[i] !== seqs[i - 1]! + 1) w.problems.push(`journal/${node}: gap between ${seqs[i - 1]} and ${seqs[i]}`);
    if (seqs.length > 0 && seqs.at(-1)! > h.seq) w.problems.push(`journal/${node}: segment ${seqs.at(-1)} beyond the head's seq ${h.seq} (an unannounced segment)`);
    if (seqs.length > 0 && seqs.at(-1)! < h.seq) w.problems.push(`journal/${node}: head announces seq ${h.seq}, the last kept segment is ${seqs.at(-1)}`);
    prunedThrough.set(node, (seqs.length > 0 ? seqs[0]! : h.seq + 1) - 1);
  }
  const reaches = (s: ParsedSnapshot) => [...prunedThrough].every(([node, seq]) => (s.header.cursors[node] ?? 0) >= seq);
  if (![...prunedThrough.values()].every((seq) => seq === 0) && !w.snapshots.some(reaches)) {
    const pruned = [...prunedThrough].filter(([, seq]) => seq > 0).map(([node, seq]) => `${w.heads.get(node)?.name ?? node} through ${seq}`);
    const kept = w.snapshots.map((s) => `${s.name} ${JSON.stringify(s.header.cursors)}`);
    w.uncovered.push(`journals pruned (${pruned.join(', ')}) but no kept snapshot reaches all of it: a node catching up stalls; kept: ${kept.join('; ') || '(none)'}`);
  }
  if (opts.verifyBlobs) {
    for (const [digest, o] of w.blobs) {
      const body = await fed.get(o.key);
      if (body && sha256(body) !== digest) w.problems.push(`${o.key}: content hashes to ${sha256(body)}`);
    }
  }
  return w;
}

/** One line for a test's diagnostics. */
export function describeWalk(w: StoreWalk): string {
  return (
    `${w.objects.length} objects ${JSON.stringify(w.counts)}; ${w.referenced.size} digests referenced, ` +
    `${w.unreferencedBlobs.length} unreferenced blobs, ${w.unreferencedBundles.length} unreferenced bundles`
  );
}

/** Everything assertStoreSound objects to, one line each. */
export function storeIssues(w: StoreWalk): string[] {
  return [...w.missingBlobs.map((x) => `missing ${x}`), ...w.missingBundles.map((x) => `missing ${x}`), ...w.problems, ...w.uncovered];
}

/**
 * The store is sound: every digest a kept segment or snapshot names has its blob, every
 * bundle a snapshot indexes exists, journals are contiguous up to their heads and the newest
 * snapshot covers what was pruned, nothing unparsable or unexpected.
 */
export function assertStoreSound(w: StoreWalk, context = ''): void {
  const issues = storeIssues(w);
  if (issues.length) assert.fail(`the store is not sound${context ? ` (${context})` : ''}:\n  ${issues.slice(0, 40).join('\n  ')}${issues.length > 40 ? `\n  ... and ${issues.length - 40} more` : ''}`);
}

/**
 * Garbage is gone: no unreferenced blob or bundle older than `graceMs` before `gcStartedAt`
 * (when the leader's housekeeping that should have collected it started) is left.
 */
export function assertGarbageCollected(w: StoreWalk, gcStartedAt: number, graceMs: number, context = ''): void {
  // S3 listings may round LastModified down to the second; fedsync saw the same values.
  const cutoff = gcStartedAt - graceMs - 1000;
  const stale = [...w.unreferencedBlobs, ...w.unreferencedBundles].filter((o) => o.lastModified < cutoff);
  if (stale.length) {
    assert.fail(
      `unreferenced objects past gc_grace were not collected${context ? ` (${context})` : ''}:\n  ` +
        stale
          .slice(0, 20)
          .map((o) => `${o.key} (${Math.round((gcStartedAt - o.lastModified) / 100) / 10} s old at collection)`)
          .join('\n  '),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Paths of `tree` that are conflict copies. */
export function conflictCopies(tree: Tree): string[] {
  return [...tree.keys()].filter((p) => p.includes('.sync-conflict-'));
}

/** The files of a tree as path -> utf8 content (for trees of small text files). */
export function contents(root: string, tree: Tree = snapshotTree(root)): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, e] of tree) if (e.kind === 'file') out.set(p, readFileSync(join(root, p), 'utf8'));
  return out;
}

/** Milliseconds since `t0`, rounded, for diagnostics. */
export function since(t0: number): number {
  return Math.round(performance.now() - t0);
}
