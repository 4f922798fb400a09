import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { SafetyError } from '../../src/sync/context.js';
import { assertConverged, cleanup, cluster, cycle, journal, logLines, requestCount, settle, sha, tree, withManifest } from './harness.js';

after(cleanup);

const write = (root: string, rel: string, body: string | Buffer, mode?: number) => {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), body);
  if (mode !== undefined) chmodSync(join(root, rel), mode);
};
const read = (root: string, rel: string) => readFileSync(join(root, rel), 'utf8');
/** Seconds for utimes that land on the intended millisecond (ms / 1000 can fall just below it). */
const secs = (ms: number) => (ms + 0.0005) / 1000;
const isSafety = (err: unknown): boolean => err instanceof SafetyError;

describe('runCycle: propagation', () => {
  it('creates, modifies, deletes and renames on every node', async () => {
    const c = await cluster(['alpha', 'beta', 'gamma']);
    const [a, b, g] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    write(a.root, 'index.html', '<h1>one</h1>');
    write(a.root, 'wp-content/uploads/2026/photo.jpg', Buffer.alloc(70_000, 7));
    write(a.root, 'old.txt', 'to be removed');
    await settle(c);
    assert.equal(read(b.root, 'index.html'), '<h1>one</h1>');
    assert.equal(readFileSync(join(g.root, 'wp-content/uploads/2026/photo.jpg')).length, 70_000);
    assertConverged(c);

    write(b.root, 'index.html', '<h1>two</h1>');
    unlinkSync(join(b.root, 'old.txt'));
    renameSync(join(b.root, 'wp-content/uploads/2026/photo.jpg'), join(b.root, 'wp-content/uploads/2026/renamed.jpg'));
    await settle(c);
    for (const n of c.nodes) {
      assert.equal(read(n.root, 'index.html'), '<h1>two</h1>', n.name);
      assert.ok(!existsSync(join(n.root, 'old.txt')), n.name);
      assert.ok(!existsSync(join(n.root, 'wp-content/uploads/2026/photo.jpg')), n.name);
      assert.equal(readFileSync(join(n.root, 'wp-content/uploads/2026/renamed.jpg')).length, 70_000);
    }
    assertConverged(c);
    assert.deepEqual(readdirSync(join(g.root, '.fedsync', 'tmp')), [], 'no temp file left');
  });

  it('nested and empty directories', async () => {
    // Its last file goes too: an emptied tree, which the rail would refuse otherwise.
    const c = await cluster(['alpha', 'beta'], { extra: 'max_delete = "100%"' });
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    mkdirSync(join(a.root, 'empty'));
    mkdirSync(join(a.root, 'deep/er/still/empty'), { recursive: true });
    write(a.root, 'deep/er/file.txt', 'x');
    chmodSync(join(a.root, 'deep/er'), 0o750);
    await settle(c);
    const t = assertConverged(c);
    assert.deepEqual(t['empty'], { kind: 'dir', mode: 0o755 });
    assert.deepEqual(t['deep/er'], { kind: 'dir', mode: 0o750 });
    assert.equal(t['deep/er/still/empty']?.kind, 'dir');

    rmSync(join(b.root, 'deep'), { recursive: true });
    rmSync(join(b.root, 'empty'), { recursive: true });
    await settle(c);
    assert.deepEqual(tree(a.root), {});
    assertConverged(c);
  });

  it('file -> directory and directory -> file', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    write(a.root, 'thing', 'a file');
    write(a.root, 'other/inner/x.txt', 'in a dir');
    await settle(c);

    unlinkSync(join(a.root, 'thing'));
    write(a.root, 'thing/child.txt', 'now a dir');
    rmSync(join(a.root, 'other'), { recursive: true });
    write(a.root, 'other', 'now a file');
    await settle(c);
    assert.equal(read(b.root, 'thing/child.txt'), 'now a dir');
    assert.equal(read(b.root, 'other'), 'now a file');
    assertConverged(c);

    // And back, from the other node.
    rmSync(join(b.root, 'thing'), { recursive: true });
    write(b.root, 'thing', 'a file again');
    await settle(c);
    assert.equal(read(a.root, 'thing'), 'a file again');
    assertConverged(c);
  });

  it('symlinks inside the root travel; one that leaves the root is not published', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    write(a.root, 'wp-content/uploads/f.txt', 'x');
    symlinkSync('wp-content/uploads', join(a.root, 'uploads'));
    symlinkSync('../f.txt', join(a.root, 'wp-content/uploads/up'));
    symlinkSync('/etc/passwd', join(a.root, 'passwd'));
    symlinkSync('../../outside', join(a.root, 'wp-content/escape'));
    await settle(c);
    const t = tree(b.root);
    assert.deepEqual(t['uploads'], { kind: 'symlink', target: 'wp-content/uploads' });
    assert.deepEqual(t['wp-content/uploads/up'], { kind: 'symlink', target: '../f.txt' });
    assert.equal(t['passwd'], undefined);
    assert.equal(t['wp-content/escape'], undefined);
    assert.ok(!journal(c, a.id).some((s) => s.records.some((r) => r.path === 'passwd' || r.path === 'wp-content/escape')));
    // Warned once each, however many cycles ran (DESIGN rule 8).
    const warned = logLines(a).filter((l) => l.level === 'warn' && l.msg === 'not publishing a path other nodes would refuse');
    assert.deepEqual(warned.map((l) => l.path).sort(), ['passwd', 'wp-content/escape']);

    // A retargeted link follows; a removed one goes.
    unlinkSync(join(a.root, 'uploads'));
    symlinkSync('wp-content', join(a.root, 'uploads'));
    unlinkSync(join(a.root, 'wp-content/uploads/up'));
    await settle(c);
    assert.deepEqual(tree(b.root)['uploads'], { kind: 'symlink', target: 'wp-content' });
    assert.ok(!existsSync(join(b.root, 'wp-content/uploads/up')));
  });

  it('a local symlink loop where a remote record needs a directory does not wedge the node', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    write(a.root, 'd/a.txt', 'in d');
    symlinkSync('d', join(b.root, 'd'));
    await settle(c, 3);
    assertConverged(c);
  });

  it('a batch that turns a directory into a symlink and fills the directory applies cleanly', async () => {
    const c = await cluster(['alpha', 'beta', 'gamma']);
    const [a, b, g] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    await cycle(b); // synced once: its symlink below is an edit, not a file found on joining
    write(a.root, 'a.txt', 'a');
    write(a.root, 'd/inner.txt', 'in d');
    symlinkSync('../a.txt', join(a.root, 'd/a.txt'));
    await cycle(a);
    await new Promise((r) => setTimeout(r, 5));
    symlinkSync('a.txt', join(b.root, 'd'));
    await cycle(b);
    // gamma gets alpha's directory and its contents, and beta's later symlink, at once.
    await cycle(g);
    assert.deepEqual(tree(g.root)['d'], { kind: 'symlink', target: 'a.txt' });
    assert.deepEqual(Object.keys(tree(g.root)).filter((p) => p.includes('sync-conflict')), [], 'no spurious conflict copy');
    await settle(c, 3);
    assertConverged(c);
  });

  it('mode and mtime are kept to the millisecond', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    write(a.root, 'script.sh', '#!/bin/sh\n', 0o755);
    write(a.root, 'secret.txt', 's', 0o600);
    write(a.root, 'odd.txt', 'o', 0o4755); // set-id bits never travel
    for (const [name, ms] of [['script.sh', 1_700_000_000_123], ['secret.txt', 1_600_000_000_999], ['odd.txt', 1_234_567_890_001]] as const) {
      utimesSync(join(a.root, name), secs(ms), secs(ms));
    }
    write(a.root, 'ancient.txt', 'from an old archive');
    execFileSync('touch', ['-d', '1960-01-01 00:00:00', join(a.root, 'ancient.txt')]);
    await settle(c);
    const t = tree(b.root);
    assert.equal((t['ancient.txt'] as { mtime: number } | undefined)?.mtime, 0, 'a time before 1970 travels as 0');
    assert.deepEqual(t['script.sh'], { kind: 'file', sha: sha('#!/bin/sh\n'), mode: 0o755, mtime: 1_700_000_000_123 });
    assert.equal((t['secret.txt'] as { mode: number; mtime: number }).mode, 0o600);
    assert.equal((t['secret.txt'] as { mtime: number }).mtime, 1_600_000_000_999);
    assert.equal((t['odd.txt'] as { mode: number }).mode, 0o755);
    assert.equal((t['odd.txt'] as { mtime: number }).mtime, 1_234_567_890_001);

    // A chmod or a touch alone travels too, without new content.
    chmodSync(join(a.root, 'odd.txt'), 0o755);
    utimesSync(join(a.root, 'ancient.txt'), 0, 0);
    chmodSync(join(b.root, 'script.sh'), 0o700);
    utimesSync(join(b.root, 'secret.txt'), secs(1_500_000_000_500), secs(1_500_000_000_500));
    await settle(c);
    assert.equal(lstatSync(join(a.root, 'script.sh')).mode & 0o777, 0o700);
    assert.equal(Math.floor(Number(lstatSync(join(a.root, 'secret.txt'), { bigint: true }).mtimeNs / 1_000_000n)), 1_500_000_000_500);
    assertConverged(c);
  });
});

describe('runCycle: conflicts', () => {
  it('concurrent edits: one conflict copy on every node, both contents kept', async () => {
    const c = await cluster(['alpha', 'beta', 'gamma']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    write(a.root, 'docs/page.html', 'original');
    await settle(c);
    write(a.root, 'docs/page.html', 'edited on alpha');
    write(b.root, 'docs/page.html', 'edited on beta');
    await cycle(a);
    await cycle(b);
    await settle(c, 3);
    const t = assertConverged(c);
    const copies = Object.keys(t).filter((p) => p.includes('sync-conflict'));
    assert.equal(copies.length, 1, `exactly one conflict copy: ${Object.keys(t).join(', ')}`);
    assert.match(copies[0]!, /^docs\/page\.sync-conflict-\d{8}-\d{6}-(alpha|beta)\.html$/);
    const contents = [read(a.root, 'docs/page.html'), read(a.root, copies[0]!)].sort();
    assert.deepEqual(contents, ['edited on alpha', 'edited on beta']);
    // The copy is named after the node whose version lost.
    const loser = copies[0]!.includes('-alpha.') ? 'edited on alpha' : 'edited on beta';
    assert.equal(read(a.root, copies[0]!), loser);
    // A quiet cycle afterwards changes nothing anywhere.
    for (const n of c.nodes) assert.equal((await cycle(n)).record!.stats.published, 0, n.name);
  });

  it('three concurrent edits: two conflict copies, all three contents kept', async () => {
    const c = await cluster(['alpha', 'beta', 'gamma']);
    write(c.nodes[0]!.root, 'f.txt', 'base');
    await settle(c);
    for (const n of c.nodes) write(n.root, 'f.txt', `edited on ${n.name}`);
    for (const n of c.nodes) await cycle(n);
    await settle(c, 3);
    const t = assertConverged(c);
    const copies = Object.keys(t).filter((p) => p.includes('sync-conflict')).sort();
    assert.equal(copies.length, 2, Object.keys(t).join(', '));
    const root = c.nodes[0]!.root;
    assert.deepEqual([read(root, 'f.txt'), ...copies.map((p) => read(root, p))].sort(), ['edited on alpha', 'edited on beta', 'edited on gamma']);
  });

  it('the same new content created on two nodes is no conflict', async () => {
    const c = await cluster(['alpha', 'beta']);
    for (const n of c.nodes) write(n.root, 'same.txt', 'identical');
    for (const n of c.nodes) await cycle(n);
    await settle(c);
    const t = assertConverged(c);
    assert.deepEqual(Object.keys(t), ['same.txt']);
  });

  it('a file edited on one node while another turns it into a directory: nothing is lost', async () => {
    const c = await cluster(['alpha', 'beta', 'gamma']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    write(a.root, 'x', 'file');
    await settle(c);
    unlinkSync(join(a.root, 'x'));
    write(a.root, 'x/inside.txt', 'in the new dir');
    write(b.root, 'x', 'file edited on beta');
    await cycle(a);
    await cycle(b);
    await settle(c, 3);
    const t = assertConverged(c);
    const root = c.nodes[2]!.root;
    const contents = Object.entries(t)
      .filter(([, v]) => v.kind === 'file')
      .map(([p]) => read(root, p))
      .sort();
    assert.deepEqual(contents, ['file edited on beta', 'in the new dir']);
  });

  it('concurrent delete and modify: the modification survives everywhere', async () => {
    const c = await cluster(['alpha', 'beta', 'gamma']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    write(a.root, 'keep.txt', 'v1');
    write(a.root, 'keep2.txt', 'v1');
    await settle(c);
    // On keep.txt the deleter publishes first, on keep2.txt the editor does.
    unlinkSync(join(a.root, 'keep.txt'));
    write(b.root, 'keep.txt', 'v2 from beta');
    write(a.root, 'keep2.txt', 'v2 from alpha');
    unlinkSync(join(b.root, 'keep2.txt'));
    await cycle(a);
    await cycle(b);
    await settle(c, 3);
    const t = assertConverged(c);
    assert.equal(read(a.root, 'keep.txt'), 'v2 from beta');
    assert.equal(read(b.root, 'keep2.txt'), 'v2 from alpha');
    assert.deepEqual(Object.keys(t).filter((p) => p.includes('sync-conflict')), []);
  });

  it('a deletion made before seeing a concurrent edit does not resurrect the other version', async () => {
    // beta deletes its only file: an emptied tree, which the rail would refuse otherwise.
    const c = await cluster(['alpha', 'beta', 'gamma'], { extra: 'max_delete = "100%"' });
    const [a, b, g] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    // alpha and beta create the same file; beta (later) then deletes it before hearing of alpha's.
    write(a.root, 'x.txt', 'from alpha');
    await cycle(a);
    await new Promise((r) => setTimeout(r, 5));
    write(b.root, 'x.txt', 'from beta');
    await cycle({ ...b, set: { ...b.set, role: 'publish' } });
    unlinkSync(join(b.root, 'x.txt'));
    await cycle({ ...b, set: { ...b.set, role: 'publish' } });
    // gamma hears everything, in journal order; then everyone settles.
    await settle(c, 3);
    assertConverged(c);
    assert.equal(read(g.root, 'x.txt'), 'from alpha');
  });
});

describe('runCycle: cost and echo', () => {
  it('an idle cycle is one LIST; publishing one file at most 4 requests; nothing echoes back', async () => {
    const c = await cluster(['alpha', 'beta', 'gamma']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    for (let i = 0; i < 20; i++) write(a.root, `f${i}.txt`, `file ${i}`);
    await settle(c, 3);
    for (const n of c.nodes) {
      const r = await cycle(n);
      assert.equal(requestCount(r), 1, `${n.name}: ${JSON.stringify(r.record!.requests)}`);
      assert.equal(r.record!.requests.list, 1);
    }
    write(a.root, 'f3.txt', 'changed');
    const pub = await cycle(a);
    assert.equal(pub.record!.stats.published, 1);
    assert.ok(requestCount(pub) <= 4, JSON.stringify(pub.record!.requests));
    // beta applies it, and its next cycle publishes nothing (the write is not a local change).
    const got = await cycle(b);
    assert.equal(got.record!.stats.applied, 1);
    assert.equal(got.record!.stats.published, 0);
    const again = await cycle(b);
    assert.equal(again.record!.stats.published, 0);
    assert.equal(again.record!.stats.hashed, 0);
    assert.equal(journal(c, b.id).length, 0, 'beta never published anything');
  });

  it('publishing many files over several segments lists the stored blobs once, not once per segment', async () => {
    const c = await cluster(['alpha']);
    const [a] = c.nodes as [typeof c.nodes[0]];
    // Two segments (10,000 records each), each naming more than 1,000 new blobs.
    for (let d = 0; d < 115; d++) {
      mkdirSync(join(a.root, `d${d}`));
      for (let i = 0; i < 100; i++) writeFileSync(join(a.root, `d${d}`, `f${i}`), `${d}/${i}`);
    }
    const r = await cycle(a);
    assert.equal(r.record!.stats.published, 11_615);
    assert.equal(journal(c, a.id).length, 2, 'two segments');
    // heads/ to receive and snapshots/ to catch up (a first cycle), blobs/ once for the whole
    // outbox; every other request a PUT (the first head write once more: it learns whether the
    // store honours conditional writes).
    assert.equal(r.record!.requests.list, 3, JSON.stringify(r.record!.requests));
    assert.equal(r.record!.requests.put, 11_500 + 2 + 1 + 1);
  });

  it("a node's first cycle leaves housekeeping (the snapshot) to its second", async () => {
    const c = await cluster(['alpha']);
    const [a] = c.nodes as [typeof c.nodes[0]];
    for (let i = 0; i < 20; i++) write(a.root, `f${i}.txt`, `file ${i}`);
    const snapshots = () => (existsSync(join(c.storeDir, 'snapshots')) ? readdirSync(join(c.storeDir, 'snapshots')) : []);
    const first = await cycle(a);
    assert.equal(first.record!.stats.published, 20);
    assert.deepEqual(snapshots(), [], 'the first cycle wrote no snapshot');
    await cycle(a);
    assert.equal(snapshots().length, 1, 'the second cycle housekept and wrote the snapshot');
    // Only once: a later cycle within the housekeeping interval does nothing more.
    write(a.root, 'f0.txt', 'changed');
    await cycle(a);
    assert.equal(snapshots().length, 1);
  });

  it('a file still being written (changed within settle) waits for a later cycle', async () => {
    const c = await cluster(['alpha', 'beta'], { settle: '1s' });
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    write(a.root, 'old.txt', 'settled');
    // An old mtime does not make a file settled (an archive extracted just now keeps its
    // mtimes): the change time does.
    const old = Date.now() / 1000 - 60;
    utimesSync(join(a.root, 'old.txt'), old, old);
    await sleep(1100);
    write(a.root, 'fresh.txt', 'just written');
    utimesSync(join(a.root, 'fresh.txt'), old, old);
    write(a.root, 'future.txt', 'mtime ahead');
    const future = Date.now() / 1000 + 3600;
    utimesSync(join(a.root, 'future.txt'), future, future);
    const r = await cycle(a);
    // The change time decides, not mtime: both were written just now.
    assert.equal(r.record!.stats.published, 1);
    assert.deepEqual(r.settling.sort(), ['fresh.txt', 'future.txt']);
    await cycle(b);
    assert.deepEqual(Object.keys(tree(b.root)), ['old.txt']);
    // Once quiet for `settle` they go, the one with a future mtime too.
    await sleep(1100);
    assert.equal((await cycle(a)).record!.stats.published, 2);
    await cycle(b);
    assert.deepEqual(Object.keys(tree(b.root)).sort(), ['fresh.txt', 'future.txt', 'old.txt']);
  });
});

describe('runCycle: safety rails', () => {
  it('max_delete: a local mass deletion is refused unless forced', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    for (let i = 0; i < 12; i++) write(a.root, `d/f${i}.txt`, `${i}`);
    await settle(c);
    for (let i = 0; i < 8; i++) unlinkSync(join(a.root, `d/f${i}.txt`)); // 8 of 13 entries
    const r = await cycle(a, { expectOk: false });
    assert.equal(r.ok, false);
    assert.ok(isSafety(r.error), String(r.error));
    assert.match(r.error!.message, /--force/);
    assert.equal(journal(c, a.id).flatMap((s) => s.records).filter((x) => x.kind === 'deleted').length, 0, 'nothing published');
    await cycle(b);
    assert.equal(readdirSync(join(b.root, 'd')).length, 12);
    // Forced, it goes through; beta applies a deletion its author forced without being forced.
    const forced = await cycle(a, { force: true });
    assert.equal(forced.record!.stats.published, 8);
    await cycle(b);
    assert.deepEqual(readdirSync(join(b.root, 'd')).sort(), ['f10.txt', 'f11.txt', 'f8.txt', 'f9.txt']);
    assertConverged(c);
  });

  it('max_delete: a small tree may lose all but its last file, a larger one half; emptying any tree is refused', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    for (let i = 0; i < 9; i++) write(a.root, `f${i}.txt`, `${i}`);
    await settle(c);
    for (let i = 0; i < 8; i++) unlinkSync(join(a.root, `f${i}.txt`));
    await settle(c);
    assertConverged(c);
    unlinkSync(join(a.root, 'f8.txt'));
    const r = await cycle(a, { expectOk: false });
    assert.ok(isSafety(r.error), String(r.error));
    assert.match(r.error!.message, /every file \(1 of 1\)/);
    await cycle(b);
    assert.equal(read(b.root, 'f8.txt'), '8');
    await cycle(a, { force: true });
    await settle(c);
    assert.deepEqual(assertConverged(c), {});
    for (let i = 0; i < 20; i++) write(a.root, `g${i}.txt`, `${i}`);
    await settle(c);
    for (let i = 0; i < 10; i++) unlinkSync(join(a.root, `g${i}.txt`));
    await settle(c);
    assert.equal(Object.keys(assertConverged(c)).length, 10);
  });

  it('max_delete counts files, not directories, and a file moved in the same cycle is not deleted', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
    // 12 files in 12 folders: deleting 7 files (and their folders) is 7 of 12 files.
    for (let i = 0; i < 12; i++) write(a.root, `m${i}/f.txt`, `month ${i}`);
    await settle(c);
    for (let i = 0; i < 7; i++) unlinkSync(join(a.root, `m${i}/f.txt`));
    const r = await cycle(a, { expectOk: false });
    assert.ok(isSafety(r.error), String(r.error));
    assert.match(r.error!.message, /7 of 12 files/);
    for (let i = 0; i < 7; i++) write(a.root, `m${i}/f.txt`, `month ${i}`);
    await settle(c);
    // Moving 8 of the 12 files (and a symlink) elsewhere deletes nothing.
    symlinkSync('m0/f.txt', join(a.root, 'link'));
    await settle(c);
    mkdirSync(join(a.root, 'archive'));
    for (let i = 0; i < 8; i++) renameSync(join(a.root, `m${i}`), join(a.root, `archive/m${i}`));
    renameSync(join(a.root, 'link'), join(a.root, 'archive/link'));
    await settle(c);
    assert.equal(read(b.root, 'archive/m7/f.txt'), 'month 7');
    assert.equal(existsSync(join(b.root, 'm7')), false);
    assertConverged(c);
  });

  it('a root without .fedsync/ is refused', async () => {
    const c = await cluster(['alpha']);
    const [a] = c.nodes as [typeof c.nodes[0]];
    write(a.root, 'f.txt', 'x');
    await cycle(a);
    rmSync(join(a.root, '.fedsync'), { recursive: true });
    rmSync(join(a.root, 'f.txt'));
    // Refused (thrown, or returned as the cycle's error), and nothing is done.
    const refusal = async () => {
      try {
        const r = await cycle(a, { expectOk: false });
        assert.equal(r.ok, false);
        return r.error;
      } catch (err) {
        return err as Error;
      }
    };
    const unmarked = await refusal();
    assert.ok(unmarked instanceof SafetyError, String(unmarked));
    assert.match(unmarked.message, /no \.fedsync\/ marker/);
    assert.match(unmarked.message, /fedsync init/);
    rmSync(a.root, { recursive: true });
    const missing = await refusal();
    assert.ok(missing instanceof SafetyError, String(missing));
    assert.match(missing.message, /does not exist/);
    assert.equal(journal(c, a.id).flatMap((s) => s.records).filter((r) => r.kind === 'deleted').length, 0);
    withManifest(a, (m) => assert.equal(m.getEntry('f.txt')?.kind, 'file'));
  });
});
