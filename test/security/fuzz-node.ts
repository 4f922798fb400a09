// Real nodes for the fuzz suite: a federation on a file:// store, prepared once (a template
// directory), copied for every case, fed hostile objects written straight into the store as a
// fake peer would, and cycled in-process with runCycle. Then the invariants are checked. What
// the cases write is in fuzz-case.ts.
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pino, type Logger } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import type { Config, SetConfig } from '../../src/config/types.js';
import { blobName, openEncryption, type Keys } from '../../src/crypto/keys.js';
import { REDACT_PATHS } from '../../src/log/logger.js';
import { Manifest } from '../../src/manifest/manifest.js';
import { EncryptedStore } from '../../src/store/encrypted/encrypted.js';
import { FileStore } from '../../src/store/file/file.js';
import type { Store } from '../../src/store/store.js';
import { runCycle, type CycleResult } from '../../src/sync/cycle.js';
import { formatHlc } from '../../src/sync/hlc.js';
import { encodeSnapshot } from '../../src/sync/housekeep/snapshot.js';
import { initSet } from '../../src/sync/init.js';
import { blobKey as plainBlobKey, headKey, segmentKey } from '../../src/sync/layout.js';
import { manifestPath } from '../../src/sync/node.js';
import type { Entry } from '../../src/sync/record.js';
import { encodeSegment } from '../../src/sync/segment.js';
import { openSession } from '../../src/sync/session.js';
import { pathOk, sha, show, targetOkLexically } from './fuzz-gen.js';

export const SET = 'www';
export const PASSPHRASE = 'fuzz passphrase: correct horse battery staple';
/** The hostile peer, and an honest peer that publishes in the same window. */
export const EVIL = 'e'.repeat(26);
export const HONEST = 'h'.repeat(26);

/** The main node's own files (published before the cases start). */
export const MAIN_FILES: Record<string, string> = {
  'index.html': '<h1>Honest index</h1>',
  'dir/page.txt': 'honest page',
  'a': 'honest a',
  'dup1.txt': 'identical honest content',
  'dup2.txt': 'identical honest content',
};
/** What the honest peer publishes; every case must see these arrive (unless it tampers with them). */
export const HONEST_FILES: Record<string, string> = {
  'honest/h1.txt': 'from the honest peer, 1',
  'honest/h2.txt': 'from the honest peer, 2',
  'honest/sub/h3.txt': 'from the honest peer, 3',
};

// ---------------------------------------------------------------------------------------------
// Logs, captured in memory (pino with the project's redaction), one array for the whole suite

export interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}
export const LOG: LogLine[] = [];
export const testLogger: Logger = pino(
  { level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' }, formatters: { level: (label) => ({ level: label }) } },
  { write: (line: string) => void LOG.push(JSON.parse(line) as LogLine) },
);

export const isRecordRejection = (l: LogLine) => l.msg === 'rejected a remote record';
/** A record that arrived but cannot be applied now (a blob failing its digest): kept wanted, reported once as an error. */
export const isWantedError = (l: LogLine) => l.level === 'error' && l.msg === 'cannot apply a remote record now; it stays wanted and is retried';
export const isStreamRejection = (l: LogLine) => typeof l.msg === 'string' && l.msg.endsWith("this peer's updates are paused until it is fixed");
/** Any line reporting a rejection (a record, a peer's stream, or another kind such as a snapshot). */
export const isRejection = (l: LogLine) => l.level === 'error' && typeof l.msg === 'string' && (/^rejected\b/.test(l.msg) || isStreamRejection(l));

// ---------------------------------------------------------------------------------------------
// Template

export interface Template {
  dir: string;
  encrypted: boolean;
  keys: Keys | null;
  mainId: string;
  freshId: string;
  /** Digests of every content some honest party wrote. */
  honestDigests: Set<string>;
}

interface NodePaths {
  config: Config;
  set: SetConfig;
  root: string;
  parent: string;
  outside: string;
}

function configFor(caseDir: string, who: 'main' | 'fresh', encrypted: boolean): NodePaths {
  const parent = join(caseDir, who);
  const root = join(parent, 'www');
  const text = [
    `node = "${who}"`,
    `state_dir = "${join(caseDir, `${who}-state`)}"`,
    '',
    '[store]',
    `url = "file://${join(caseDir, 'store')}"`,
    ...(encrypted ? [`passphrase_file = "${join(caseDir, 'passphrase')}"`] : []),
    '',
    '[[sync]]',
    `name = "${SET}"`,
    `path = "${root}"`,
    'settle = "0s"',
    // The rail is tested elsewhere; here hostile deletions must reach the planner.
    'max_delete = "100%"',
    '',
  ].join('\n');
  const config = parseConfig(text, join(caseDir, `${who}.toml`));
  return { config, set: config.sets[0]!, root, parent, outside: join(parent, 'outside') };
}

function makeNodeDirs(p: NodePaths): void {
  mkdirSync(p.root, { recursive: true });
  // A sentinel directory beside the root, and a local symlink into it that is never published
  // (it leaves the root): records naming `link/...` must not write through it.
  mkdirSync(join(p.outside, 'sub'), { recursive: true });
  writeFileSync(join(p.outside, 'secret.txt'), 'outside secret');
  writeFileSync(join(p.outside, 'sub', 'keep.txt'), 'outside keep');
  symlinkSync('../outside', join(p.root, 'link'));
}

/** The writer a case uses: sealing with the federation's keys when it has them. */
export function writers(storeDir: string, keys: Keys | null): { raw: Store; keyed: Store; blobKey: (d: string) => string } {
  const raw = new FileStore(storeDir);
  return keys ? { raw, keyed: new EncryptedStore(raw, keys), blobKey: (d) => blobName(keys, d) } : { raw, keyed: raw, blobKey: plainBlobKey };
}

export function fileRecord(path: string, content: string, author: string, n: number, over: Partial<Entry> = {}): Entry {
  return { path, kind: 'file', digest: sha(content), size: Buffer.byteLength(content), mode: 0o644, mtime: 1_700_000_000_000 + n, target: null, vv: { [author]: n }, hlc: formatHlc(Date.now(), n), author, ...over };
}

export function headBody(node: string, seq: number, over: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ fedsync: 'head', v: 1, node, name: `peer-${node.slice(0, 4)}`, role: 'both', seq, hlc: formatHlc(Date.now(), 0), heartbeat: new Date().toISOString(), acks: {}, ...over }));
}

export async function buildTemplate(encrypted: boolean): Promise<Template> {
  const dir = mkdtempSync(join(tmpdir(), `fedsync-fuzz-tpl-${encrypted ? 'enc' : 'plain'}-`));
  if (encrypted) {
    writeFileSync(join(dir, 'passphrase'), `${PASSPHRASE}\n`);
    chmodSync(join(dir, 'passphrase'), 0o600);
  }
  const main = configFor(dir, 'main', encrypted);
  const fresh = configFor(dir, 'fresh', encrypted);
  makeNodeDirs(main);
  makeNodeDirs(fresh);
  const mainInit = await initSet(main.config, main.set, testLogger);
  for (const [p, body] of Object.entries(MAIN_FILES)) {
    mkdirSync(dirname(join(main.root, p)), { recursive: true });
    writeFileSync(join(main.root, p), body);
  }
  const r = await runCycle(main.config, main.set, testLogger);
  assert.ok(r.ok, `template: main's first cycle failed: ${r.error?.message}`);
  const freshInit = await initSet(fresh.config, fresh.set, testLogger);
  let keys: Keys | null = null;
  const storeDir = join(dir, 'store', SET);
  if (encrypted) {
    const format = JSON.parse(readFileSync(join(storeDir, 'format.json'), 'utf8')) as { encryption: Parameters<typeof openEncryption>[1] };
    keys = openEncryption(PASSPHRASE, format.encryption, 'template');
  }
  // The honest peer publishes one segment; the main node has not seen it yet.
  const w = writers(storeDir, keys);
  const records = Object.entries(HONEST_FILES).map(([p, body], i) => fileRecord(p, body, HONEST, i + 1));
  for (const [, body] of Object.entries(HONEST_FILES)) await w.keyed.put(w.blobKey(sha(body)), Buffer.from(body));
  await w.keyed.put(segmentKey(HONEST, 1), encodeSegment(HONEST, 1, records));
  await w.keyed.put(headKey(HONEST), headBody(HONEST, 1));
  const honestDigests = new Set([...Object.values(MAIN_FILES), ...Object.values(HONEST_FILES)].map((b) => sha(b)));
  return { dir, encrypted, keys, mainId: mainInit.nodeId, freshId: freshInit.nodeId, honestDigests };
}

// ---------------------------------------------------------------------------------------------
// One case

export interface CaseDir {
  dir: string;
  storeDir: string;
  main: NodePaths;
  fresh: NodePaths;
  w: ReturnType<typeof writers>;
}

export function copyTemplate(t: Template): CaseDir {
  const dir = mkdtempSync(join(tmpdir(), 'fedsync-fuzz-case-'));
  cpSync(t.dir, dir, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  const storeDir = join(dir, 'store', SET);
  return { dir, storeDir, main: configFor(dir, 'main', t.encrypted), fresh: configFor(dir, 'fresh', t.encrypted), w: writers(storeDir, t.keys) };
}

/** Writes raw bytes at a store key, bypassing every check (a bucket writer can). */
export function putRaw(storeDir: string, key: string, body: Buffer): void {
  const f = join(storeDir, ...key.split('/'));
  mkdirSync(dirname(f), { recursive: true });
  writeFileSync(f, body);
}

export function getRaw(storeDir: string, key: string): Buffer | null {
  const f = join(storeDir, ...key.split('/'));
  return existsSync(f) ? readFileSync(f) : null;
}

export interface CycleOutcome {
  result: CycleResult | null;
  threw: unknown;
  logs: LogLine[];
}

/** Cycles `n` times in one session (keys derived once), collecting each cycle's log lines. */
export async function cycles(p: NodePaths, n: number, between?: (i: number) => Promise<void> | void): Promise<CycleOutcome[]> {
  const out: CycleOutcome[] = [];
  const session = openSession(p.config, p.set, testLogger);
  try {
    for (let i = 0; i < n; i++) {
      if (i > 0 && between) await between(i);
      const from = LOG.length;
      let result: CycleResult | null = null;
      let threw: unknown = null;
      try {
        result = await runCycle(p.config, p.set, testLogger, { session });
      } catch (err) {
        threw = err;
      }
      out.push({ result, threw, logs: LOG.slice(from) });
    }
  } finally {
    await session.close();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Observations

export const sha256File = (f: string) => sha(readFileSync(f));

/** Everything under `dir` (kinds, modes, hashes, link targets), as one comparable string. */
export function treeFingerprint(dir: string): string {
  const parts: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, p));
      if (st.isSymbolicLink()) parts.push(`L ${p} -> ${readlinkSync(join(dir, p))}`);
      else if (st.isDirectory()) {
        parts.push(`D ${p} ${(st.mode & 0o7777).toString(8)}`);
        walk(p);
      } else parts.push(`F ${p} ${(st.mode & 0o7777).toString(8)} ${sha256File(join(dir, p))}`);
    }
  };
  if (existsSync(dir)) walk('');
  return parts.join('\n');
}

export interface RootItem {
  path: string;
  kind: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  digest?: string;
  target?: string;
}

/** The root's contents, `.fedsync/` aside. */
export function rootItems(root: string): RootItem[] {
  const out: RootItem[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      if (rel === '' && name === '.fedsync') continue;
      const p = rel ? `${rel}/${name}` : name;
      const abs = join(root, p);
      const st = lstatSync(abs);
      const mode = st.mode & 0o7777;
      if (st.isSymbolicLink()) out.push({ path: p, kind: 'symlink', mode, target: readlinkSync(abs) });
      else if (st.isDirectory()) {
        out.push({ path: p, kind: 'dir', mode });
        walk(p);
      } else if (st.isFile()) out.push({ path: p, kind: 'file', mode, digest: sha256File(abs) });
      else out.push({ path: p, kind: 'other', mode });
    }
  };
  walk('');
  return out;
}

/**
 * Where the kernel would take a symlink at `abs`: its target resolved component by component
 * (following symlinks the way path lookup does, up to 40), and the part that does not exist
 * yet appended as text. Null for a loop.
 */
export function resolveLink(abs: string): string | null {
  let budget = 40;
  const walk = (base: string, rest: string[]): string | null => {
    let cur = base;
    for (let i = 0; i < rest.length; i++) {
      const seg = rest[i]!;
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        cur = dirname(cur);
        continue;
      }
      const next = join(cur, seg);
      let st;
      try {
        st = lstatSync(next);
      } catch {
        // Missing (or not a directory): the rest is only text.
        return resolve(next, ...rest.slice(i + 1));
      }
      if (st.isSymbolicLink()) {
        if (--budget < 0) return null;
        const t = readlinkSync(next);
        const via = walk(t.startsWith('/') ? '/' : cur, t.split('/'));
        if (via === null) return null;
        cur = via;
      } else cur = next;
    }
    return cur;
  };
  const t = readlinkSync(abs);
  return walk(t.startsWith('/') ? '/' : dirname(abs), t.split('/'));
}

export const inside = (root: string, p: string) => p === root || p.startsWith(root + sep);

/** The honest-looking checks every case ends with; returns problems (empty when all hold). */
export function invariantProblems(opts: {
  node: NodePaths;
  before: { parent: string[]; outside: string; caseDir: string[] };
  caseDir: string;
  allowed: Set<string>;
  outcomes: CycleOutcome[];
}): string[] {
  const { node, before, allowed, outcomes } = opts;
  const problems: string[] = [];
  // 1. Nothing outside the root changed or appeared.
  const parentNow = readdirSync(node.parent).sort();
  if (show(parentNow) !== show(before.parent)) problems.push(`the root's parent changed: ${show(before.parent)} -> ${show(parentNow)}`);
  if (treeFingerprint(node.outside) !== before.outside) problems.push(`the sentinel directory beside the root changed:\n${treeFingerprint(node.outside)}`);
  const caseNow = readdirSync(opts.caseDir).sort();
  if (show(caseNow) !== show(before.caseDir)) problems.push(`the case directory changed: ${show(before.caseDir)} -> ${show(caseNow)}`);
  // 2. The cycles returned, and nothing escaped.
  for (const [i, o] of outcomes.entries()) {
    if (o.threw) problems.push(`cycle ${i + 1} threw instead of returning: ${(o.threw as Error)?.stack ?? String(o.threw)}`);
  }
  // 3. Every file holds content that verifies; no set-id bits; no symlink leads out.
  for (const it of rootItems(node.root)) {
    if (it.kind === 'file' && !allowed.has(it.digest!)) problems.push(`${JSON.stringify(it.path)} holds content nobody published under its digest (${it.digest!.slice(0, 12)})`);
    if (it.mode & 0o7000) problems.push(`${JSON.stringify(it.path)} has set-id/sticky bits (${it.mode.toString(8)})`);
    if (it.kind === 'other') problems.push(`${JSON.stringify(it.path)} is a device, FIFO or socket`);
    if (it.kind === 'symlink') {
      const ours = !it.path.includes('/') && it.path.startsWith('link') && it.target === '../outside';
      if (ours) continue;
      if (!targetOkLexically(it.path, it.target)) problems.push(`symlink ${JSON.stringify(it.path)} -> ${JSON.stringify(it.target)} was written though its target leaves the root`);
      const real = resolveLink(join(node.root, it.path));
      if (real !== null && !inside(node.root, real)) problems.push(`symlink ${JSON.stringify(it.path)} -> ${JSON.stringify(it.target)} resolves outside the root, to ${real}`);
    }
    if (!pathOk(it.path) && !it.path.includes('.sync-conflict-')) problems.push(`${JSON.stringify(it.path)} is not a valid path`);
  }
  // 4. Rejections: the count in stats is the number of rejection lines in the log.
  for (const [i, o] of outcomes.entries()) {
    const lines = o.logs.filter(isRejection).length;
    const stats = o.result?.record?.stats.rejected ?? 0;
    if (lines !== stats) problems.push(`cycle ${i + 1}: stats.rejected is ${stats} but the log has ${lines} rejection lines`);
  }
  // 5. The clock was not dragged into the far future.
  const m = new Manifest(manifestPath(node.config.stateDir, SET));
  try {
    const hlc = m.getMeta('hlc');
    if (hlc && Number(hlc.slice(0, 13)) > Date.now() + 25 * 3600_000) problems.push(`the node adopted a far-future clock ${hlc}`);
  } finally {
    m.close();
  }
  return problems;
}

export function observeBefore(caseDir: string, node: NodePaths): { parent: string[]; outside: string; caseDir: string[] } {
  return { parent: readdirSync(node.parent).sort(), outside: treeFingerprint(node.outside), caseDir: readdirSync(caseDir).sort() };
}

export function peerRow(node: NodePaths, id: string): { cursor: number; error: string | null } | undefined {
  const m = new Manifest(manifestPath(node.config.stateDir, SET));
  try {
    return m.peers().find((p) => p.node === id);
  } finally {
    m.close();
  }
}

export function gz(text: string): Buffer {
  return gzipSync(Buffer.from(text));
}

export function encodeSnapshotBody(node: string, hlc: string, entries: Record<string, unknown>[], cursors: Record<string, number>, bundles: unknown[] = []): Buffer {
  const header = { fedsync: 'snapshot', v: 1, node, hlc, created: new Date().toISOString(), cursors, entries: entries.length, bundles: bundles.length };
  return gz([JSON.stringify(header), ...entries.map((e) => JSON.stringify(e)), ...bundles.map((b) => JSON.stringify(b))].join('\n') + '\n');
}

export { encodeSnapshot, encodeSegment };
/** Removes a case directory, read-only directories from peers included (not root: EACCES). */
export function rm(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
    const open = (d: string): void => {
      chmodSync(d, 0o700);
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) open(join(d, e.name));
    };
    open(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
