import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { decodeHead, encodeHead, type Head } from './head.js';
import type { Entry } from './record.js';
import { decodeSegment, encodeSegment } from './segment.js';

const A = 'a'.repeat(26);
const B = 'b'.repeat(26);
const opts = { allowExternalSymlinks: false };

function entry(path: string, over: Partial<Entry> = {}): Entry {
  return { path, kind: 'file', digest: 'ab'.repeat(32), size: 3, mode: 0o644, mtime: 1_700_000_000_000, target: null, vv: { [A]: 1 }, hlc: '1700000000000-000001', author: A, ...over };
}

const records: Entry[] = [
  entry('a.txt'),
  entry('dir', { kind: 'dir', digest: null, size: 0, mode: 0o755, mtime: 0 }),
  entry('dir/link', { kind: 'symlink', digest: null, size: 0, mode: 0o777, target: '../a.txt' }),
  entry('old', { kind: 'deleted', digest: null, size: 0, mode: 0, mtime: 0, vv: { [A]: 2, [B]: 1 } }),
  entry('café menu.pdf', { size: 0 }),
];

/** A segment body from raw lines, for the malformed cases. */
const gz = (...lines: string[]) => gzipSync(Buffer.from(lines.join('\n') + '\n'));
const header = (over: Record<string, unknown> = {}) => JSON.stringify({ fedsync: 'segment', v: 1, node: A, seq: 7, count: 1, ...over });
const line = (over: Partial<Entry> = {}) => JSON.stringify(entry('x', over));

describe('segments', () => {
  it('round-trip, and re-encoding is byte-identical', () => {
    const body = encodeSegment(A, 7, records);
    const d = decodeSegment(body, A, 7, opts);
    assert.deepEqual(d.rejected, []);
    assert.deepEqual(d.records, records);
    assert.ok(encodeSegment(A, 7, d.records).equals(body));
    assert.ok(encodeSegment(A, 7, records).equals(body), 'deterministic');
  });

  it('an empty segment round-trips', () => {
    assert.deepEqual(decodeSegment(encodeSegment(A, 1, []), A, 1, opts), { records: [], rejected: [], forced: false });
  });

  it('is a header line then one JSON record per line', () => {
    const lines = gunzipSync(encodeSegment(A, 3, records.slice(0, 2))).toString().split('\n');
    assert.deepEqual(JSON.parse(lines[0]!), { fedsync: 'segment', v: 1, node: A, seq: 3, count: 2 });
    assert.equal(lines.length, 4);
    assert.equal(lines[3], '');
  });

  const refused: [string, () => Buffer, RegExp][] = [
    ['not gzip at all', () => Buffer.from('{"fedsync":"segment"}\n'), /not valid gzip/],
    ['truncated gzip', () => encodeSegment(A, 7, records).subarray(0, 20), /not valid gzip/],
    ['gzip missing its trailer', () => { const b = encodeSegment(A, 7, records); return b.subarray(0, b.length - 4); }, /not valid gzip/],
    ['an empty body', () => Buffer.alloc(0), /not valid gzip|no valid header/],
    ['gzip of nothing', () => gzipSync(Buffer.alloc(0)), /no valid header/],
    ['no header', () => gz(line()), /no valid header/],
    ['a header of another kind', () => gz(header({ fedsync: 'head' }), line()), /no valid header/],
    ['a header of another version', () => gz(header({ v: 2 }), line()), /no valid header/],
    ['a null header', () => gz('null', line()), /no valid header/],
    ['another node', () => gz(header({ node: B }), line()), /claims to be/],
    ['another seq', () => gz(header({ seq: 8 }), line()), /claims to be/],
    ['a seq as a string', () => gz(header({ seq: '7' }), line()), /claims to be/],
    ['fewer records than announced', () => gz(header({ count: 2 }), line()), /truncated/],
    ['more records than announced', () => gz(header({ count: 1 }), line(), line()), /truncated/],
    ['a line that is not JSON', () => gz(header({ count: 2 }), line(), '{"path": "x", '), /line 3 is not valid JSON/],
    ['an empty line', () => gz(header({ count: 2 }), '', line()), /line 2 is not valid JSON/],
    ['a JSON header that is not a segment header', () => gz('{"hello": 1}'), /no valid header/],
  ];
  for (const [what, body, why] of refused) {
    it(`refuses a segment with ${what}`, () => assert.throws(() => decodeSegment(body(), A, 7, opts), why));
  }

  it('drops only the invalid records, saying which line and why', () => {
    const body = gz(header({ count: 4 }), line(), JSON.stringify({ ...entry('x'), path: '../escape' }), line({ path: 'y', mode: 0o4755 }), JSON.stringify({ ...entry('z'), kind: 'socket' }));
    const d = decodeSegment(body, A, 7, opts);
    assert.deepEqual(d.records.map((r) => r.path), ['x', 'y']);
    assert.equal(d.records[1]!.mode, 0o755, 'set-id bit stripped');
    assert.deepEqual(d.rejected.map((r) => r.line), [3, 5]);
    assert.match(d.rejected[0]!.reason, /"\.\." segment/);
    assert.match(d.rejected[1]!.reason, /invalid kind/);
  });

  it('refuses a segment that inflates beyond the limit (gzip bomb)', () => {
    // 300 gzip members of 1 MiB each: tiny on the wire, 300 MiB inflated.
    const member = gzipSync(Buffer.alloc(1024 * 1024, 0x20));
    const bomb = Buffer.concat(Array.from({ length: 300 }, () => member));
    assert.throws(() => decodeSegment(bomb, A, 7, opts), /not valid gzip/);
  });
});

describe('heads', () => {
  const head: Head = { fedsync: 'head', v: 1, node: A, name: 'web1', role: 'both', seq: 12, hlc: '1700000000000-000001', heartbeat: '2026-01-02T03:04:05.000Z', acks: { [B]: 4 } };

  it('round-trip', () => {
    assert.deepEqual(decodeHead(encodeHead(head), A), head);
  });

  const refused: [string, unknown, RegExp][] = [
    ['not JSON', '{', /not valid JSON/],
    ['null', null, /not a fedsync head/],
    ['an array', [head], /not a fedsync head/],
    ['another kind', { ...head, fedsync: 'segment' }, /not a fedsync head/],
    ['another version', { ...head, v: 2 }, /not a fedsync head/],
    ['another node', { ...head, node: B }, /claims to belong to/],
    ['a negative seq', { ...head, seq: -1 }, /invalid seq/],
    ['a fractional seq', { ...head, seq: 1.5 }, /invalid seq/],
    ['a string seq', { ...head, seq: '3' }, /invalid seq/],
    ['a missing seq', { ...head, seq: undefined }, /invalid seq/],
    ['a bad hlc', { ...head, hlc: 'soon' }, /invalid hlc/],
    ['a bad heartbeat', { ...head, heartbeat: 'yesterday' }, /invalid heartbeat/],
    ['a missing heartbeat', { ...head, heartbeat: undefined }, /invalid heartbeat/],
  ];
  for (const [what, body, why] of refused) {
    it(`refuses a head that is ${what}`, () => {
      const buf = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      assert.throws(() => decodeHead(buf, A), why);
    });
  }

  it('keeps only valid acks and bounds name and role', () => {
    const h = decodeHead(Buffer.from(JSON.stringify({ ...head, name: 'n'.repeat(1000), role: 'r'.repeat(100), acks: { [B]: 3, bogus: 1, [A]: -1, ['c'.repeat(26)]: 1.5, ['d'.repeat(26)]: 0 } })), A);
    assert.deepEqual(h.acks, { [B]: 3, ['d'.repeat(26)]: 0 });
    assert.equal(h.name.length, 255);
    assert.equal(h.role.length, 32);
    const bare = decodeHead(Buffer.from(JSON.stringify({ ...head, name: 5, role: undefined, acks: 'x', extra: true })), A);
    assert.equal(bare.name, '');
    assert.equal(bare.role, 'both');
    assert.deepEqual(bare.acks, {});
    assert.ok(!('extra' in bare));
  });
});
