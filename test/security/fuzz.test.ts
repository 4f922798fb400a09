// Fuzzing what a node reads from the store (DESIGN.md rule 4, "remote input is untrusted"),
// with fast-check: random and adversarial segments, heads, snapshots, records, blobs and
// ciphertexts, fed first to the decoders and then to real nodes.
//
// The split, for the default 10,000 cases (FEDSYNC_FUZZ_RUNS scales every part):
//
//   decode level, ~10,000 cases, a few seconds in all:
//     parseRecord on records broken field by field (2,500) and on arbitrary values (500);
//     decodeSegment on structured segments, with junk lines, wrong headers and bad gzip
//     (2,000) and on byte-level mutations of valid ones (1,500); decodeHead (1,500);
//     decodeSnapshot (1,000); the encrypting store on tampered, moved, replayed and forged
//     ciphertexts (1,000). Each decoder must reject what the spec rejects, accept what it
//     accepts, and never hand on an entry that breaks rule 4 (checked against an oracle
//     written here from the spec, not imported from src/).
//   node level, 300 cases, about a minute: a real node (runCycle in-process, file:// store,
//     plain 200 and encrypted 100) receives a hostile peer's heads, segments, blobs and
//     snapshots, written straight into the store, beside an honest peer publishing at the
//     same time; some cases also have a hostile bucket writer tamper with the honest peer's
//     objects, or a fresh node bootstrap from a hostile snapshot. After two cycles: nothing
//     outside the root changed (a sentinel directory beside it keeps its hash, the parent
//     directory gains nothing); no cycle threw, and none failed; every file in the root holds
//     content some party stored under its true digest; no set-id bits; no symlink resolves
//     outside the root; each rejection is one log line and one count in stats.rejected, a
//     rejected record is not reported again the next cycle, a paused peer at most once per
//     cycle; the honest peer's files arrived; the clock was not dragged into the future.
//
// Reproducible: the seed is printed (`# fuzz seed`); FEDSYNC_FUZZ_SEED=<seed> replays the
// whole run, and each property derives its own seed from it. FEDSYNC_FUZZ_RUNS=<n> sets the
// number of cases (e.g. 100000 for a long run, 1000 for a quick one).
//
// Bugs this suite found are listed at the end ("regressions"), each as a deterministic test
// (docs/security.md, "Known issues"). FEDSYNC_FUZZ_AVOID_KNOWN=1 keeps the random cases away
// from them, to look for others while they are open. FEDSYNC_FUZZ_KEEP=1 keeps each node
// case's directory (its path is in the failure message).
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { IntegrityError } from '../../src/fsutil/hash.js';
import { EncryptedStore } from '../../src/store/encrypted/encrypted.js';
import { newRequestCounts, type ObjectInfo, type PutResult, type Store } from '../../src/store/store.js';
import { decodeHead } from '../../src/sync/head.js';
import { formatHlc } from '../../src/sync/hlc.js';
import { decodeSnapshot, snapshotKey } from '../../src/sync/housekeep/snapshot.js';
import { headKey, segmentKey } from '../../src/sync/layout.js';
import { parseRecord } from '../../src/sync/record.js';
import { decodeSegment } from '../../src/sync/segment.js';
import { newEncryption } from '../../src/crypto/keys.js';
import {
  arbBadPath,
  arbHlc,
  arbId,
  arbMutation,
  arbRecord,
  arbValidPath,
  entryProblems,
  fcParams,
  isHlcText,
  isId,
  JUNK_JSON_LINES,
  JUNK_TEXT_LINES,
  mutate,
  pathOk,
  runs,
  SEED,
  sha,
  show,
  targetOkLexically,
  TOTAL_RUNS,
  type RecordSpec,
} from './fuzz-gen.js';
import {
  buildTemplate,
  copyTemplate,
  cycles,
  encodeSegment,
  encodeSnapshotBody,
  ESCAPED,
  EVIL,
  fileRecord,
  getRaw,
  gz,
  headBody,
  HONEST,
  HONEST_FILES,
  invariantProblems,
  isRecordRejection,
  isStreamRejection,
  observeBefore,
  peerRow,
  putRaw,
  rm,
  SET,
  sha256File,
  type CaseDir,
  type CycleOutcome,
  type Template,
} from './fuzz-node.js';

const AVOID_KNOWN = process.env.FEDSYNC_FUZZ_AVOID_KNOWN === '1';
console.log(`# fuzz seed ${SEED} (replay: FEDSYNC_FUZZ_SEED=${SEED}), ${TOTAL_RUNS} decode-level cases${AVOID_KNOWN ? ', avoiding known bugs' : ''}`);
const OPTS = { allowExternalSymlinks: false };

/** True for an Error the caller can catch and report (what pull and bootstrap do with it). */
function isReportable(err: unknown): boolean {
  return err instanceof Error && typeof err.message === 'string' && err.message.length > 0;
}

// =============================================================================================
// Decode level

describe('fuzz: decoders (decode level)', () => {
  it(`parseRecord decides exactly as rule 4 says, field by field (${runs(2500)} cases)`, () => {
    fc.assert(
      fc.property(arbRecord(), (spec) => {
        let out: Record<string, unknown> | null = null;
        let err: unknown = null;
        try {
          out = parseRecord(spec.raw, OPTS) as unknown as Record<string, unknown>;
        } catch (e) {
          err = e;
        }
        if (spec.valid === null) {
          if (out) assert.deepEqual(entryProblems(out), [], show(out));
          else assert.ok(isReportable(err));
          return;
        }
        if (!spec.valid) {
          assert.equal(out, null, `accepted an invalid record: ${show(spec.raw)} -> ${show(out)}`);
          assert.ok(isReportable(err), `rejection is not a reportable Error: ${String(err)}`);
          assert.ok(!String((err as Error).message).includes('\n') || String(spec.raw.path).includes('\n'), 'one-line rejection');
          return;
        }
        assert.ok(out, `rejected a valid record: ${show(spec.raw)}: ${(err as Error)?.message}`);
        assert.deepEqual(entryProblems(out), [], show(out));
        assert.equal(out.path, spec.raw.path);
        assert.equal(out.mode, (spec.raw.mode as number) & 0o777, 'set-id and sticky bits must be stripped');
        assert.equal(out.size, spec.raw.kind === 'file' ? spec.raw.size : 0);
        assert.equal(out.digest, spec.raw.kind === 'file' ? spec.raw.digest : null);
        assert.equal(out.target, spec.raw.kind === 'symlink' ? spec.raw.target : null);
        assert.deepEqual(Object.keys(out).sort(), ['author', 'digest', 'hlc', 'kind', 'mode', 'mtime', 'path', 'size', 'target', 'vv'], 'unknown fields must be dropped');
      }),
      fcParams(1, runs(2500)),
    );
  });

  it(`parseRecord on arbitrary values never hands on a bad entry (${runs(500)} cases)`, () => {
    const objectish = fc.oneof(
      fc.anything({ withNullPrototype: true, withBoxedValues: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true }),
      fc.dictionary(fc.constantFrom('path', 'kind', 'digest', 'size', 'mode', 'mtime', 'target', 'vv', 'hlc', 'author', '__proto__'), fc.jsonValue()),
    );
    fc.assert(
      fc.property(objectish, (raw) => {
        let out: Record<string, unknown> | null = null;
        try {
          out = parseRecord(raw, OPTS) as unknown as Record<string, unknown>;
        } catch (e) {
          assert.ok(isReportable(e), `threw a non-Error or an empty message: ${String(e)}`);
          return;
        }
        assert.deepEqual(entryProblems(out), [], `accepted ${show(raw)} as ${show(out)}`);
      }),
      fcParams(2, runs(500)),
    );
  });

  // Segments --------------------------------------------------------------------------------

  type Line = { kind: 'record'; spec: RecordSpec } | { kind: 'junk-json'; text: string } | { kind: 'junk-text'; text: string };
  const arbLine: fc.Arbitrary<Line> = fc.oneof(
    { arbitrary: arbRecord().map((spec): Line => ({ kind: 'record', spec })), weight: 20 },
    { arbitrary: fc.constantFrom(...JUNK_JSON_LINES).map((text): Line => ({ kind: 'junk-json', text })), weight: 1 },
    { arbitrary: fc.constantFrom(...JUNK_TEXT_LINES).map((text): Line => ({ kind: 'junk-text', text })), weight: 1 },
  );
  const HEADER_VARIANTS = ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'other-node', 'other-seq', 'count+1', 'count-1', 'v2', 'not-segment', 'missing', 'null', 'not-json', 'seq-string'] as const;
  const ENCODINGS = ['gzip', 'gzip', 'gzip', 'gzip', 'gzip-two-members', 'gzip-truncated', 'raw', 'empty'] as const;

  it(`decodeSegment refuses malformed segments whole and drops invalid records alone (${runs(2000)} cases)`, () => {
    fc.assert(
      fc.property(
        arbId,
        fc.integer({ min: 1, max: 999_999_999_999 }),
        fc.array(arbLine, { maxLength: 8 }),
        fc.constantFrom(...HEADER_VARIANTS),
        fc.constantFrom(...ENCODINGS),
        (node, seq, lines, hv, enc) => {
          const count = lines.length;
          const h: Record<string, unknown> = { fedsync: 'segment', v: 1, node, seq, count };
          let headerText = JSON.stringify(h);
          if (hv === 'other-node') headerText = JSON.stringify({ ...h, node: node === 'a'.repeat(26) ? 'b'.repeat(26) : 'a'.repeat(26) });
          if (hv === 'other-seq') headerText = JSON.stringify({ ...h, seq: seq + 1 });
          if (hv === 'count+1') headerText = JSON.stringify({ ...h, count: count + 1 });
          if (hv === 'count-1') headerText = JSON.stringify({ ...h, count: count - 1 });
          if (hv === 'v2') headerText = JSON.stringify({ ...h, v: 2 });
          if (hv === 'not-segment') headerText = JSON.stringify({ ...h, fedsync: 'head' });
          if (hv === 'seq-string') headerText = JSON.stringify({ ...h, seq: String(seq) });
          if (hv === 'null') headerText = 'null';
          if (hv === 'not-json') headerText = '{"fedsync":"segment",';
          const texts = lines.map((l) => (l.kind === 'record' ? JSON.stringify(l.spec.raw) : l.text));
          const all = hv === 'missing' ? texts : [headerText, ...texts];
          const text = all.join('\n') + '\n';
          let body: Buffer;
          if (enc === 'gzip') body = gzipSync(text);
          else if (enc === 'gzip-two-members') body = Buffer.concat([gzipSync(text.slice(0, text.length >> 1)), gzipSync(text.slice(text.length >> 1))]);
          else if (enc === 'gzip-truncated') body = gzipSync(text).subarray(0, Math.max(0, gzipSync(text).length - 5));
          else if (enc === 'raw') body = Buffer.from(text);
          else body = Buffer.alloc(0);

          const anyNotJson = all.some((t) => {
            try {
              JSON.parse(t);
              return false;
            } catch {
              return true;
            }
          });
          const expectRefused =
            !['gzip', 'gzip-two-members'].includes(enc) || anyNotJson || hv !== 'ok' || (hv === 'ok' && lines.some((l) => l.kind === 'junk-text'));
          let out: ReturnType<typeof decodeSegment> | null = null;
          let err: unknown = null;
          try {
            out = decodeSegment(body, node, seq, OPTS);
          } catch (e) {
            err = e;
          }
          const what = `header ${hv}, encoding ${enc}, lines ${show(texts, 400)}`;
          if (expectRefused) {
            assert.equal(out, null, `accepted a malformed segment (${what})`);
            assert.ok(isReportable(err), `refusal is not a reportable Error: ${String(err)}`);
            assert.ok((err as Error).message.startsWith(`segment ${node}/${seq} `), `the error names the segment: ${(err as Error).message}`);
            return;
          }
          assert.ok(out, `refused a well-formed segment (${what}): ${(err as Error)?.message}`);
          const validRecords = lines.filter((l) => l.kind === 'record' && l.spec.valid === true).length;
          const either = lines.filter((l) => l.kind === 'record' && l.spec.valid === null).length;
          assert.ok(out.records.length >= validRecords && out.records.length <= validRecords + either, `records kept: ${out.records.length}, expected ${validRecords}${either ? ` to ${validRecords + either}` : ''} (${what})`);
          assert.equal(out.rejected.length, count - out.records.length, `records dropped (${what})`);
          for (const r of out.records) assert.deepEqual(entryProblems(r as unknown as Record<string, unknown>), [], show(r));
          const lineNos = out.rejected.map((r) => r.line);
          assert.equal(new Set(lineNos).size, lineNos.length, 'each dropped record reported once');
          for (const r of out.rejected) {
            const l = lines[r.line - 2];
            assert.ok(l && !(l.kind === 'record' && l.spec.valid === true), `line ${r.line} reported but it was valid`);
          }
        },
      ),
      fcParams(3, runs(2000)),
    );
  });

  it(`decodeSegment on byte-level mutations of valid segments: refused, or only valid entries (${runs(1500)} cases)`, () => {
    fc.assert(
      fc.property(arbId, fc.array(arbRecord(), { minLength: 1, maxLength: 6 }), arbMutation, (node, specs, m) => {
        const text = [JSON.stringify({ fedsync: 'segment', v: 1, node, seq: 7, count: specs.length }), ...specs.map((s) => JSON.stringify(s.raw))].join('\n') + '\n';
        const body = mutate(gzipSync(text), m);
        let out: ReturnType<typeof decodeSegment>;
        try {
          out = decodeSegment(body, node, 7, OPTS);
        } catch (e) {
          assert.ok(isReportable(e), `threw a non-Error: ${String(e)}`);
          return;
        }
        for (const r of out.records) assert.deepEqual(entryProblems(r as unknown as Record<string, unknown>), [], `${show(m)}: ${show(r)}`);
      }),
      fcParams(4, runs(1500)),
    );
  });

  // Heads -----------------------------------------------------------------------------------

  it(`decodeHead accepts only well-formed heads of the node they are stored for (${runs(1500)} cases)`, () => {
    const field = <T>(ok: fc.Arbitrary<T>, ko: fc.Arbitrary<unknown>) => fc.oneof({ arbitrary: ok.map((v) => [v, true] as const), weight: 8 }, { arbitrary: ko.map((v) => [v, false] as const), weight: 1 });
    const arbHead = fc.record({
      node: fc.oneof({ arbitrary: fc.constant('self'), weight: 8 }, { arbitrary: fc.constantFrom('other', 'missing', 'upper'), weight: 1 }),
      seq: field(fc.oneof(fc.nat({ max: 1000 }), fc.constant(Number.MAX_SAFE_INTEGER)), fc.constantFrom(-1, 1.5, '3', null, 2 ** 53, Number.NaN)),
      hlc: field(arbHlc, fc.constantFrom('x', '', 3, null, '1763700000000-0')),
      heartbeat: field(fc.constantFrom(new Date().toISOString(), '2020-01-01T00:00:00Z', '1970-01-01'), fc.constantFrom('yesterday', '', 5, null)),
      fedsync: field(fc.constant('head'), fc.constantFrom('segment', 'HEAD', null)),
      v: field(fc.constant(1), fc.constantFrom(2, '1', 0)),
      name: fc.oneof(fc.string({ maxLength: 300 }), fc.constantFrom<unknown>(5, null, { x: 1 })),
      role: fc.oneof(fc.constantFrom('both', 'publish', 'subscribe'), fc.string({ maxLength: 60 }), fc.constant<unknown>(7)),
      acks: fc.oneof(fc.dictionary(fc.oneof(arbId, fc.constantFrom('bad', '__proto__', '')), fc.oneof(fc.nat(), fc.constantFrom<unknown>(-1, 1.5, 'x', null))), fc.constantFrom<unknown>(null, [], 5)),
      extra: fc.option(fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue(), { maxKeys: 3 }), { nil: undefined }),
    });
    const enc = fc.constantFrom('json', 'json', 'json', 'json', 'mutated', 'garbage', 'array');
    fc.assert(
      fc.property(arbId, arbHead, enc, arbMutation, (node, g, e, m) => {
        const claimed = g.node === 'self' ? node : g.node === 'other' ? (node === 'z'.repeat(26) ? 'y'.repeat(26) : 'z'.repeat(26)) : g.node === 'upper' ? node.toUpperCase() : undefined;
        const raw: Record<string, unknown> = { ...(g.extra ?? {}), fedsync: g.fedsync[0], v: g.v[0], node: claimed, name: g.name, role: g.role, seq: g.seq[0], hlc: g.hlc[0], heartbeat: g.heartbeat[0], acks: g.acks };
        const json = Buffer.from(JSON.stringify(raw));
        const body = e === 'json' ? json : e === 'mutated' ? mutate(json, m) : e === 'array' ? Buffer.from(JSON.stringify([raw])) : randomBytes(m.op === 'garbage' ? m.bytes.length : 20);
        const valid = e === 'json' && g.node === 'self' && [g.seq, g.hlc, g.heartbeat, g.fedsync, g.v].every(([, ok]) => ok);
        let out: ReturnType<typeof decodeHead> | null = null;
        let err: unknown = null;
        try {
          out = decodeHead(body, node);
        } catch (x) {
          err = x;
        }
        if (e === 'json') assert.equal(out !== null, valid, `${valid ? 'rejected a valid' : 'accepted an invalid'} head ${show(raw)}: ${(err as Error)?.message}`);
        if (!out) {
          assert.ok(isReportable(err), `threw a non-Error: ${String(err)}`);
          return;
        }
        assert.equal(out.node, node, 'a head is only ever for the node it is stored under');
        assert.ok(Number.isSafeInteger(out.seq) && out.seq >= 0, `seq ${out.seq}`);
        assert.ok(isHlcText(out.hlc));
        assert.ok(!Number.isNaN(Date.parse(out.heartbeat)));
        assert.ok(typeof out.name === 'string' && out.name.length <= 255);
        assert.ok(typeof out.role === 'string' && out.role.length <= 32);
        assert.equal(Object.getPrototypeOf(out.acks), Object.prototype);
        for (const [k, v] of Object.entries(out.acks)) assert.ok(isId(k) && Number.isSafeInteger(v) && v >= 0, `ack ${k}: ${v}`);
      }),
      fcParams(5, runs(1500)),
    );
  });

  // Snapshots -------------------------------------------------------------------------------

  it(`decodeSnapshot refuses the whole snapshot on any defect (${runs(1000)} cases)`, () => {
    const bundleLine = fc.oneof(
      { arbitrary: fc.record({ bundle: fc.constant(`1763700000000-000001-${'b'.repeat(26)}/0`), digest: fc.constant('c'.repeat(64)), offset: fc.nat(), length: fc.nat() }).map((b) => [b as unknown, true] as const), weight: 6 },
      {
        arbitrary: fc
          .constantFrom<unknown>(
            { bundle: '../../etc/passwd', digest: 'c'.repeat(64), offset: 0, length: 1 },
            { bundle: `1763700000000-000001-${'b'.repeat(26)}/0`, digest: 'C'.repeat(64), offset: 0, length: 1 },
            { bundle: `1763700000000-000001-${'b'.repeat(26)}/0`, digest: 'c'.repeat(64), offset: -1, length: 1 },
            { bundle: `1763700000000-000001-${'b'.repeat(26)}/0`, digest: 'c'.repeat(64), offset: 0, length: 2 ** 60 },
            null,
            [],
            'x',
          )
          .map((b) => [b, false] as const),
        weight: 1,
      },
    );
    fc.assert(
      fc.property(
        arbId,
        arbHlc,
        fc.array(arbRecord(), { maxLength: 5 }),
        fc.array(bundleLine, { maxLength: 3 }),
        fc.constantFrom('ok', 'ok', 'ok', 'ok', 'ok', 'name-mismatch', 'count', 'bad-cursor', 'not-json', 'not-snapshot'),
        fc.constantFrom('gzip', 'gzip', 'gzip', 'mutated', 'raw'),
        arbMutation,
        (node, hlc, specs, bundles, hv, enc, m) => {
          const name = `${hlc}-${node}`;
          const cursors: Record<string, unknown> = hv === 'bad-cursor' ? { [node]: -1 } : { [node]: 3 };
          const header = { fedsync: hv === 'not-snapshot' ? 'segment' : 'snapshot', v: 1, node, hlc: hv === 'name-mismatch' ? formatHlc(1, 1) : hlc, created: 'now', cursors, entries: specs.length + (hv === 'count' ? 1 : 0), bundles: bundles.length };
          const lines = [hv === 'not-json' ? '{"fedsync":' : JSON.stringify(header), ...specs.map((s) => JSON.stringify(s.raw)), ...bundles.map(([b]) => JSON.stringify(b))];
          const text = lines.join('\n') + '\n';
          const body = enc === 'gzip' ? gzipSync(text) : enc === 'raw' ? Buffer.from(text) : mutate(gzipSync(text), m);
          const undecided = specs.some((s) => s.valid === null) && !specs.some((s) => s.valid === false);
          const valid = enc === 'gzip' && hv === 'ok' && specs.every((s) => s.valid !== false) && bundles.every(([, ok]) => ok);
          let out: ReturnType<typeof decodeSnapshot> | null = null;
          let err: unknown = null;
          try {
            out = decodeSnapshot(name, body, OPTS);
          } catch (e) {
            err = e;
          }
          if (enc === 'gzip' && !(valid && undecided)) assert.equal(out !== null, valid, `${valid ? 'refused a valid' : 'accepted an invalid'} snapshot (${hv}; ${show(lines, 500)}): ${(err as Error)?.message}`);
          if (!out) {
            assert.ok(isReportable(err), `threw a non-Error: ${String(err)}`);
            return;
          }
          assert.equal(out.name, name);
          for (const e of out.entries) {
            assert.deepEqual(entryProblems(e as unknown as Record<string, unknown>), [], show(e));
            for (const v of (e as { versions?: Record<string, unknown>[] }).versions ?? []) {
              assert.deepEqual(entryProblems(v), [], show(v));
              assert.equal(v.path, e.path, 'a live version of another path');
            }
          }
          for (const [k, v] of Object.entries(out.cursors)) assert.ok(isId(k) && Number.isSafeInteger(v) && v >= 0);
          for (const b of out.bundles) {
            assert.match(b.bundle, /^[0-9]{13}-[0-9]{6}-[a-z2-7]{26}\/[0-9]{1,6}$/);
            assert.match(b.digest, /^[0-9a-f]{64}$/);
            assert.ok(Number.isSafeInteger(b.offset) && b.offset >= 0 && Number.isSafeInteger(b.length) && b.length >= 0);
          }
        },
      ),
      fcParams(6, runs(1000)),
    );
  });

  // Ciphertexts -----------------------------------------------------------------------------

  it(`the encrypting store returns only what was sealed under that very key, else IntegrityError (${runs(1000)} cases)`, async () => {
    const keys = newEncryption('fuzz').keys;
    const otherKeys = newEncryption('fuzz').keys; // another federation (another salt)
    const KEYS = [headKey(EVIL), headKey(HONEST), segmentKey(EVIL, 1), segmentKey(EVIL, 2), snapshotKey(`1763700000000-000001-${EVIL}`), `blobs/ab/ab${'1'.repeat(62)}`, `blobs/cd/cd${'2'.repeat(62)}`, `bundles/1763700000000-000001-${EVIL}/0`];
    const ATTACKS = ['none', 'mutate', 'move', 'replay-older', 'plain', 'other-federation', 'garbage-with-magic'] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...KEYS),
        fc.constantFrom(...KEYS),
        fc.uint8Array({ maxLength: 3000 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom(...ATTACKS),
        arbMutation,
        async (key, from, p1, p2, attack, m) => {
          const inner = new MemoryStore();
          const store = new EncryptedStore(inner, keys);
          const older = Buffer.from(p2);
          const plain = Buffer.from(p1);
          // What was ever sealed under each key: a replay of an older copy is authentic.
          await store.put(key, older);
          const olderSealed = inner.raw(key)!;
          await store.put(key, plain);
          const sealedUnder = new Map<string, Buffer[]>([[key, [older, plain]]]);
          if (from !== key) {
            await store.put(from, Buffer.from('another object'));
            sealedUnder.set(from, [Buffer.from('another object')]);
          }
          switch (attack) {
            case 'mutate':
              inner.setRaw(key, mutate(inner.raw(key)!, m));
              break;
            case 'move':
              inner.setRaw(key, inner.raw(from)!);
              break;
            case 'replay-older':
              inner.setRaw(key, olderSealed);
              break;
            case 'plain':
              inner.setRaw(key, plain);
              break;
            case 'other-federation': {
              const other = new EncryptedStore(inner, otherKeys);
              await other.put(key, plain);
              break;
            }
            case 'garbage-with-magic':
              inner.setRaw(key, Buffer.concat([Buffer.from(key.startsWith('blobs/') ? 'FSB2' : 'FSE1'), Buffer.from(m.op === 'garbage' ? m.bytes : p2)]));
              break;
          }
          let got: Buffer | null = null;
          let err: unknown = null;
          try {
            got = await store.get(key);
          } catch (e) {
            err = e;
          }
          if (got === null) {
            assert.ok(err instanceof IntegrityError, `${attack}: expected IntegrityError, got ${String(err)}`);
            if (attack === 'none' || attack === 'replay-older' || (attack === 'move' && from === key)) assert.fail(`${attack}: an authentic object failed: ${String(err)}`);
            return;
          }
          // Authentic: exactly something sealed under this key before (never another key's, never forged).
          assert.ok((sealedUnder.get(key) ?? []).some((b) => b.equals(got!)), `${attack} (${show(m)}): returned bytes never sealed under ${key}`);
          if (attack === 'mutate' || attack === 'plain' || attack === 'other-federation' || attack === 'garbage-with-magic') assert.fail(`${attack}: a forged object was accepted`);
          if (attack === 'replay-older') assert.ok(got.equals(older));
        },
      ),
      fcParams(7, runs(1000)),
    );
  });
});

/** A Store in memory: the backend under the encrypting store in the ciphertext fuzz. */
class MemoryStore implements Store {
  readonly location = 'memory://';
  readonly requests = newRequestCounts();
  private readonly objects = new Map<string, Buffer>();
  raw(key: string): Buffer | undefined {
    return this.objects.get(key);
  }
  setRaw(key: string, body: Buffer): void {
    this.objects.set(key, Buffer.from(body));
  }
  async get(key: string): Promise<Buffer | null> {
    return this.objects.get(key) ?? null;
  }
  async getStream(key: string): Promise<Readable | null> {
    const b = this.objects.get(key);
    return b ? Readable.from([b]) : null;
  }
  async put(key: string, body: Buffer): Promise<PutResult> {
    this.objects.set(key, Buffer.from(body));
    return { etag: sha(body) };
  }
  async putStream(key: string, open: () => Readable, size: number): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of open()) parts.push(c as Buffer);
    const body = Buffer.concat(parts);
    if (body.length !== size) throw new Error(`putStream: ${body.length} bytes, announced ${size}`);
    this.objects.set(key, body);
  }
  async stat(key: string): Promise<ObjectInfo | null> {
    const b = this.objects.get(key);
    return b ? { key, size: b.length, etag: sha(b), lastModified: new Date() } : null;
  }
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const k of [...this.objects.keys()].sort()) if (k.startsWith(prefix)) yield (await this.stat(k))!;
  }
  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.objects.delete(k);
  }
  async close(): Promise<void> {}
}

// =============================================================================================
// Node level

/** Paths a hostile peer aims at: the honest node's files, the local escaping symlink, tricks. */
const LONG_PATH = ('a'.repeat(254) + '/').repeat(16) + 'f'.repeat(15); // valid (4095 bytes), too long once under the root
const LOOP_PATH = 'd/up/'.repeat(41) + 'x'; // valid text; through `d/up -> ..` 41 times, ELOOP
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
interface NodeRec {
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
interface NodeCase {
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

function arbNodeCase(encrypted: boolean): fc.Arbitrary<NodeCase> {
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

/** Snapshots a fresh node must not trust (so it must still sync from the journals). */
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

async function runNodeCase(t: Template, c: NodeCase): Promise<void> {
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
      if (c.tamperHonest === 'blob' && !o1.logs.some((l) => isRecordRejection(l) && l.path === 'honest/h2.txt')) problems.push('the tampered blob was not reported');
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
const TALLY = { cases: 0, applied: 0, deleted: 0, conflicts: 0, rejected: 0 };

describe('fuzz: hostile peers against real nodes (node level)', () => {
  const templates: Partial<Record<'plain' | 'encrypted', Template>> = {};
  after(() => console.log(`# node cases: ${TALLY.cases}; the receiving node applied ${TALLY.applied}, deleted ${TALLY.deleted}, made ${TALLY.conflicts} conflict copies, rejected ${TALLY.rejected}`));
  before(async () => {
    templates.plain = await buildTemplate(false);
    templates.encrypted = await buildTemplate(true);
  });
  after(() => {
    for (const t of Object.values(templates)) rm(t.dir);
  });

  it(`plain store: ${runs(200)} cases`, async () => {
    await fc.assert(
      fc.asyncProperty(arbNodeCase(false), (c) => runNodeCase(templates.plain!, c)),
      fcParams(20, runs(200), { shrink: false }),
    );
  });

  it(`encrypted store: ${runs(100)} cases (hostile peers with and without the passphrase)`, async () => {
    await fc.assert(
      fc.asyncProperty(arbNodeCase(true), (c) => runNodeCase(templates.encrypted!, c)),
      fcParams(21, runs(100), { shrink: false }),
    );
  });
});

// =============================================================================================
// Regressions: what this suite found, each as one deterministic case asserting the right behaviour.

describe('fuzz regressions (hostile input found to break a node)', () => {
  const templates: Partial<Record<'plain' | 'encrypted', Template>> = {};
  before(async () => {
    templates.plain = await buildTemplate(false);
    templates.encrypted = await buildTemplate(true);
  });
  after(() => {
    for (const t of Object.values(templates)) rm(t.dir);
  });

  const rec = (path: string, over: Record<string, unknown>, n: number) => ({ ...fileRecord(path, 'evil content 1', EVIL, n), digest: undefined, size: 0, ...over });

  it('B1: with encryption, a head or segment that fails authentication pauses that peer only (src/sync/pull.ts)', async () => {
    for (const what of ['head', 'segment'] as const) {
      await runNodeCase(templates.encrypted!, { segments: [{ kind: 'raw', variant: 'garbage' }], head: what === 'head' ? 'garbage' : 'ok', headAfter: 'same', writer: 'bucket', tamperHonest: 'none', snapshot: 'none' });
    }
  });

  it('B2: a head announcing an absurd seq neither hangs nor exhausts memory (src/sync/pull.ts)', () => {
    const t = templates.plain!;
    const cd = copyTemplate(t);
    try {
      putRaw(cd.storeDir, headKey(EVIL), headBody(EVIL, Number.MAX_SAFE_INTEGER));
      // In a child with a small heap and a deadline: the bug takes the process down or hangs it.
      const script = `import { runCycle } from ${JSON.stringify(new URL('../../src/sync/cycle.ts', import.meta.url).href)};
import { parseConfig } from ${JSON.stringify(new URL('../../src/config/load.ts', import.meta.url).href)};
import { createLogger } from ${JSON.stringify(new URL('../../src/log/logger.ts', import.meta.url).href)};
const config = parseConfig(process.env.CONFIG_TEXT, 'fuzz.toml');
const r = await runCycle(config, config.sets[0], createLogger({ level: 'silent' }));
console.log(JSON.stringify({ ok: r.ok, error: r.error?.message ?? null }));`;
      const file = join(cd.dir, 'child.mts');
      writeFileSync(file, script);
      const configText = [`node = "main"`, `state_dir = "${join(cd.dir, 'main-state')}"`, '[store]', `url = "file://${join(cd.dir, 'store')}"`, '[[sync]]', `name = "${SET}"`, `path = "${cd.main.root}"`, 'settle = "0s"', ''].join('\n');
      const started = Date.now();
      const r = spawnSync(process.execPath, ['--max-old-space-size=256', '--import', 'tsx', file], { cwd: process.cwd(), env: { ...process.env, CONFIG_TEXT: configText }, timeout: 30_000, encoding: 'utf8' });
      const ms = Date.now() - started;
      assert.ok(r.status === 0 && !r.signal, `the cycle did not complete within 30 s on a 256 MB heap (exit ${r.status}, signal ${r.signal}, ${ms} ms): ${r.stderr.slice(-600)}`);
      const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; error: string | null };
      assert.ok(res.ok, `cycle failed: ${res.error}`);
      for (const [p, body] of Object.entries(HONEST_FILES)) assert.equal(sha256File(join(cd.main.root, p)), sha(body), `the honest peer's ${p} must still arrive`);
      assert.ok((peerRow(cd.main, EVIL)?.cursor ?? 0) < 1000, 'the hostile peer\'s cursor jumped');
    } finally {
      rm(cd.dir);
    }
  });

  it('B3: a symlink target that is lexically inside but leads out through another symlink is not written (src/sync/record.ts targetProblem)', async () => {
    const t = templates.plain!;
    const cd = copyTemplate(t);
    try {
      const recs = [
        rec('d', { kind: 'dir', mode: 0o755, mtime: 0 }, 1),
        rec('d/up', { kind: 'symlink', target: '..', mode: 0o777 }, 2),
        rec('esc', { kind: 'symlink', target: 'd/up/../outside', mode: 0o777 }, 3),
        rec('passwd', { kind: 'symlink', target: 'd/up/d/up/d/up/d/up/d/up/d/up/d/up/d/up/../../../../../../../../etc/passwd', mode: 0o777 }, 4),
      ];
      putRaw(cd.storeDir, segmentKey(EVIL, 1), gz([JSON.stringify({ fedsync: 'segment', v: 1, node: EVIL, seq: 1, count: recs.length }), ...recs.map((r) => JSON.stringify(r))].join('\n') + '\n'));
      putRaw(cd.storeDir, headKey(EVIL), headBody(EVIL, 1));
      const before = observeBefore(cd.dir, cd.main);
      const out = await cycles(cd.main, 1);
      assert.deepEqual(invariantProblems({ node: cd.main, before, caseDir: cd.dir, allowed: t.honestDigests, outcomes: out }), []);
    } finally {
      rm(cd.dir);
    }
  });

  it('B4: a malformed or unauthentic newest snapshot does not stop a new node from joining (src/sync/bootstrap.ts, housekeep/snapshot.ts)', async () => {
    for (const [t, snapshot, writer] of [
      [templates.plain!, 'garbage', 'peer'],
      [templates.plain!, 'bad-entry', 'peer'],
      [templates.encrypted!, 'tampered', 'peer'],
      [templates.encrypted!, 'garbage', 'bucket'],
    ] as const) {
      await runNodeCase(t, { segments: [], head: 'none', headAfter: 'same', writer, tamperHonest: 'none', snapshot });
    }
  });

  it('B6: a record cannot write through a parent that another record of the same batch turns into a symlink meanwhile (src/sync/apply.ts)', async () => {
    // `d/sub/evil.txt` passes the parent check (d is created as a directory), then downloads;
    // meanwhile `d` becomes a symlink to the local `link -> ../outside`, and the final rename
    // follows it. Leaves are applied eight at a time, so the check and the rename are far apart.
    const t = templates.plain!;
    for (let attempt = 0; attempt < 3; attempt++) {
      const cd = copyTemplate(t);
      try {
        const big = 'y'.repeat(2_000_000); // a slower download widens the window
        await cd.w.keyed.put(cd.w.blobKey(sha(big)), Buffer.from(big));
        const recs = [
          { ...fileRecord('d/sub/evil.txt', big, EVIL, 1) },
          rec('d', { kind: 'symlink', target: 'link', mode: 0o777 }, 2),
        ];
        putRaw(cd.storeDir, segmentKey(EVIL, 1), gz([JSON.stringify({ fedsync: 'segment', v: 1, node: EVIL, seq: 1, count: recs.length }), ...recs.map((r) => JSON.stringify(r))].join('\n') + '\n'));
        putRaw(cd.storeDir, headKey(EVIL), headBody(EVIL, 1));
        const before = observeBefore(cd.dir, cd.main);
        const out = await cycles(cd.main, 1);
        // The link `d -> link` itself is B3's business; here, nothing may be written through it.
        const problems = invariantProblems({ node: cd.main, before, caseDir: cd.dir, allowed: new Set([...t.honestDigests, sha(big)]), outcomes: out }).filter((p) => !p.startsWith('symlink "d" -> "link" resolves outside'));
        assert.deepEqual(problems, [], `attempt ${attempt + 1}`);
        assert.ok(!existsSync(join(cd.main.outside, 'sub', 'evil.txt')), 'written outside the root');
      } finally {
        rm(cd.dir);
      }
    }
  });

  it('B7: a bad peer is reported once per cycle, also when another peer sends the node to a snapshot (src/sync/receive.ts)', async () => {
    // E's head does not parse; G announces segments it does not have, which reads as pruned
    // history: the node catches up from the snapshot and fetches every peer again.
    const t = templates.plain!;
    const cd = copyTemplate(t);
    try {
      const G = 'g'.repeat(26);
      putRaw(cd.storeDir, headKey(EVIL), Buffer.from('{"fedsync":"head",'));
      putRaw(cd.storeDir, headKey(G), headBody(G, 2));
      const [o] = await cycles(cd.main, 1);
      const evilLines = o!.logs.filter((l) => isStreamRejection(l) && l.peer === EVIL);
      assert.equal(evilLines.length, 1, `E reported ${evilLines.length} times in one cycle`);
      assert.equal(o!.result?.record?.stats.rejected, o!.logs.filter((l) => isStreamRejection(l) || isRecordRejection(l)).length);
    } finally {
      rm(cd.dir);
    }
  });

  // As root, permissions do not apply: the case is then run again in a child process as
  // `nobody` (setpriv, util-linux), which is how a web server's fedsync usually runs.
  const nonRoot = process.getuid?.() !== 0;
  const setpriv = spawnSync('/bin/sh', ['-c', 'command -v setpriv']).status === 0;
  it('B8: a read-only directory from a peer does not stop a node that runs as a normal user (src/sync/apply.ts)', { skip: nonRoot || setpriv ? false : 'as root without setpriv: cannot run as a normal user' }, async (t) => {
    if (!nonRoot) {
      const file = new URL(import.meta.url).pathname;
      const asNobody = ['--reuid=nobody', '--regid=nogroup', '--clear-groups'];
      if (spawnSync('setpriv', [...asNobody, '/bin/sh', '-c', 'test -r "$1"', 'sh', file]).status !== 0) {
        t.skip('the checkout is not readable by nobody, so the case cannot run as a normal user here');
        return;
      }
      // Without the parent runner's context, the child reports in plain TAP on its stdout.
      const { NODE_TEST_CONTEXT: _, ...env } = process.env;
      const r = spawnSync(
        'setpriv',
        [...asNobody, process.execPath, '--import', 'tsx', '--test', '--test-name-pattern=^B8', file],
        { encoding: 'utf8', env: { ...env, HOME: '/tmp', TMPDIR: '/tmp', FEDSYNC_FUZZ_RUNS: '1' }, cwd: join(new URL('../..', import.meta.url).pathname), timeout: 240_000 },
      );
      assert.equal(r.status, 0, `B8 as nobody:\n${r.stdout.slice(-3000)}${r.stderr.slice(-1000)}`);
      assert.match(r.stdout, /^# pass 1$/m, 'the case ran as nobody');
      return;
    }
    // A directory published with mode 0o555, then a file inside it: without root, the write
    // failed with EACCES, which was retried forever and held every peer's cursor back.
    await runNodeCase(templates.plain!, {
      segments: [
        {
          kind: 'records',
          records: [
            { path: 'locked', kind: 'dir', target: '', content: '', blob: 'good', mode: 0o555, hlcKind: 'now', vvKind: 'own', valid: true },
            { path: 'locked/inside.txt', kind: 'file', target: '', content: 'evil1', blob: 'good', mode: 0o644, hlcKind: 'now', vvKind: 'own', valid: true },
          ] as unknown as NodeRec[],
        },
      ],
      head: 'ok',
      headAfter: 'same',
      writer: 'peer',
      tamperHonest: 'none',
      snapshot: 'none',
    });
  });

  it('B5: a record whose path is valid text but unusable on this disk (too long under the root, a symlink loop) is rejected, not retried forever (src/sync/disk.ts)', async () => {
    const failures: string[] = [];
    for (const [what, path] of [
      ['too long under the root', LONG_PATH],
      ['through a symlink loop', LOOP_PATH],
    ] as const) {
      const t = templates.plain!;
      await runNodeCase(t, {
        segments: [
          {
            kind: 'records',
            records: [
              { path: 'd', kind: 'dir', target: '', content: '', blob: 'good', mode: 0o755, hlcKind: 'now', vvKind: 'own', valid: true },
              { path: 'd/up', kind: 'symlink', target: '..', content: '', blob: 'good', mode: 0o777, hlcKind: 'now', vvKind: 'own', valid: true },
              { path, kind: 'file', target: '', content: 'evil1', blob: 'good', mode: 0o644, hlcKind: 'now', vvKind: 'own', valid: true },
            ] as unknown as NodeRec[],
          },
        ],
        head: 'ok',
        headAfter: 'same',
        writer: 'peer',
        tamperHonest: 'none',
        snapshot: 'none',
      }).catch((err: Error) => failures.push(`${what}: ${err.message.split('\ncase:')[0]}`));
    }
    assert.deepEqual(failures, []);
  });
});

describe('fuzz: nothing escaped', () => {
  it('no uncaught exception or unhandled rejection in the whole file', () => {
    assert.deepEqual(ESCAPED.map((e) => (e as Error)?.stack ?? String(e)), []);
  });
});
