import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Entry } from '../model/entry.js';
import { Manifest, placedView, stateOf, type Peer } from './manifest.js';
import { MIGRATIONS } from './schema.js';

const dir = mkdtempSync(join(tmpdir(), 'fedsync-manifest-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `m${n++}`, 'manifest.db');

const A = 'a'.repeat(26);
const B = 'b'.repeat(26);
const DIGEST = 'ab'.repeat(32);
const entry = (path: string, over: Partial<Entry> = {}): Entry => ({ path, kind: 'file', digest: DIGEST, size: 3, mode: 0o644, mtime: 1_700_000_000_000, target: null, vv: { [A]: 1 }, hlc: '1700000000000-000001', author: A, ...over });
const peer = (node: string, over: Partial<Peer> = {}): Peer => ({ node, name: 'web', role: 'both', cursor: 0, headEtag: null, headSeq: 0, heartbeat: null, error: null, ...over });

describe('Manifest', () => {
  it('keeps entries not on disk here: excluded, wanted over a base, and counts them apart', () => {
    const m = new Manifest(fresh());
    m.putEntry(entry('placed'), 's1');
    m.putAbsent(entry('secret.php', { author: B, vv: { [B]: 1 } }), 'excluded', null);
    m.putEntry(entry('late.jpg'), 's2');
    const base = m.getEntry('late.jpg')!;
    m.putAbsent(entry('late.jpg', { digest: 'cd'.repeat(32), vv: { [A]: 1, [B]: 1 }, author: B }), 'wanted', base, { since: 1000, retryAt: 2000, tries: 1, reason: 'blob missing' });

    const late = m.getEntry('late.jpg')!;
    assert.equal(late.absent, 'wanted');
    assert.equal(late.digest, 'cd'.repeat(32), 'the entry is the federation state');
    assert.equal(placedView(late)?.digest, DIGEST, 'the base is what is on disk');
    assert.equal(placedView(late)?.stat, 's2');
    assert.deepEqual(late.wanted, { since: 1000, retryAt: 2000, tries: 1, reason: 'blob missing' });
    assert.deepEqual(Object.keys(stateOf(late)).sort(), ['author', 'digest', 'hlc', 'kind', 'mode', 'mtime', 'path', 'size', 'target', 'vv']);
    assert.equal(m.getEntry('secret.php')!.absent, 'excluded');
    assert.equal(placedView(m.getEntry('secret.php')), undefined);

    // The scan sees what is placed: the base's stat, nothing for an excluded path.
    const idx = m.statIndex();
    assert.deepEqual(idx.get('late.jpg'), { path: 'late.jpg', kind: 'file', mode: 0o644, stat: 's2', absent: 'wanted' });
    assert.deepEqual(idx.get('secret.php'), { path: 'secret.php', kind: 'deleted', mode: 0, stat: null, absent: 'excluded' });
    m.setStat('late.jpg', 's3');
    assert.equal(placedView(m.getEntry('late.jpg'))?.stat, 's3', 'a restat moves the base');

    assert.equal(m.liveCount(), 1, 'only placed entries count as live here');
    assert.deepEqual(m.entriesWithDigest(DIGEST).map((e) => e.path), ['placed']);
    assert.deepEqual(m.wantedSummary(), { count: 1, oldestSince: 1000 });
    assert.deepEqual(m.absentEntries('excluded').map((e) => e.path), ['secret.php']);

    // Placing it clears the mark.
    m.putEntry(stateOf(late), 's4');
    assert.equal(m.getEntry('late.jpg')!.absent, undefined);
    assert.deepEqual(m.wantedSummary(), { count: 0, oldestSince: null });
    m.close();
  });

  it('creates the schema at the latest version, private to its owner', () => {
    const file = fresh();
    const m = new Manifest(file);
    assert.equal(m.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    m.close();
  });

  it('migrates an older database and keeps its data', () => {
    const file = fresh();
    new Manifest(file).close(); // makes the directory
    rmSync(file);
    const old = new Database(file);
    old.exec(MIGRATIONS[0]!);
    old.pragma('user_version = 1');
    old.prepare("INSERT INTO files (path, kind, digest, size, mode, mtime, target, vv, hlc, author, stat) VALUES ('a', 'file', ?, 3, 420, 5, NULL, ?, '1700000000000-000001', ?, 'st')").run(DIGEST, JSON.stringify({ [A]: 1 }), A);
    old.prepare("INSERT INTO meta (key, value) VALUES ('node_id', ?)").run(A);
    old.close();
    const m = new Manifest(file);
    assert.equal(m.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    assert.deepEqual(m.getEntry('a'), { ...entry('a', { mtime: 5 }), stat: 'st' });
    assert.equal(m.getMeta('node_id'), A);
    m.close();
  });

  it('refuses a database from a newer fedsync', () => {
    const file = fresh();
    const m = new Manifest(file);
    m.db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    m.close();
    assert.throws(() => new Manifest(file), /newer fedsync/);
  });

  it('stores entries, with and without concurrent versions', () => {
    const m = new Manifest(fresh());
    const link = entry('l', { kind: 'symlink', digest: null, size: 0, target: 'a', mode: 0o777 });
    m.putEntry(entry('a'), 'st1');
    m.putEntry(link, null);
    m.putEntry(entry('gone', { kind: 'deleted', digest: null, size: 0, mode: 0, mtime: 0 }), null);
    assert.deepEqual(m.getEntry('a'), { ...entry('a'), stat: 'st1' });
    assert.deepEqual(m.getEntry('l'), { ...link, stat: null });
    assert.equal(m.getEntry('nope'), undefined);
    assert.equal(m.liveCount(), 2);
    assert.deepEqual([...m.allEntries().keys()].sort(), ['a', 'gone', 'l']);
    assert.deepEqual(m.entriesWithDigest(DIGEST).map((e) => e.path), ['a']);
    m.setStat('a', 'st2');
    assert.equal(m.getEntry('a')!.stat, 'st2');

    const versions = [entry('a', { vv: { [A]: 1 } }), entry('a', { vv: { [B]: 1 }, author: B, digest: 'cd'.repeat(32) })];
    m.putEntry({ ...entry('a', { vv: { [A]: 1, [B]: 1 }, author: B }), versions }, 'st3');
    assert.deepEqual(m.getEntry('a')!.versions, versions);
    m.putEntry(entry('a', { vv: { [A]: 2, [B]: 1 } }), 'st4');
    assert.equal(m.getEntry('a')!.versions, undefined, 'a plain entry clears them');
    m.close();
  });

  it('indexes stats for a scan, whole or by subtree (siblings that share a prefix excluded)', () => {
    const m = new Manifest(fresh());
    for (const p of ['a', 'a/x', 'a/x/y', 'a b', 'a-c', 'a0', 'ab/z', 'b']) m.putEntry(entry(p), `st-${p}`);
    assert.deepEqual([...m.statIndex().keys()].sort(), ['a', 'a b', 'a-c', 'a/x', 'a/x/y', 'a0', 'ab/z', 'b']);
    assert.deepEqual([...m.statIndex(['a']).keys()].sort(), ['a', 'a/x', 'a/x/y']);
    assert.deepEqual([...m.statIndex(['a/x', 'b']).keys()].sort(), ['a/x', 'a/x/y', 'b']);
    assert.equal(m.statIndex(['', 'a']).size, 8);
    assert.deepEqual(m.statIndex(['a/x/y']).get('a/x/y'), { path: 'a/x/y', kind: 'file', mode: 0o644, stat: 'st-a/x/y' });
    m.close();
  });

  it('keeps outbox records in order, by segment', () => {
    const m = new Manifest(fresh());
    m.addToOutbox(3, ['r1', 'r2']);
    m.addToOutbox(3, ['r3']);
    m.addToOutbox(4, ['r4']);
    assert.deepEqual(m.outboxSegments(), [{ seq: 3, count: 3 }, { seq: 4, count: 1 }]);
    assert.deepEqual(m.outboxRecords(3), [{ idx: 0, record: 'r1' }, { idx: 1, record: 'r2' }, { idx: 2, record: 'r3' }]);
    m.dropOutboxRecord(3, 1);
    assert.deepEqual(m.outboxRecords(3).map((r) => r.record), ['r1', 'r3']);
    m.clearOutboxThrough(3);
    assert.deepEqual(m.outboxSegments(), [{ seq: 4, count: 1 }]);
    m.addToOutbox(4, ['r5']);
    assert.deepEqual(m.outboxRecords(4), [{ idx: 0, record: 'r4' }, { idx: 1, record: 'r5' }]);
    m.close();
  });

  it('keeps peers, updated in place, in node order', () => {
    const m = new Manifest(fresh());
    m.putPeer(peer(B));
    m.putPeer(peer(A, { cursor: 2 }));
    m.putPeer(peer(B, { cursor: 5, headEtag: '"e"', headSeq: 6, heartbeat: '2026-01-01T00:00:00Z', error: 'bad segment' }));
    assert.deepEqual(m.peers(), [peer(A, { cursor: 2 }), peer(B, { cursor: 5, headEtag: '"e"', headSeq: 6, heartbeat: '2026-01-01T00:00:00Z', error: 'bad segment' })]);
    m.close();
  });

  it('remembers when blobs were stored, never moving back', () => {
    const m = new Manifest(fresh());
    assert.equal(m.blobStoredAt(DIGEST), undefined);
    m.addBlob(DIGEST, 1000);
    m.addBlob(DIGEST, 500);
    assert.equal(m.blobStoredAt(DIGEST), 1000);
    m.addBlob(DIGEST, 2000);
    assert.equal(m.blobStoredAt(DIGEST), 2000);
    m.close();
  });

  it('rolls a failed transaction back whole', () => {
    const m = new Manifest(fresh());
    assert.throws(() =>
      m.transaction(() => {
        m.putEntry(entry('a'), null);
        m.addToOutbox(1, ['r']);
        m.setMeta('k', 1);
        throw new Error('crash');
      }),
    );
    assert.equal(m.getEntry('a'), undefined);
    assert.deepEqual(m.outboxSegments(), []);
    assert.equal(m.getMeta('k'), undefined);
    assert.equal(m.transaction(() => 7), 7);
    m.close();
  });

  it('keeps everything across a reopen', () => {
    const file = fresh();
    const m = new Manifest(file);
    m.transaction(() => {
      m.putEntry(entry('a'), 'st');
      m.addToOutbox(1, ['r']);
      m.putPeer(peer(B, { cursor: 3 }));
      m.addBlob(DIGEST, 42);
      m.setMeta('published_seq', 9);
    });
    m.close();
    const again = new Manifest(file);
    assert.deepEqual(again.getEntry('a'), { ...entry('a'), stat: 'st' });
    assert.deepEqual(again.outboxRecords(1), [{ idx: 0, record: 'r' }]);
    assert.equal(again.peers()[0]!.cursor, 3);
    assert.equal(again.blobStoredAt(DIGEST), 42);
    assert.equal(again.getMeta('published_seq'), '9');
    again.close();
  });
});
