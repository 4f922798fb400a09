// The node-level fuzz case: what a hostile peer or bucket writer puts into the store, and one
// run of it against real nodes (fuzz-node.ts) with every check after it; for the random cases
// (fuzz-nodes.test.ts) and the regressions (fuzz-regressions.test.ts) alike.
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { formatHlc } from '../../src/sync/hlc.js';
import { snapshotKey } from '../../src/sync/housekeep/snapshot.js';
import { headKey, segmentKey } from '../../src/sync/layout.js';
import { arbBadPath, arbValidPath, AVOID_KNOWN, ESCAPED, pathOk, sha, show, targetOkLexically } from './fuzz-gen.js';
import {
  buildTemplate, copyTemplate, cycles, encodeSegment, encodeSnapshotBody, EVIL, fileRecord, getRaw, gz, headBody, HONEST, HONEST_FILES,
  invariantProblems, isRecordRejection, isStreamRejection, isWantedError, observeBefore, peerRow, putRaw, rm, sha256File, type CaseDir, type CycleOutcome, type Template,
} from './fuzz-node.js';

/** The plain and the encrypted template, built before the suite it is called in and removed after it. */
export function useTemplates(): Partial<Record<'plain' | 'encrypted', Template>> {
  const templates: Partial<Record<'plain' | 'encrypted', Template>> = {};
  before(async () => {
    templates.plain = await buildTemplate(false);
    templates.encrypted = await buildTemplate(true);
  });
  after(() => {
    for (const t of Object.values(templates)) rm(t.dir);
  });
  return templates;
}

/** Paths a hostile peer aims at: the honest node's files, the local escaping symlink, tricks. */
export const LONG_PATH = ('a'.repeat(254) + '/').repeat(16) + 'f'.repeat(15); // valid (4095 bytes), too long once under the root
export const LOOP_PATH = 'd/up/'.repeat(41) + 'x'; // valid text; through `d/up -> ..` 41 times, ELOOP
const NODE_PATHS = [LOOP_PATH, 'a', 'b', 'a/b', 'a/b/c', 'c', 'link', 'link/x', 'link/secret.txt', 'link/sub', 'link/sub/keep.txt', 'index.html', 'dir', 'dir/page.txt', 'd', 'd/up', 'd/up/x', 'd/up/d/up/x', 'esc', 'esc/x', 'esc/secret.txt', 'dup1.txt', '.fedsync2/x', 'x'.repeat(255)];
const KNOWN_BAD_NODE_PATHS = [LONG_PATH];
const NODE_TARGETS = ['..', '../outside', '../..', 'd/up/../outside', 'd/up/d/up/../../outside/secret.txt', 'd/up/d/up/d/up/d/up/d/up/d/up/../../../../../../etc/passwd', '/etc', '/etc/passwd', 'x', 'a', '.', 'd', 'link', 'link/secret.txt', 'up', '.fedsync', '.fedsync/tmp', 'index.html', '../www/index.html', 'esc'];
/** Targets that are lexically inside but lead out through a symlink (regression B3): through `d/up -> ..`, or through the local `link -> ../outside`. */
const isChainTarget = (t: string) => /(^|\/)up\/\.\./.test(t) || /^link(\/|$)/.test(t);
const hasDotDotAfterName = (t: string) => {
  const parts = t.split('/').filter((s) => s !== '' && s !== '.');
  const first = parts.findIndex((s) => s !== '..');
  return first >= 0 && parts.slice(first).includes('..');
};
const EVIL_CONTENTS: Record<string, string> = { evil1: 'evil content 1', evil2: 'evil content 2', empty: '', big: 'x'.repeat(3000) };
const POISON = 'POISON: these bytes are not what the digest says';

type BlobVariant = 'good' | 'wrong' | 'missing' | 'short' | 'long' | 'size-lie';
export interface NodeRec {
  raw: Record<string, unknown>;
  content: string;
  blob: BlobVariant;
  /** Passes rule 4's text checks (all other fields are valid by construction). */
  valid: boolean;
}
type RawSegVariant = 'garbage' | 'truncated-gzip' | 'gzip-garbage-text' | 'wrong-node' | 'wrong-seq' | 'wrong-count' | 'not-json-line' | 'missing' | 'empty' | 'moved-honest';
type SegCase = { kind: 'records'; records: NodeRec[] } | { kind: 'raw'; variant: RawSegVariant };
type HeadVariant = 'ok' | 'future' | 'beyond' | 'garbage' | 'other-node' | 'negative' | 'not-json' | 'none' | 'moved-honest';
type SnapVariant = 'none' | 'garbage' | 'truncated' | 'bad-entry' | 'hostile-valid' | 'bad-bundle' | 'tampered';
export interface NodeCase {
  segments: SegCase[];
  head: HeadVariant;
  headAfter: 'same' | 'backwards' | 'garbage';
  /** Encrypted store: does the hostile party hold the passphrase (a compromised node) or only bucket access? */
  writer: 'peer' | 'bucket';
  tamperHonest: 'none' | 'head' | 'segment' | 'blob';
  snapshot: SnapVariant;
}

function arbNodeRec(): fc.Arbitrary<Omit<NodeRec, 'raw'> & { path: string; kind: string; target: string; mode: number; hlcKind: string; vvKind: string }> {
  const paths = AVOID_KNOWN ? NODE_PATHS : [...NODE_PATHS, ...KNOWN_BAD_NODE_PATHS];
  const targets = AVOID_KNOWN ? NODE_TARGETS.filter((t) => !isChainTarget(t)) : NODE_TARGETS;
  return fc.record({
    path: fc.oneof({ arbitrary: fc.constantFrom(...paths), weight: 12 }, { arbitrary: arbBadPath, weight: 2 }, { arbitrary: AVOID_KNOWN ? arbValidPath.filter((p) => Buffer.byteLength(p) < 3000) : arbValidPath, weight: 1 }),
    kind: fc.constantFrom('file', 'file', 'file', 'symlink', 'symlink', 'dir', 'deleted'),
    target: fc.constantFrom(...targets),
    content: fc.constantFrom(...Object.keys(EVIL_CONTENTS)),
    blob: fc.constantFrom<BlobVariant>('good', 'good', 'good', 'wrong', 'missing', 'short', 'long', 'size-lie'),
    mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o2775, 0o7777, 0o600),
    hlcKind: fc.constantFrom('now', 'now', 'now', 'future', 'ancient'),
    vvKind: fc.constantFrom('own', 'own', 'own', 'dominates', 'duplicate'),
    valid: fc.constant(true),
  });
}

export function arbNodeCase(encrypted: boolean): fc.Arbitrary<NodeCase> {
  const recs = fc.array(arbNodeRec(), { minLength: 1, maxLength: 7 });
  const seg: fc.Arbitrary<SegCase> = fc.oneof(
    { arbitrary: recs.map((rs) => ({ kind: 'records' as const, records: rs as unknown as NodeRec[] })), weight: 6 },
    { arbitrary: fc.constantFrom<RawSegVariant>('garbage', 'truncated-gzip', 'gzip-garbage-text', 'wrong-node', 'wrong-seq', 'wrong-count', 'not-json-line', 'missing', 'empty', ...(encrypted && AVOID_KNOWN ? [] : (['moved-honest'] as const))).map((variant) => ({ kind: 'raw' as const, variant })), weight: 1 },
  );
  const snapshots: SnapVariant[] = AVOID_KNOWN ? ['none', 'hostile-valid'] : ['none', 'garbage', 'truncated', 'bad-entry', 'hostile-valid', 'bad-bundle', ...(encrypted ? (['tampered'] as const) : [])];
  return fc.record({
    segments: fc.array(seg, { minLength: 0, maxLength: 3 }),
    head: fc.constantFrom<HeadVariant>('ok', 'ok', 'ok', 'ok', 'future', 'beyond', 'garbage', 'other-node', 'negative', 'not-json', 'none', ...(encrypted && AVOID_KNOWN ? [] : (['moved-honest'] as const))),
    headAfter: fc.constantFrom<NodeCase['headAfter']>('same', 'same', 'same', 'backwards', 'garbage'),
    writer: encrypted && !AVOID_KNOWN ? fc.constantFrom<NodeCase['writer']>('peer', 'peer', 'bucket') : fc.constant<NodeCase['writer']>('peer'),
    tamperHonest: encrypted && !AVOID_KNOWN ? fc.constantFrom<NodeCase['tamperHonest']>('none', 'none', 'none', 'none', 'head', 'segment', 'blob') : fc.constantFrom<NodeCase['tamperHonest']>('none', 'none', 'none', 'none', 'none', 'blob'),
    snapshot: fc.oneof({ arbitrary: fc.constant<SnapVariant>('none'), weight: 5 }, { arbitrary: fc.constantFrom(...snapshots), weight: 2 }),
  });
}

/** Builds the wire record for a generated one; returns it with its validity and blob plan. */
function materialise(g: ReturnType<typeof arbNodeRec> extends fc.Arbitrary<infer T> ? T : never, n: number, mainId: string): NodeRec {
  const now = Date.now();
  const hlc = g.hlcKind === 'future' ? '9999999999999-999999' : g.hlcKind === 'ancient' ? formatHlc(1, n) : formatHlc(now, n);
  const vv = g.vvKind === 'dominates' ? { [EVIL]: n, [mainId]: 1000 } : g.vvKind === 'duplicate' ? { [EVIL]: 1 } : { [EVIL]: n };
  // Regression B8: as a normal user, a directory without owner rwx stops every write inside it.
  const mode = g.kind === 'symlink' ? 0o777 : AVOID_KNOWN && process.getuid?.() !== 0 && g.kind === 'dir' ? g.mode | 0o700 : g.mode;
  const base = { path: g.path, kind: g.kind, size: 0, mode, mtime: g.kind === 'file' || g.kind === 'symlink' ? 1_700_000_000_000 + n : 0, vv, hlc, author: EVIL };
  let raw: Record<string, unknown> = base;
  const content = EVIL_CONTENTS[g.content] ?? g.content;
  if (g.kind === 'file') {
    const size = Buffer.byteLength(content);
    raw = { ...base, digest: sha(content), size: g.blob === 'size-lie' ? (n % 2 ? size + 1 : Number.MAX_SAFE_INTEGER) : size };
  } else if (g.kind === 'symlink') raw = { ...base, target: g.target };
  const valid = pathOk(g.path) && (g.kind !== 'symlink' || targetOkLexically(g.path, g.target));
  return { raw, content, blob: g.blob, valid };
}

interface Written {
  /** Digests of content stored under its true digest (by anyone). */
  goodDigests: Set<string>;
  /** Expected record-level rejections in E's accepted segments. */
  expectedRecordRejections: number;
  /** Of which, at most this many more: symlinks whose target is inside by its text but has ".." after a name (a validator may refuse those too). */
  mayAlsoReject: number;
  /** E's stream must be stopped with an error (head or a segment in range is bad). */
  expectEvilStreamError: boolean;
  /** E's objects are readable at all (plain store, or a writer with the passphrase). */
  evilReadable: boolean;
  records: NodeRec[];
}

async function writeHostile(t: Template, cd: CaseDir, c: NodeCase): Promise<Written> {
  const { w, storeDir } = cd;
  const readable = !t.encrypted || c.writer === 'peer';
  const put = async (key: string, body: Buffer) => (readable ? w.keyed.put(key, body) : putRaw(storeDir, key, body));
  const out: Written = { goodDigests: new Set(), expectedRecordRejections: 0, mayAlsoReject: 0, expectEvilStreamError: false, evilReadable: readable, records: [] };
  let n = 0;
  const segRecords: NodeRec[][] = [];
  for (const [i, s] of c.segments.entries()) {
    const seq = i + 1;
    if (s.kind === 'records') {
      const recs = s.records.map((g) => materialise(g as never, ++n, t.mainId));
      segRecords.push(recs);
      out.records.push(...recs);
      const lines = [JSON.stringify({ fedsync: 'segment', v: 1, node: EVIL, seq, count: recs.length }), ...recs.map((r) => JSON.stringify(r.raw))];
      await put(segmentKey(EVIL, seq), gz(lines.join('\n') + '\n'));
      for (const r of recs) {
        if (r.raw.kind !== 'file') continue;
        const key = w.blobKey(sha(r.content));
        const bytes = r.blob === 'good' || r.blob === 'size-lie' ? r.content : r.blob === 'wrong' ? POISON : r.blob === 'short' ? r.content.slice(0, -1) || 'y' : r.blob === 'long' ? `${r.content}X` : null;
        if (bytes === null) continue;
        if (readable) await w.keyed.put(key, Buffer.from(bytes));
        else putRaw(storeDir, key, randomBytes(40)); // no keys: ciphertext it cannot make
        if (readable && sha(bytes) === sha(r.content)) out.goodDigests.add(sha(r.content));
      }
      continue;
    }
    segRecords.push([]);
    const ok = [fileRecord('seg-raw.txt', 'evil content 1', EVIL, ++n)];
    const body = (() => {
      switch (s.variant) {
        case 'garbage':
          return randomBytes(64);
        case 'truncated-gzip':
          return encodeSegment(EVIL, seq, ok).subarray(0, 25);
        case 'gzip-garbage-text':
          return gz('this is not a segment\n');
        case 'wrong-node':
          return encodeSegment(HONEST, seq, ok);
        case 'wrong-seq':
          return encodeSegment(EVIL, seq + 1, ok);
        case 'wrong-count':
          return gz(`${JSON.stringify({ fedsync: 'segment', v: 1, node: EVIL, seq, count: 5 })}\n${ok.map((r) => JSON.stringify(r)).join('\n')}\n`);
        case 'not-json-line':
          return gz(`${JSON.stringify({ fedsync: 'segment', v: 1, node: EVIL, seq, count: 2 })}\n${JSON.stringify(ok[0])}\n{"path":\n`);
        case 'empty':
          return Buffer.alloc(0);
        case 'missing':
        case 'moved-honest':
          return null;
      }
    })();
    if (s.variant === 'moved-honest') putRaw(storeDir, segmentKey(EVIL, seq), getRaw(storeDir, segmentKey(HONEST, 1))!);
    else if (body) await put(segmentKey(EVIL, seq), body);
  }
  // E's head.
  const nseg = c.segments.length;
  const headFor = (seq: number, over: Record<string, unknown> = {}) => headBody(EVIL, seq, over);
  switch (c.head) {
    case 'ok':
      await put(headKey(EVIL), headFor(nseg));
      break;
    case 'future':
      await put(headKey(EVIL), headFor(nseg, { hlc: '9999999999999-999999', heartbeat: '9999-01-01T00:00:00Z' }));
      break;
    case 'beyond':
      await put(headKey(EVIL), headFor(nseg + 3));
      break;
    case 'garbage':
      await put(headKey(EVIL), randomBytes(50));
      break;
    case 'other-node':
      await put(headKey(EVIL), headBody(HONEST, nseg));
      break;
    case 'negative':
      await put(headKey(EVIL), headFor(-1));
      break;
    case 'not-json':
      await put(headKey(EVIL), Buffer.from('{"fedsync":"head",'));
      break;
    case 'moved-honest':
      putRaw(storeDir, headKey(EVIL), getRaw(storeDir, headKey(HONEST))!);
      break;
    case 'none':
      break;
  }
  // What E's stream should yield.
  const headValid = readable && (c.head === 'ok' || c.head === 'future' || c.head === 'beyond');
  if (c.head !== 'none' && !headValid) out.expectEvilStreamError = true;
  if (headValid) {
    const headSeq = c.head === 'beyond' ? nseg + 3 : nseg;
    for (let seq = 1; seq <= headSeq; seq++) {
      const s = c.segments[seq - 1];
      if (s?.kind === 'records') {
        out.expectedRecordRejections += segRecords[seq - 1]!.filter((r) => !r.valid).length;
        out.mayAlsoReject += segRecords[seq - 1]!.filter((r) => r.valid && r.raw.kind === 'symlink' && hasDotDotAfterName(String(r.raw.target))).length;
        continue;
      }
      const absent = !s || (s.kind === 'raw' && s.variant === 'missing');
      // A first segment missing while later ones exist reads as pruned history (a gap), not an error.
      const gap = absent && seq === 1;
      if (!gap) out.expectEvilStreamError = true;
      break;
    }
  }
  return out;
}

/** A hostile bucket writer without the passphrase tampers with the honest peer's objects. */
function tamperHonest(cd: CaseDir, t: Template, what: NodeCase['tamperHonest']): void {
  if (what === 'none') return;
  const key = what === 'head' ? headKey(HONEST) : what === 'segment' ? segmentKey(HONEST, 1) : cd.w.blobKey(sha(HONEST_FILES['honest/h2.txt']!));
  const body = getRaw(cd.storeDir, key)!;
  const flipped = Buffer.from(body);
  // Inside the ciphertext or JSON/gzip body, away from bytes a plain decoder ignores.
  const at = t.encrypted ? body.length - 20 : what === 'blob' ? 3 : body.length - 6;
  flipped[at]! ^= 0x20;
  putRaw(cd.storeDir, key, flipped);
}

async function writeSnapshot(t: Template, cd: CaseDir, c: NodeCase, written: Written): Promise<void> {
  if (c.snapshot === 'none') return;
  const hlc = formatHlc(Date.now() + 60_000, 1);
  const name = `${hlc}-${EVIL}`;
  const key = snapshotKey(name);
  const valid = written.records.filter((r) => r.valid).map((r) => r.raw);
  const readable = !t.encrypted || c.writer === 'peer';
  const put = async (body: Buffer): Promise<void> => {
    if (readable) await cd.w.keyed.put(key, body);
    else await putRaw(cd.storeDir, key, randomBytes(80));
  };
  switch (c.snapshot) {
    case 'garbage':
      return put(randomBytes(120));
    case 'truncated':
      return put(encodeSnapshotBody(EVIL, hlc, valid, { [EVIL]: 0 }).subarray(0, 30));
    case 'bad-entry':
      return put(encodeSnapshotBody(EVIL, hlc, [...valid, fileRecord('../escape', 'evil content 1', EVIL, 99) as unknown as Record<string, unknown>], { [EVIL]: 0 }));
    case 'bad-bundle':
      return put(encodeSnapshotBody(EVIL, hlc, valid, { [EVIL]: 0 }, [{ bundle: '../../../etc/passwd', digest: 'c'.repeat(64), offset: 0, length: 10 }]));
    case 'hostile-valid':
      return put(encodeSnapshotBody(EVIL, hlc, valid, { [EVIL]: 0 }));
    case 'tampered': {
      await cd.w.keyed.put(key, encodeSnapshotBody(EVIL, hlc, valid, { [EVIL]: 0 }));
      const body = getRaw(cd.storeDir, key)!;
      body[body.length - 20]! ^= 1;
      putRaw(cd.storeDir, key, body);
      return;
    }
  }
}

/** Snapshots a fresh node cannot rely on (refused whole, or with a bad line left out): it must still sync from the journals. */
function snapshotIsBad(t: Template, c: NodeCase): boolean {
  if (c.snapshot === 'none') return false;
  if (t.encrypted && c.writer === 'bucket') return true;
  return c.snapshot !== 'hostile-valid' && !(c.snapshot === 'tampered' && !t.encrypted);
}

function describeCase(c: NodeCase): string {
  const segs = c.segments.map((s, i) => (s.kind === 'raw' ? `  seg ${i + 1}: ${s.variant}` : `  seg ${i + 1}:\n${s.records.map((r) => `    ${show({ ...r }, 400)}`).join('\n')}`));
  return [`head ${c.head}, then ${c.headAfter}; writer ${c.writer}; tamper honest ${c.tamperHonest}; snapshot ${c.snapshot}`, ...segs].join('\n');
}

function stream(o: CycleOutcome) {
  return o.logs.filter(isStreamRejection);
}

export async function runNodeCase(t: Template, c: NodeCase): Promise<void> {
  const cd = copyTemplate(t);
  const escapedBefore = ESCAPED.length;
  try {
    const written = await writeHostile(t, cd, c);
    tamperHonest(cd, t, c.tamperHonest);
    await writeSnapshot(t, cd, c, written);
    const allowed = new Set([...t.honestDigests, ...written.goodDigests]);

    // --- The main node (synced before): two cycles, E's head possibly changed in between.
    const before = observeBefore(cd.dir, cd.main);
    const outcomes = await cycles(cd.main, 2, async () => {
      if (c.headAfter === 'backwards') await (written.evilReadable ? cd.w.keyed.put(headKey(EVIL), headBody(EVIL, 0)) : putRaw(cd.storeDir, headKey(EVIL), randomBytes(30)));
      if (c.headAfter === 'garbage') await (written.evilReadable ? cd.w.keyed.put(headKey(EVIL), Buffer.from('{garbage')) : putRaw(cd.storeDir, headKey(EVIL), Buffer.from('{garbage')));
    });
    const problems = invariantProblems({ node: cd.main, before, caseDir: cd.dir, allowed, outcomes });
    for (const o of outcomes) {
      const st = o.result?.record?.stats;
      if (st) for (const k of ['applied', 'deleted', 'conflicts', 'rejected'] as const) TALLY[k] += st[k];
    }
    TALLY.cases++;
    for (const [i, o] of outcomes.entries()) if (o.result && !o.result.ok) problems.push(`cycle ${i + 1} failed: ${o.result.error?.message}`);
    // Rejections: parse-level ones exactly as counted, reported once; paused peers at most once a cycle.
    const [o1, o2] = outcomes as [CycleOutcome, CycleOutcome];
    const parseRejects = o1.logs.filter((l) => isRecordRejection(l) && l.seq !== undefined).length;
    if (parseRejects < written.expectedRecordRejections || parseRejects > written.expectedRecordRejections + written.mayAlsoReject) {
      problems.push(`cycle 1 dropped ${parseRejects} records as invalid, expected ${written.expectedRecordRejections}${written.mayAlsoReject ? ` to ${written.expectedRecordRejections + written.mayAlsoReject}` : ''}`);
    }
    if (o2.logs.some(isRecordRejection)) problems.push(`cycle 2 reported rejected records again: ${show(o2.logs.filter(isRecordRejection))}`);
    for (const [i, o] of outcomes.entries()) {
      const peers = stream(o).map((l) => String(l.peer));
      if (new Set(peers).size !== peers.length) problems.push(`cycle ${i + 1} reported a paused peer more than once: ${show(peers)}`);
    }
    const evil = peerRow(cd.main, EVIL);
    const evilNames = new Set([EVIL, 'peer-eeee']);
    if (written.expectEvilStreamError) {
      if (!stream(o1).some((l) => evilNames.has(String(l.peer)))) problems.push(`cycle 1 did not report the hostile peer's bad head/segment (paused-peer lines: ${show(stream(o1))})`);
      // The error stays in status while nothing changes (headAfter may have fixed or changed it).
      if (c.headAfter === 'same' && !evil?.error) problems.push(`the hostile peer is not paused with an error in status (peer row ${show(evil)})`);
    }
    // The honest peer went on.
    if (c.tamperHonest === 'none') {
      for (const [p, body] of Object.entries(HONEST_FILES)) {
        const f = join(cd.main.root, p);
        if (!existsSync(f) || sha256File(f) !== sha(body)) problems.push(`the honest peer's ${p} did not arrive`);
      }
    } else if (t.encrypted) {
      const h = peerRow(cd.main, HONEST);
      if (c.tamperHonest !== 'blob' && !h?.error) problems.push(`the honest peer's tampered ${c.tamperHonest} was not reported (peer row ${show(h)})`);
      if (c.tamperHonest === 'blob' && existsSync(join(cd.main.root, 'honest/h2.txt'))) problems.push('a tampered blob was applied');
      if (c.tamperHonest === 'blob' && !o1.logs.some((l) => isWantedError(l) && l.path === 'honest/h2.txt')) problems.push('the tampered blob was not reported');
    }

    // --- A fresh node joining now: bootstraps (maybe from a hostile snapshot), then replays.
    if (c.snapshot !== 'none') {
      const fbefore = observeBefore(cd.dir, cd.fresh);
      const fout = await cycles(cd.fresh, 2);
      const fp = invariantProblems({ node: cd.fresh, before: fbefore, caseDir: cd.dir, allowed, outcomes: fout });
      problems.push(...fp.map((p) => `fresh node: ${p}`));
      if (snapshotIsBad(t, c)) {
        for (const [i, o] of fout.entries()) if (o.result && !o.result.ok) problems.push(`fresh node: cycle ${i + 1} failed on a bad snapshot: ${o.result.error?.message}`);
        if (c.tamperHonest === 'none') {
          for (const [p, body] of Object.entries(HONEST_FILES)) {
            const f = join(cd.fresh.root, p);
            if (!existsSync(f) || sha256File(f) !== sha(body)) problems.push(`fresh node: the honest peer's ${p} did not arrive (a bad snapshot must not stop a node from joining)`);
          }
        }
      }
    }
    if (ESCAPED.length > escapedBefore) problems.push(`uncaught: ${ESCAPED.slice(escapedBefore).map((e) => (e as Error)?.stack ?? String(e)).join('\n')}`);
    const clip = (p: string) => (p.length > 600 ? `${p.slice(0, 600)}…` : p);
    if (problems.length) assert.fail(`${problems.length} invariant(s) broken (case dir ${cd.dir}${process.env.FEDSYNC_FUZZ_KEEP ? ', kept' : ''}):\n- ${problems.map(clip).join('\n- ')}\ncase:\n${describeCase(c)}`);
  } finally {
    if (!process.env.FEDSYNC_FUZZ_KEEP) rm(cd.dir);
  }
}

/** What the node cases did in all, printed at the end: evidence that they reach apply. */
export const TALLY = { cases: 0, applied: 0, deleted: 0, conflicts: 0, rejected: 0 };
