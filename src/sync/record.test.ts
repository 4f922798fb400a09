import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newNodeId } from './ids.js';
import { parseRecord, pathProblem, recordJson, sameContent, sameState, targetProblem, type Entry } from './record.js';

const A = 'a'.repeat(26);
const DIGEST = 'ab'.repeat(32);
const opts = { allowExternalSymlinks: false };

function raw(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { path: 'dir/file.txt', kind: 'file', digest: DIGEST, size: 12, mode: 0o644, mtime: 1_700_000_000_123, vv: { [A]: 1 }, hlc: '1700000000123-000000', author: A, ...over };
}

describe('pathProblem', () => {
  const ok = ['a', 'a/b/c.txt', 'wp-content/uploads/2026/11/photo.jpg', '.htaccess', 'a/.fedsync', '.fedsyncx/y', 'café menu.pdf', '…', 'a..b', '...', ' spaced ', 'x'.repeat(255), `${'d'.repeat(200)}/`.repeat(20) + 'f'];
  for (const p of ok) it(`accepts ${JSON.stringify(p.slice(0, 40))}`, () => assert.equal(pathProblem(p), null));

  const bad: [unknown, RegExp][] = [
    ['', /empty/],
    [undefined, /not a string/],
    [42, /not a string/],
    [['a'], /not a string/],
    ['../escape', /"\.\." segment/],
    ['..', /"\.\." segment/],
    ['a/../../x', /"\.\." segment/],
    ['a/..', /"\.\." segment/],
    ['./a', /"\." segment/],
    ['a/./b', /"\." segment/],
    ['.', /"\." segment/],
    ['/abs', /absolute/],
    ['/', /absolute/],
    ['//x', /absolute/],
    ['a//b', /empty segment/],
    ['a/', /empty segment/],
    ['a\0b', /NUL/],
    ['\0', /NUL/],
    ['a\\b', /backslash/],
    ['..\\x', /backslash/],
    ['C:\\x', /backslash/],
    ['.fedsync', /inside \.fedsync/],
    ['.fedsync/x', /inside \.fedsync/],
    ['.fedsync/tmp/abc.tmp', /inside \.fedsync/],
    ['x'.repeat(256), /longer than 255/],
    [`a/${'é'.repeat(128)}`, /longer than 255/], // 256 bytes in UTF-8
    [`${'d'.repeat(200)}/`.repeat(21) + 'f', /too long/],
  ];
  for (const [p, why] of bad) {
    it(`rejects ${JSON.stringify(String(p).slice(0, 40))}`, () => {
      const got = pathProblem(p);
      assert.ok(got, 'rejected');
      assert.match(got, why);
    });
  }
});

describe('targetProblem', () => {
  it('accepts targets inside the root', () => {
    assert.equal(targetProblem('l', 'a/b', false), null);
    assert.equal(targetProblem('x/y/l', '../z', false), null);
    assert.equal(targetProblem('x/y/l', '../../z', false), null);
    assert.equal(targetProblem('x/l', '.', false), null);
    assert.equal(targetProblem('x/l', '..', false), null);
    assert.equal(targetProblem('l', '.fedsyncx', false), null);
  });

  it('rejects targets that leave the root or enter .fedsync/', () => {
    const cases: [string, string, RegExp][] = [
      ['l', '/etc/passwd', /absolute/],
      ['l', '..', /leaves the root/],
      ['l', '../x', /leaves the root/],
      ['x/y/l', '../../../z', /leaves the root/],
      ['l', 'a/../../x', /after a name/],
      // `a` may itself be a link: ".." after it could lead anywhere, so it is refused outright.
      ['l', 'a/../b', /after a name/],
      ['l', '.fedsync', /inside \.fedsync/],
      ['x/l', '../.fedsync/tmp', /inside \.fedsync/],
      ['l', 'a/../.fedsync/x', /after a name/],
    ];
    for (const [path, target, why] of cases) assert.match(targetProblem(path, target, false) ?? '', why, `${path} -> ${target}`);
  });

  it('rejects empty, NUL and over-long targets even when external targets are allowed', () => {
    for (const allow of [false, true]) {
      assert.match(targetProblem('l', '', allow) ?? '', /empty/);
      assert.match(targetProblem('l', 42, allow) ?? '', /empty/);
      assert.match(targetProblem('l', 'a\0b', allow) ?? '', /NUL/);
      assert.match(targetProblem('l', 'a/'.repeat(2049), allow) ?? '', /too long/);
    }
  });

  it('allows external targets only when configured', () => {
    assert.equal(targetProblem('l', '/etc/passwd', true), null);
    assert.equal(targetProblem('l', '../../x', true), null);
  });
});

describe('parseRecord', () => {
  it('returns a valid record in canonical form', () => {
    const e = parseRecord({ ...raw(), extra: 'dropped', target: 'ignored' }, opts);
    assert.deepEqual(e, { path: 'dir/file.txt', kind: 'file', digest: DIGEST, size: 12, mode: 0o644, mtime: 1_700_000_000_123, target: null, vv: { [A]: 1 }, hlc: '1700000000123-000000', author: A });
  });

  it('strips set-id and sticky bits', () => {
    assert.equal(parseRecord(raw({ mode: 0o4755 }), opts).mode, 0o755);
    assert.equal(parseRecord(raw({ mode: 0o2775 }), opts).mode, 0o775);
    assert.equal(parseRecord(raw({ mode: 0o1777 }), opts).mode, 0o777);
    assert.equal(parseRecord(raw({ mode: 0o7777 }), opts).mode, 0o777);
  });

  it('keeps only what each kind has', () => {
    const dir = parseRecord(raw({ kind: 'dir', size: 99, mode: 0o755, mtime: 0 }), opts);
    assert.equal(dir.digest, null);
    assert.equal(dir.size, 0);
    const del = parseRecord(raw({ kind: 'deleted', digest: 'junk', mode: 0, mtime: 0 }), opts);
    assert.equal(del.digest, null);
    const link = parseRecord(raw({ kind: 'symlink', target: '../other', path: 'a/l', digest: undefined, mode: 0o777 }), opts);
    assert.equal(link.target, '../other');
    assert.equal(link.digest, null);
    assert.equal(parseRecord(raw({ mtime: 1.9 }), opts).mtime, 1);
  });

  const bad: [string, unknown, RegExp][] = [
    ['null', null, /not an object/],
    ['an array', [raw()], /not an object/],
    ['a string', 'x', /not an object/],
    ['a missing path', raw({ path: undefined }), /path is empty/],
    ['a traversing path', raw({ path: '../escape' }), /"\.\." segment/],
    ['an absolute path', raw({ path: '/abs' }), /absolute/],
    ['a path inside .fedsync', raw({ path: '.fedsync/x' }), /\.fedsync/],
    ['a path with NUL', raw({ path: 'a\0b' }), /NUL/],
    ['a path with a backslash', raw({ path: 'a\\b' }), /backslash/],
    ['an unknown kind', raw({ kind: 'fifo' }), /invalid kind/],
    ['a missing kind', raw({ kind: undefined }), /invalid kind/],
    ['a missing vv', raw({ vv: undefined }), /vv is not an object/],
    ['an array vv', raw({ vv: [1] }), /vv is not an object/],
    ['an empty vv', raw({ vv: {} }), /vv is empty/],
    ['a vv with a bad node id', raw({ vv: { NODE: 1 } }), /invalid node id/],
    ['a vv with a zero counter', raw({ vv: { [A]: 0 } }), /invalid counter/],
    ['a vv with a negative counter', raw({ vv: { [A]: -1 } }), /invalid counter/],
    ['a vv with a fractional counter', raw({ vv: { [A]: 1.5 } }), /invalid counter/],
    ['a vv with a string counter', raw({ vv: { [A]: '1' } }), /invalid counter/],
    ['a huge vv', raw({ vv: Object.fromEntries(Array.from({ length: 10_001 }, () => [newNodeId(), 1])) }), /too large/],
    ['a missing hlc', raw({ hlc: undefined }), /invalid hlc/],
    ['a malformed hlc', raw({ hlc: '17-1' }), /invalid hlc/],
    ['a missing author', raw({ author: undefined }), /invalid author/],
    ['a malformed author', raw({ author: 'Alice' }), /invalid author/],
    ['a negative mode', raw({ mode: -1 }), /invalid mode/],
    ['a mode above 0o7777', raw({ mode: 0o10000 }), /invalid mode/],
    ['a fractional mode', raw({ mode: 1.5 }), /invalid mode/],
    ['a string mode', raw({ mode: '644' }), /invalid mode/],
    ['a negative mtime', raw({ mtime: -1 }), /invalid mtime/],
    ['a string mtime', raw({ mtime: '1' }), /invalid mtime/],
    ['an absurd mtime', raw({ mtime: 1e15 }), /invalid mtime/],
    ['a missing size', raw({ size: undefined }), /invalid size/],
    ['a negative size', raw({ size: -1 }), /invalid size/],
    ['a fractional size', raw({ size: 1.5 }), /invalid size/],
    ['a file without digest', raw({ digest: undefined }), /invalid digest/],
    ['a file with an upper-case digest', raw({ digest: DIGEST.toUpperCase() }), /invalid digest/],
    ['a file with a short digest', raw({ digest: 'abc' }), /invalid digest/],
    ['a digest that names a path', raw({ digest: `../../${'a'.repeat(58)}` }), /invalid digest/],
    ['a symlink without target', raw({ kind: 'symlink', path: 'l' }), /symlink target is empty/],
    ['a symlink leaving the root', raw({ kind: 'symlink', path: 'l', target: '../../etc' }), /leaves the root/],
    ['a symlink to an absolute path', raw({ kind: 'symlink', path: 'l', target: '/etc/passwd' }), /absolute/],
    ['a symlink into .fedsync', raw({ kind: 'symlink', path: 'l', target: '.fedsync/tmp' }), /\.fedsync/],
  ];
  for (const [what, input, why] of bad) {
    it(`rejects ${what}`, () => assert.throws(() => parseRecord(input, opts), why));
  }

  it('accepts an external symlink only when configured', () => {
    const r = raw({ kind: 'symlink', path: 'l', target: '/srv/shared' });
    assert.throws(() => parseRecord(r, opts), /absolute/);
    assert.equal(parseRecord(r, { allowExternalSymlinks: true }).target, '/srv/shared');
  });

  it('round-trips through recordJson', () => {
    for (const over of [{}, { kind: 'dir', digest: undefined, size: 0, mode: 0o755, mtime: 0 }, { kind: 'deleted', digest: undefined, size: 0, mode: 0, mtime: 0 }, { kind: 'symlink', digest: undefined, size: 0, target: 'x', mode: 0o777 }]) {
      const e = parseRecord(raw(over), opts);
      const again = parseRecord(JSON.parse(recordJson(e)), opts);
      assert.deepEqual(again, e);
      assert.equal(recordJson(again), recordJson(e));
    }
  });
});

describe('sameState and sameContent', () => {
  const f: Entry = parseRecord(raw(), opts);
  it('files compare digest, mode and mtime; content only the digest', () => {
    assert.ok(sameState(f, { ...f }));
    assert.ok(!sameState(f, { ...f, mode: 0o600 }));
    assert.ok(!sameState(f, { ...f, mtime: f.mtime + 1 }));
    const chmodded: Entry = { ...f, mode: 0o600, mtime: 1 };
    assert.ok(sameContent(f, chmodded));
    assert.ok(!sameContent(f, { ...f, digest: 'cd'.repeat(32) }));
    assert.ok(!sameContent(f, { ...f, kind: 'deleted', digest: null }));
  });
  it('directories compare mode, symlinks their target, deletions are all alike', () => {
    const d = { kind: 'dir' as const, digest: null, target: null, mode: 0o755, mtime: 0 };
    assert.ok(sameState(d, { ...d, mtime: 5 }));
    assert.ok(!sameState(d, { ...d, mode: 0o700 }));
    const l = { kind: 'symlink' as const, digest: null, target: 'a', mode: 0o777, mtime: 1 };
    assert.ok(sameState(l, { ...l, mtime: 2 }));
    assert.ok(!sameState(l, { ...l, target: 'b' }));
    const x = { kind: 'deleted' as const, digest: null, target: null, mode: 0, mtime: 0 };
    assert.ok(sameState(x, { ...x, mtime: 9 }));
  });
});
