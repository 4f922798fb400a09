// Fuzzing the decoders of what a node reads from the store (DESIGN.md rule 4, "remote input is
// untrusted"), with fast-check: random and adversarial records, segments, heads and snapshots.
// Each decoder must reject what the spec rejects, accept what it accepts, and never hand on an
// entry that breaks rule 4 (checked against an oracle written from the spec in fuzz-gen.ts,
// not imported from src/).
//
// 9,000 of the default 10,000 decode-level cases, a few seconds (the split is in fuzz-gen.ts):
// parseRecord on records broken field by field (2,500) and on arbitrary values (500);
// decodeSegment on structured segments, with junk lines, wrong headers and bad gzip (2,000) and
// on byte-level mutations of valid ones (1,500); decodeHead (1,500); decodeSnapshot (1,000).
//
// Reproducible: the seed is printed (`# fuzz seed`); FEDSYNC_FUZZ_SEED=<seed> replays the run.
// FEDSYNC_FUZZ_RUNS=<n> sets the number of cases of the whole suite (e.g. 100000 for a long
// run, 1000 for a quick one); this file runs its share of them.
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { decodeHead } from '../../src/sync/head.js';
import { formatHlc } from '../../src/sync/hlc.js';
import { decodeSnapshot } from '../../src/sync/housekeep/snapshot.js';
import { parseRecord } from '../../src/sync/record.js';
import { decodeSegment } from '../../src/sync/segment.js';
import {
  announce, arbHlc, arbId, arbMutation, arbRecord, checkNothingEscaped, entryProblems, fcParams, isHlcText, isId, JUNK_JSON_LINES, JUNK_TEXT_LINES,
  mutate, runs, show, TOTAL_RUNS, type RecordSpec,
} from './fuzz-gen.js';

announce(`${runs(9000)} of ${TOTAL_RUNS} decode-level cases: the decoders`);
const OPTS = { allowExternalSymlinks: false };

/** True for an Error the caller can catch and report (what pull and bootstrap do with it). */
function isReportable(err: unknown): boolean {
  return err instanceof Error && typeof err.message === 'string' && err.message.length > 0;
}

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

  it(`decodeSnapshot refuses a damaged snapshot whole and leaves out invalid lines alone (${runs(1000)} cases)`, () => {
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
          // Integrity (gzip, header, name, count, JSON) decides the whole; a well-formed line
          // that fails validation is left out alone (DESIGN rule 8).
          const valid = enc === 'gzip' && hv === 'ok';
          let out: ReturnType<typeof decodeSnapshot> | null = null;
          let err: unknown = null;
          try {
            out = decodeSnapshot(name, body, OPTS);
          } catch (e) {
            err = e;
          }
          if (enc === 'gzip') assert.equal(out !== null, valid, `${valid ? 'refused a valid' : 'accepted an invalid'} snapshot (${hv}; ${show(lines, 500)}): ${(err as Error)?.message}`);
          if (!out) {
            assert.ok(isReportable(err), `threw a non-Error: ${String(err)}`);
            return;
          }
          assert.equal(out.name, name);
          const rejected = out.rejected ?? [];
          assert.equal(out.entries.length + out.bundles.length + rejected.length, specs.length + bundles.length, 'every line is used or left out');
          if (enc === 'gzip' && !specs.some((s) => s.valid === null)) {
            assert.equal(out.entries.length, specs.filter((s) => s.valid === true).length, `valid entries used, invalid ones left out (${show(lines, 500)})`);
            assert.equal(out.bundles.length, bundles.filter(([, ok]) => ok).length, 'valid bundle lines used');
          }
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
});

checkNothingEscaped();
