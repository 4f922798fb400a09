import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { encodeHead } from '../../src/sync/head.js';
import { formatHlc } from '../../src/sync/hlc.js';
import { blobKey, headKey, segmentKey } from '../../src/sync/layout.js';
import type { Entry } from '../../src/sync/record.js';
import { encodeSegment } from '../../src/sync/segment.js';
import { cleanup, cluster, cycle, journal, logLines, settle, sha, tree, type Cluster } from './harness.js';

after(cleanup);

const EVIL = 'evi1evi1evi1evi1evi1evi1ev'.replace(/1/g, 'l');
const EVIL2 = 'm'.repeat(26);
const EVIL3 = 'n'.repeat(26);

/** Writes an object straight into the store directory, as a peer with write access could. */
function put(c: Cluster, key: string, body: Buffer | string): void {
  const f = join(c.storeDir, ...key.split('/'));
  mkdirSync(join(f, '..'), { recursive: true });
  writeFileSync(f, body);
}

function head(node: string, seq: number, over: Record<string, unknown> = {}): Buffer {
  return encodeHead({ fedsync: 'head', v: 1, node, name: `evil-${node.slice(0, 2)}`, role: 'both', seq, hlc: formatHlc(Date.now(), 0), heartbeat: new Date().toISOString(), acks: {}, ...over } as Parameters<typeof encodeHead>[0]);
}

function rec(path: string, over: Partial<Entry> = {}): Entry {
  const body = 'pwned';
  return { path, kind: 'file', digest: sha(body), size: body.length, mode: 0o644, mtime: Date.now() - 60_000, target: null, vv: { [EVIL]: 1 }, hlc: formatHlc(Date.now(), 0), author: EVIL, ...over };
}

describe('hostile store content', () => {
  it('is rejected and logged; nothing outside the root is touched; honest peers go on', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    // A directory beside alpha's root, reachable through a local symlink that is never published.
    const sentinel = join(c.dir, 'alpha', 'sentinel');
    mkdirSync(join(sentinel, 'sub'), { recursive: true });
    writeFileSync(join(sentinel, 'secret.txt'), 'top secret');
    writeFileSync(join(sentinel, 'sub', 'keep.txt'), 'keep me');
    symlinkSync(sentinel, join(a.root, 'link'));
    writeFileSync(join(a.root, 'mine.txt'), 'alpha');
    await settle(c);
    const sentinelBefore = tree(sentinel, { all: true });
    const besideBefore = readdirSync(join(c.dir, 'alpha')).sort();
    const rootBefore = tree(a.root);

    // The blob for "pwned" exists, so only validation stands between a record and the disk.
    put(c, blobKey(sha('pwned')), 'pwned');
    // A blob stored under a digest its bytes do not have.
    put(c, blobKey(sha('expected')), 'EXPECTED');
    // The honest peer publishes in the same window (before the hostile objects appear, so it
    // does not itself act on them: in alpha's cycle both arrive together).
    writeFileSync(join(b.root, 'honest.txt'), 'from beta');
    await cycle(b);
    const hostile: Entry[] = [
      rec('../escape'),
      rec('/abs'),
      rec('a/../../x'),
      rec('.fedsync/x'),
      rec('.fedsync/tmp/y'),
      rec('a\\b'),
      rec('nul\0name'),
      rec('link/evil.txt'),
      rec('link/secret.txt'),
      rec('link/sub/keep.txt', { kind: 'deleted', digest: null, size: 0, mode: 0, mtime: 0 }),
      rec('link/sub', { kind: 'deleted', digest: null, size: 0, mode: 0, mtime: 0 }),
      rec('bad-blob.txt', { digest: sha('expected'), size: 'expected'.length }),
      rec('evil-link', { kind: 'symlink', digest: null, size: 0, target: '../../sentinel' }),
      rec('abs-link', { kind: 'symlink', digest: null, size: 0, target: '/etc' }),
      rec('setuid.txt', { mode: 0o4777 }),
    ];
    put(c, segmentKey(EVIL, 1), encodeSegment(EVIL, 1, hostile));
    put(c, segmentKey(EVIL, 2), encodeSegment(EVIL, 2, [rec('after-truncated.txt')]).subarray(0, 30));
    put(c, headKey(EVIL), head(EVIL, 2));
    // A peer whose only segment has a line that is not JSON.
    put(c, segmentKey(EVIL2, 1), gzipSync(`${JSON.stringify({ fedsync: 'segment', v: 1, node: EVIL2, seq: 1, count: 2 })}\n${JSON.stringify(rec('evil2.txt', { author: EVIL2, vv: { [EVIL2]: 1 } }))}\n{"path":\n`));
    put(c, headKey(EVIL2), head(EVIL2, 1));
    // A head that claims to be someone else's, and junk beside the heads.
    put(c, headKey(EVIL3), head(EVIL3, 1, { node: b.id }));
    put(c, 'heads/../../oops.json', 'x');
    put(c, 'heads/notanode.json', 'x');

    const r = await cycle(a);
    assert.ok(r.ok);
    assert.equal(readFileSync(join(a.root, 'honest.txt'), 'utf8'), 'from beta', 'the honest record is applied');

    // Nothing outside the root moved.
    assert.deepEqual(tree(sentinel, { all: true }), sentinelBefore);
    assert.deepEqual(readdirSync(join(c.dir, 'alpha')).sort(), besideBefore);
    assert.ok(!existsSync(join(c.dir, 'escape')) && !existsSync(join(c.dir, 'x')) && !existsSync('/abs'));
    // Inside, only what is legitimate: the honest file and the one hostile-but-valid file
    // (setuid.txt, a well-formed record), without its set-id bit.
    const { ['honest.txt']: honest, ['setuid.txt']: setuid, ...rest } = tree(a.root);
    assert.deepEqual(rest, rootBefore);
    assert.equal(honest?.kind, 'file');
    assert.deepEqual(setuid && setuid.kind === 'file' ? setuid.mode : null, 0o777);
    assert.deepEqual(readdirSync(join(a.root, '.fedsync')).sort(), ['README', 'tmp']);
    assert.deepEqual(readdirSync(join(a.root, '.fedsync', 'tmp')), []);
    // Nothing from outside was read and published.
    assert.ok(!existsSync(join(c.storeDir, blobKey(sha('top secret')))));
    assert.ok(!journal(c, a.id).some((s) => s.records.some((x) => x.path.startsWith('link'))));

    // Every rejection is logged with its reason.
    const errors = logLines(a).filter((l) => l.level === 'error');
    const reasons = errors.map((l) => `${String(l.msg)} ${String(l.reason ?? '')}`).join('\n');
    for (const want of [/"\.\." segment/, /absolute/, /inside \.fedsync/, /backslash/, /NUL/, /parent "link" is a symlink/, /blob [0-9a-f]+: digest/, /symlink target leaves the root/, /symlink target is absolute/, /segment \S+\/2 is not valid gzip/, /line 3 is not valid JSON/, /claims to belong to/]) {
      assert.match(reasons, want);
    }
    // Nine records are refused as they are; three cannot be applied on this disk or with this
    // blob now (a parent is a symlink here, the blob fails its digest): kept wanted, retried.
    assert.equal(errors.filter((l) => l.msg === 'rejected a remote record').length, 9);
    assert.equal(errors.filter((l) => l.msg === 'cannot apply a remote record now; it stays wanted and is retried').length, 3);

    // The next cycle is as calm: still ok, still rejected, nothing new on disk.
    writeFileSync(join(b.root, 'honest2.txt'), 'again');
    await cycle(b);
    assert.ok((await cycle(a)).ok);
    assert.equal(readFileSync(join(a.root, 'honest2.txt'), 'utf8'), 'again');
    assert.deepEqual(tree(sentinel, { all: true }), sentinelBefore);
    assert.ok(!existsSync(join(a.root, 'after-truncated.txt')));
    assert.ok(!existsSync(join(a.root, 'evil2.txt')));
  });
});
