// Generators of hostile store content for the fuzz suite (test/security/fuzz-*.test.ts), and
// independent oracles: what DESIGN.md rule 4 and docs/protocol.md say is acceptable, written
// again here from the spec rather than imported from src/, so a bug in the validator is not
// also a bug in the test's idea of "valid". Also the seed, the scale and the end-of-file check
// that every part of the suite shares.
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { describe, it } from 'node:test';

export const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
export const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------
// Seed and scale
//
// The split, for the default 10,000 cases (FEDSYNC_FUZZ_RUNS scales every part):
//
//   decode level, ~10,000 cases, a few seconds in all:
//     fuzz-decode.test.ts (9,000): parseRecord on records broken field by field (2,500) and on
//       arbitrary values (500); decodeSegment on structured segments, with junk lines, wrong
//       headers and bad gzip (2,000) and on byte-level mutations of valid ones (1,500);
//       decodeHead (1,500); decodeSnapshot (1,000);
//     fuzz-cipher.test.ts (1,000): the encrypting store on tampered, moved, replayed and forged
//       ciphertexts.
//   node level, fuzz-nodes.test.ts, 300 cases, about a minute: plain store 200, encrypted 100.
//   fuzz-regressions.test.ts: the bugs the suite found, each a fixed case (not scaled).
//
// Each test file is its own process with its own seed, printed first (`# fuzz seed`):
// FEDSYNC_FUZZ_SEED=<seed> replays that file's run (set for the whole suite, every file uses
// it), and each property derives its own seed from it.

/** FEDSYNC_FUZZ_SEED replays a run; otherwise a fresh seed, printed by each file (announce). */
export const SEED: number = (() => {
  const env = process.env.FEDSYNC_FUZZ_SEED;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isSafeInteger(n)) throw new Error(`FEDSYNC_FUZZ_SEED=${env} is not an integer`);
    return n | 0;
  }
  return (Math.random() * 2 ** 31) | 0;
})();

/** FEDSYNC_FUZZ_RUNS: the total number of cases (default 10,000 plus the node cases); every property scales with it. */
export const TOTAL_RUNS = Number(process.env.FEDSYNC_FUZZ_RUNS ?? 10_000);
if (!(TOTAL_RUNS > 0)) throw new Error(`FEDSYNC_FUZZ_RUNS=${process.env.FEDSYNC_FUZZ_RUNS} is not a positive number`);
const SCALE = TOTAL_RUNS / 10_000;
/** Runs for a property whose share of the default 10,000 is `base`. */
export const runs = (base: number) => Math.max(1, Math.round(base * SCALE));

/** FEDSYNC_FUZZ_AVOID_KNOWN=1 keeps the random cases away from the known bugs (the regressions). */
export const AVOID_KNOWN = process.env.FEDSYNC_FUZZ_AVOID_KNOWN === '1';

/** Prints the seed that replays this file, and what it runs. */
export function announce(what: string): void {
  console.log(`# fuzz seed ${SEED} (replay: FEDSYNC_FUZZ_SEED=${SEED}), ${what}${AVOID_KNOWN ? ', avoiding known bugs' : ''}`);
}

/** Errors that escaped everything (they would have crashed a real run), in this file's process. */
export const ESCAPED: unknown[] = [];
process.on('uncaughtException', (err) => void ESCAPED.push(err));
process.on('unhandledRejection', (err) => void ESCAPED.push(err));

/** The last suite of every fuzz file: nothing escaped while its cases ran. */
export function checkNothingEscaped(): void {
  describe('fuzz: nothing escaped', () => {
    it('no uncaught exception or unhandled rejection in the whole file', () => {
      assert.deepEqual(ESCAPED.map((e) => (e as Error)?.stack ?? String(e)), []);
    });
  });
}

/** fast-check parameters for the n-th property: its own seed derived from SEED, so each replays alone. */
export function fcParams<T>(n: number, numRuns: number, opts: { shrink?: boolean } = {}): fc.Parameters<T> {
  // Node cases are expensive: report the first failing case as generated rather than shrink it.
  return { seed: (SEED + n * 7919) | 0, numRuns, endOnFailure: opts.shrink === false, verbose: 0 };
}

// ---------------------------------------------------------------------------------------------
// Oracles (the spec, independently)

export const MARKER = '.fedsync';

/** DESIGN rule 4 / protocol.md "Rule 4", for a path from the store. */
export function pathOk(p: unknown): boolean {
  if (typeof p !== 'string' || p === '') return false;
  if (Buffer.byteLength(p) > 4096) return false;
  if (p.includes('\0') || p.includes('\\') || p.startsWith('/')) return false;
  const segs = p.split('/');
  if (segs[0] === MARKER) return false;
  return segs.every((s) => s !== '' && s !== '.' && s !== '..' && Buffer.byteLength(s) <= 255);
}

/** A symlink target, judged by its text (the spec's lexical rule). */
export function targetOkLexically(path: string, target: unknown): boolean {
  if (typeof target !== 'string' || target === '' || target.includes('\0') || Buffer.byteLength(target) > 4096) return false;
  if (target.startsWith('/')) return false;
  const r = posix.normalize(posix.join(posix.dirname(path), target));
  return !(r === '..' || r.startsWith('../') || r === MARKER || r.startsWith(`${MARKER}/`));
}

export const isId = (s: unknown): s is string => typeof s === 'string' && /^[a-z2-7]{26}$/.test(s);
export const isHlcText = (s: unknown): s is string => typeof s === 'string' && /^\d{13}-\d{6}$/.test(s);

/** What any entry a decoder hands to the planner must satisfy. */
export function entryProblems(e: Record<string, unknown>, allowExternal = false): string[] {
  const out: string[] = [];
  if (!pathOk(e.path)) out.push(`bad path ${JSON.stringify(e.path)}`);
  if (!['file', 'symlink', 'dir', 'deleted'].includes(e.kind as string)) out.push('bad kind');
  if (typeof e.mode !== 'number' || !Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o777) out.push(`mode ${String(e.mode)} is not within 0o777`);
  if (e.kind === 'file' && !(typeof e.digest === 'string' && /^[0-9a-f]{64}$/.test(e.digest))) out.push('file without a digest');
  if (e.kind !== 'file' && e.digest !== null) out.push('digest on a non-file');
  if (typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0) out.push('bad size');
  if (e.kind === 'symlink') {
    if (!allowExternal && !targetOkLexically(e.path as string, e.target)) out.push(`target ${JSON.stringify(e.target)} leaves the root`);
  } else if (e.target !== null) out.push('target on a non-symlink');
  const vv = e.vv as Record<string, unknown>;
  if (!vv || typeof vv !== 'object' || Object.keys(vv).length === 0) out.push('empty vv');
  else for (const [k, v] of Object.entries(vv)) if (!isId(k) || typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) out.push(`bad vv entry ${k}`);
  if (!isHlcText(e.hlc)) out.push('bad hlc');
  if (!isId(e.author)) out.push('bad author');
  if (typeof e.mtime !== 'number' || !Number.isInteger(e.mtime) || e.mtime < 0) out.push('bad mtime');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Values: each generator yields [value, valid] so a case knows what the validator must say.

type V<T = unknown> = fc.Arbitrary<[T, boolean]>;
const good = <T>(a: fc.Arbitrary<T>): V<T> => a.map((v) => [v, true] as [T, boolean]);
const bad = <T>(a: fc.Arbitrary<T>): V<T> => a.map((v) => [v, false] as [T, boolean]);
/** Mostly valid: a record with several fields has a fair chance of being entirely valid. */
const mostly = <T>(ok: V<T>, ko: V<T>, koWeight = 1): V<T> => fc.oneof({ arbitrary: ok, weight: 9 }, { arbitrary: ko, weight: koWeight });

export const arbId = fc.array(fc.constantFrom(...B32), { minLength: 26, maxLength: 26 }).map((a) => a.join(''));
const arbHex64 = fc.array(fc.constantFrom(...'0123456789abcdef'), { minLength: 64, maxLength: 64 }).map((a) => a.join(''));
export const arbHlc = fc.tuple(fc.integer({ min: 0, max: 9_999_999_999_999 }), fc.integer({ min: 0, max: 999_999 })).map(([w, c]) => `${String(w).padStart(13, '0')}-${String(c).padStart(6, '0')}`);

/** Path segments that are valid but unusual. */
const ODD_SEGMENTS = ['a', 'b', 'c', 'index.html', 'wp-content', 'é', 'e\u0301', 'ｆｕｌｌ', 'x y', '.hidden', '...', '.fedsync2', 'Fedsync', '.FEDSYNC', '.fedsync-tmp', 'con', '-rf', '\u202egnp.exe', 'new\nline', 'tab\there', '%2e%2e', '~', '$HOME', '*', 'a'.repeat(255), 'é'.repeat(127)];
const arbSeg = fc.oneof(
  { arbitrary: fc.constantFrom(...ODD_SEGMENTS), weight: 3 },
  { arbitrary: fc.stringMatching(/^[a-c]{1,3}$/), weight: 3 },
  { arbitrary: fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }).filter((s) => pathOk(s) && s !== MARKER), weight: 1 },
);
export const arbValidPath: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.array(arbSeg, { minLength: 1, maxLength: 4 }).map((s) => s.join('/')).filter((p) => pathOk(p)), weight: 12 },
  // Exactly at the limits: 4096 bytes, segments of 255 bytes; a nested .fedsync is an ordinary name.
  { arbitrary: fc.constantFrom(('a'.repeat(254) + '/').repeat(16) + 'b'.repeat(16), 'a/.fedsync/x', 'x/.fedsync'), weight: 1 },
);
/** Paths rule 4 rejects, by construction. */
export const BAD_PATHS = [
  '', '.', '..', '/', '//', '/abs', '/etc/passwd', '../x', '../../../../../../tmp/x', 'a/../b', 'a/../../x', 'a/./b', './a', 'a/.', 'a/..',
  'a//b', 'a/', '.fedsync', '.fedsync/x', '.fedsync/tmp/evil', '.fedsync/drift/x', 'a\\b', '..\\..\\x', 'nul\0x', 'x/\0', 'x'.repeat(256),
  'a/' + 'x'.repeat(256), 'é'.repeat(128), ('a'.repeat(254) + '/').repeat(16) + 'b'.repeat(17), 'ab/'.repeat(1400) + 'c',
];
export const arbBadPath: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...BAD_PATHS),
  fc.tuple(arbValidPath, fc.constantFrom('/..', '/.', '/', '//x', '\\x', '\0', '/../..')).map(([p, s]) => p + s),
  fc.tuple(fc.constantFrom('../', '/', './', '.fedsync/', '\\'), arbValidPath).map(([s, p]) => s + p),
);

export interface RecordSpec {
  raw: Record<string, unknown>;
  /** What the validator must decide; null when either answer is acceptable. */
  valid: boolean | null;
}

function targetFor(path: string): V<string> {
  const depth = path.split('/').length - 1; // how many ".." the link's directory allows
  const ok = good(fc.constantFrom('x', 'sub/y', 'index.html', '../'.repeat(depth) + 'z', './x'));
  const ko = bad(fc.constantFrom('', '/etc/passwd', '/', '../'.repeat(depth + 1) + 'z', '../'.repeat(depth + 3), '../'.repeat(depth) + '.fedsync/tmp', '../'.repeat(depth) + '.fedsync', 'a\0b', 'x'.repeat(4097)));
  // A ".." after a name stays inside by its text, but may leave through a link on disk: the
  // spec's text rule accepts it, a stricter validator may refuse it; either is fine here.
  const either = fc.constantFrom('a/b/../c', 'x/../y').map((v) => [v, null] as unknown as [string, boolean]);
  return fc.oneof({ arbitrary: mostly(ok, ko, 2), weight: 12 }, { arbitrary: either, weight: 1 });
}

/** A JSON record, valid or broken in one or more fields, with what the validator must decide. */
export function arbRecord(opts: { author?: string; paths?: fc.Arbitrary<string> } = {}): fc.Arbitrary<RecordSpec> {
  const path = opts.paths ? good(opts.paths) : mostly(good(arbValidPath), bad(arbBadPath), 2);
  return path.chain(([p, pOk]) => {
    const kind = mostly(good(fc.constantFrom('file', 'file', 'symlink', 'dir', 'deleted')), bad(fc.constantFrom<unknown>('File', '', 'hardlink', 3, null, 'device')));
    return kind.chain(([k, kOk]) => {
      const fields = {
        digest: k === 'file' ? mostly(good(arbHex64), bad(fc.constantFrom<unknown>('A'.repeat(64), 'a'.repeat(63), 'g'.repeat(64), null, 7, '../../etc'))) : good(fc.constantFrom<unknown>(undefined, 'a'.repeat(64), 'junk')),
        size: mostly(good(fc.oneof(fc.nat({ max: 5000 }), fc.constant(Number.MAX_SAFE_INTEGER))), bad(fc.constantFrom<unknown>(-1, 1.5, 2 ** 53, '12', null))),
        mode: mostly(good(fc.oneof(fc.constantFrom(0o644, 0o755, 0o4755, 0o2775, 0o1777, 0o7777, 0, 0o777), fc.integer({ min: 0, max: 0o7777 }))), bad(fc.constantFrom<unknown>(-1, 0o10000, 1.5, '644', null))),
        mtime: mostly(good(fc.oneof(fc.integer({ min: 0, max: 2e12 }), fc.constantFrom(0, 1e14, 1.7e12 + 0.5))), bad(fc.constantFrom<unknown>(-1, 1e14 + 1, 1e300, '1700000000000', null))),
        vv: mostly(
          good(fc.dictionary(arbId, fc.integer({ min: 1, max: 1e6 }), { minKeys: 1, maxKeys: 3 })),
          bad(fc.constantFrom<unknown>({}, [], null, { NOTANID: 1 }, { [B32.slice(0, 26)]: 0 }, { [B32.slice(0, 26)]: -3 }, { [B32.slice(0, 26)]: 1.5 }, { [B32.slice(0, 26)]: '1' })),
        ),
        hlc: mostly(good(arbHlc), bad(fc.constantFrom<unknown>('1-1', '99999999999999-000000', '1763700000000-1', '', 5, null))),
        author: mostly(good(opts.author ? fc.constant(opts.author) : arbId), bad(fc.constantFrom<unknown>('A'.repeat(26), 'a'.repeat(25), '', null, 'a'.repeat(26) + '/'))),
        target: k === 'symlink' && pOk ? targetFor(p) : k === 'symlink' ? good(fc.constant<unknown>('x')) : good(fc.constantFrom<unknown>(undefined, '/etc/passwd')),
        // Unknown fields are dropped. (Not `versions`: a snapshot entry carries its live versions there.)
        extra: fc.option(fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'stat', 'x'), fc.jsonValue(), { maxKeys: 2 }), { nil: undefined }),
      };
      return fc.record(fields).map((f): RecordSpec => {
        const raw: Record<string, unknown> = { ...(f.extra ?? {}) };
        Object.assign(raw, { path: p, kind: k, digest: f.digest[0], size: f.size[0], mode: f.mode[0], mtime: f.mtime[0], target: f.target[0], vv: f.vv[0], hlc: f.hlc[0], author: f.author[0] });
        const checks = [pOk, kOk, ...[f.digest, f.size, f.mode, f.mtime, f.vv, f.hlc, f.author, f.target].map(([, ok]) => ok as boolean | null)];
        const valid = checks.includes(false) ? false : checks.includes(null) ? null : true;
        return { raw, valid };
      });
    });
  });
}

/** Lines that are not a record: some are JSON (rejected alone), some are not (refuse the segment). */
export const JUNK_JSON_LINES = ['null', '[]', '42', '"path"', '{}', '{"path":"a"}', 'true', '{"path":"a","kind":"file","__proto__":{"digest":"x"}}'];
export const JUNK_TEXT_LINES = ['{"path":', '', ' ', 'not json', '\u0000', '{"a":1}{"b":2}', "{'path':'a'}", 'NaN'];

// ---------------------------------------------------------------------------------------------
// Byte-level mutations of a valid object

export type Mutation =
  | { op: 'flip'; at: number; bits: number }
  | { op: 'truncate'; at: number }
  | { op: 'append'; bytes: Uint8Array }
  | { op: 'splice'; at: number; bytes: Uint8Array }
  | { op: 'garbage'; bytes: Uint8Array }
  | { op: 'empty' };

export const arbMutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('garbage' as const), bytes: fc.uint8Array({ maxLength: 300 }) }), weight: 1 },
  { arbitrary: fc.constant({ op: 'empty' as const }), weight: 1 },
);

/** Applies a mutation; the result always differs from the input. */
export function mutate(body: Buffer, m: Mutation): Buffer {
  const n = body.length;
  let out: Buffer;
  switch (m.op) {
    case 'flip': {
      if (n === 0) return Buffer.from([m.bits]);
      out = Buffer.from(body);
      out[m.at % n]! ^= m.bits;
      return out;
    }
    case 'truncate':
      return n === 0 ? Buffer.from([0]) : body.subarray(0, m.at % n);
    case 'append':
      return Buffer.concat([body, m.bytes]);
    case 'splice': {
      const at = n === 0 ? 0 : m.at % n;
      return Buffer.concat([body.subarray(0, at), m.bytes, body.subarray(at)]);
    }
    case 'garbage':
      out = Buffer.from(m.bytes);
      return out.equals(body) ? Buffer.concat([out, Buffer.from([1])]) : out;
    case 'empty':
      return n === 0 ? Buffer.from([0]) : Buffer.alloc(0);
  }
}

/** Keeps a one-line, bounded description of a value in an assertion message. */
export function show(v: unknown, max = 300): string {
  let s: string;
  try {
    s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x)) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
}
