/**
 * In-process clusters for the protocol tests: each node has its own root, state directory,
 * config (parsed by the real parser) and JSON log file; all share one file:// store.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { parseConfig } from '../../src/config/load.js';
import type { Config, SetConfig } from '../../src/config/types.js';
import { createLogger, type RootLogger } from '../../src/log/logger.js';
import { Manifest } from '../../src/manifest/manifest.js';
import { FileStore } from '../../src/store/file/file.js';
import { runCycle, type CycleOptions, type CycleResult } from '../../src/sync/cycle.js';
import { initSet } from '../../src/sync/init.js';
import { manifestPath } from '../../src/sync/node.js';
import type { Entry } from '../../src/sync/record.js';
import { openSession, type Session } from '../../src/sync/session.js';

export const SET = 'webroot';

export interface TestNode {
  name: string;
  id: string;
  config: Config;
  set: SetConfig;
  root: string;
  logFile: string;
  log: RootLogger;
}

export interface Cluster {
  dir: string;
  /** The store's directory for the set (what FileStore is rooted at). */
  storeDir: string;
  nodes: TestNode[];
  node(name: string): TestNode;
}

const dirs: string[] = [];
/** Removes every cluster made so far (call from `after`). */
export function cleanup(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A cluster of initialised nodes. `extra` is added to each node's [[sync]] table. */
export async function cluster(names: string[], opts: { settle?: string; extra?: string } = {}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'fedsync-sync-'));
  dirs.push(dir);
  const nodes: TestNode[] = [];
  for (const name of names) {
    const root = join(dir, name, 'www');
    mkdirSync(root, { recursive: true });
    const file = join(dir, name, 'fedsync.toml');
    const text = `node = "${name}"
state_dir = "${join(dir, name, 'state')}"

[store]
url = "file://${join(dir, 'store')}"

[[sync]]
name = "${SET}"
path = "${root}"
settle = "${opts.settle ?? '0s'}"
${opts.extra ?? ''}
`;
    writeFileSync(file, text);
    const config = parseConfig(text, file);
    const logFile = join(dir, name, 'fedsync.log');
    const log = createLogger({ file: logFile, level: 'debug' });
    const set = config.sets[0]!;
    const init = await initSet(config, set, log);
    nodes.push({ name, id: init.nodeId, config, set, root, logFile, log });
  }
  return { dir, storeDir: join(dir, 'store', SET), nodes, node: (n) => nodes.find((x) => x.name === n)! };
}

/** One cycle; fails the test unless it succeeds (pass `expectOk: false` to look at a failure). */
export async function cycle(node: TestNode, opts: CycleOptions & { expectOk?: boolean } = {}): Promise<CycleResult> {
  const r = await runCycle(node.config, node.set, node.log, opts);
  if (opts.expectOk !== false) assert.ok(r.ok, `${node.name}: cycle failed: ${r.error?.message}`);
  return r;
}

/** Cycles every node in turn, `rounds` times: enough for everything to reach everyone. */
export async function settle(c: Cluster, rounds = 2): Promise<void> {
  for (let i = 0; i < rounds; i++) for (const n of c.nodes) await cycle(n);
}

/** A cycle on a session whose store the caller may replace (fault injection). */
export async function cycleWithStore(node: TestNode, store: (root: string) => FileStore, opts: CycleOptions = {}): Promise<CycleResult> {
  const session: Session = openSession(node.config, node.set, node.log, store(join(fileURLToPath(node.config.store.url), node.set.name)));
  try {
    return await runCycle(node.config, node.set, node.log, { ...opts, session });
  } finally {
    await session.close();
  }
}

export type TreeItem = { kind: 'file'; sha: string; mode: number; mtime: number } | { kind: 'dir'; mode: number } | { kind: 'symlink'; target: string };

/** Everything under `root` except `.fedsync/` (with content hashes, modes, ms mtimes). */
export function tree(root: string, opts: { mtime?: boolean; all?: boolean } = {}): Record<string, TreeItem> {
  const out: Record<string, TreeItem> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      if (rel === '' && name === '.fedsync' && !opts.all) continue;
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p), { bigint: true });
      if (st.isSymbolicLink()) out[p] = { kind: 'symlink', target: readlinkSync(join(root, p)) };
      else if (st.isDirectory()) {
        out[p] = { kind: 'dir', mode: Number(st.mode) & 0o7777 };
        walk(p);
      } else {
        const sha = createHash('sha256').update(readFileSync(join(root, p))).digest('hex');
        out[p] = { kind: 'file', sha, mode: Number(st.mode) & 0o7777, mtime: opts.mtime === false ? 0 : Number(st.mtimeNs / 1_000_000n) };
      }
    }
  };
  if (existsSync(root)) walk('');
  return out;
}

/** Asserts every node's tree is the same (content, modes, file mtimes to the ms). */
export function assertConverged(c: Cluster, nodes: TestNode[] = c.nodes): Record<string, TreeItem> {
  const first = tree(nodes[0]!.root);
  for (const n of nodes.slice(1)) assert.deepEqual(tree(n.root), first, `${n.name} differs from ${nodes[0]!.name}`);
  return first;
}

export const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** Parsed JSON lines of a node's log. */
export function logLines(node: TestNode): Record<string, unknown>[] {
  if (!existsSync(node.logFile)) return [];
  return readFileSync(node.logFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every record of a node's journal in the store, segment by segment, raw (not validated). */
export function journal(c: Cluster, nodeId: string): { seq: number; records: Entry[] }[] {
  const d = join(c.storeDir, 'journal', nodeId);
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .sort()
    .map((name) => {
      const lines = gunzipSync(readFileSync(join(d, name))).toString().split('\n').filter(Boolean);
      return { seq: Number(name), records: lines.slice(1).map((l) => JSON.parse(l) as Entry) };
    });
}

/** The seq a node's head announces in the store. */
export function headSeq(c: Cluster, nodeId: string): number {
  const f = join(c.storeDir, 'heads', `${nodeId}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { seq: number }).seq : 0;
}

/** A read-only look at a node's manifest. */
export function withManifest<T>(node: TestNode, fn: (m: Manifest) => T): T {
  const m = new Manifest(manifestPath(node.config.stateDir, SET));
  try {
    return fn(m);
  } finally {
    m.close();
  }
}

/** Requests of a cycle, summed. */
export function requestCount(r: CycleResult): number {
  const q = r.record!.requests;
  return q.get + q.put + q.list + q.delete + q.head;
}
