// History acceptance: `fedsync history` and `fedsync restore` (docs/protocol.md, "History and
// restore"), three nodes, default history (30 days), after housekeeping wrote a snapshot (so
// versions come from journals and snapshots alike).
//
// docs/ is created (v1), edited (a.txt v2, a new sub/c.txt), then deleted as a whole on B.
//   - `history docs` lists every version under docs/, oldest first, deletions marked;
//   - `restore docs --at T1 --to DEST` (T1: after v1, before v2) writes v1 of the directory
//     under DEST with the versions' modes and mtimes, changes nothing in the root and
//     publishes nothing (the store's objects are exactly the same before and after);
//   - `restore docs --at T2` (after v2, before the deletion) in place on C brings the
//     directory back as of T2, on every node after one cycle each, with the versions' modes
//     and mtimes;
//   - `restore docs/a.txt --version <v1 id>` brings back that exact version, everywhere.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { assertOk, assertTreesEqual, describeResult, sleep, snapshotTree } from './harness.js';
import { assertStoreSound, backends, contents, HFed, since, walkStore, type BackendEnv, type HNode } from './history-harness.js';

// Past mtimes with milliseconds. Set through utimes in (float) seconds, they may land a
// nanosecond short, so the tests compare with what the disk holds in whole ms after writing.
const MTIME_A1_SET = 1_750_000_000_123;
const MTIME_B1_SET = 1_750_000_100_456;

interface Version {
  id: string;
  time: string;
  node: string;
  path: string;
  kind: string;
  digest?: string | null;
  mode: number;
  mtime: number;
}

for (const backend of backends('history and restore')) {
  describe(`history: history and restore, on ${backend.name}`, () => {
    let env: BackendEnv;
    before(async () => {
      env = await backend.start();
    });
    after(async () => {
      await env?.stop();
    });

    it('lists versions with deletions marked, restores a deleted directory as of a time (in place: everywhere; --to: nowhere else)', { timeout: 240_000 }, async (t) => {
      const t0 = performance.now();
      const fed = await HFed.create(env, { nodes: ['A', 'B', 'C'] });
      const [a, b, c] = fed.nodes as [HNode, HNode, HNode];
      const cycle = async (nodes: HNode[] = fed.nodes) => {
        for (const n of nodes) await n.run();
      };
      const dest = mkdtempSync(join(tmpdir(), 'fedsync-restore-to-'));
      try {
        // v1 of docs/, written on A.
        a.write('docs/a.txt', 'a v1\n', { mode: 0o640, mtimeMs: MTIME_A1_SET });
        a.write('docs/sub/b.txt', 'b v1\n', { mode: 0o600, mtimeMs: MTIME_B1_SET });
        const MTIME_A1 = a.tree().get('docs/a.txt')!.mtime;
        const MTIME_B1 = a.tree().get('docs/sub/b.txt')!.mtime;
        assert.ok(Math.abs(MTIME_A1 - MTIME_A1_SET) <= 1 && Math.abs(MTIME_B1 - MTIME_B1_SET) <= 1);
        a.write('docs/keep.txt', 'keep v1\n');
        a.write('other/x.txt', 'x\n');
        await cycle();
        await sleep(50);
        const T1 = new Date();
        await sleep(50);
        // v2: A edits a.txt, C adds sub/c.txt.
        a.write('docs/a.txt', 'a v2\n', { mode: 0o644 });
        c.write('docs/sub/c.txt', 'c v1 (from C)\n');
        await cycle([a, c, b, a]);
        const v2 = contents(a.root);
        const v2Tree = a.tree();
        await sleep(50);
        const T2 = new Date();
        await sleep(50);
        // B deletes the whole directory.
        b.remove('docs');
        await cycle([b, a, c]);
        for (const n of fed.nodes) assert.ok(!existsSync(n.abs('docs')), `docs/ is gone on ${n.name}`);
        // Housekeeping: a snapshot now also holds versions.
        assert.ok(await fed.leaderOf().housekeep(), 'the leader housekept');
        const w0 = await walkStore(fed);
        assert.ok(w0.snapshots.length > 0, 'a snapshot exists');

        await t.test('history lists every version under docs/, oldest first, deletions marked', async () => {
          const json = JSON.parse(assertOk(await c.fedsync(['history', '--set', 'www', '--json', 'docs'])).stdout) as Version[];
          const kinds = (p: string) => json.filter((v) => v.path === p).map((v) => (v.kind === 'file' ? v.digest!.slice(0, 8) : v.kind));
          const times = json.map((v) => v.id);
          assert.deepEqual(times, [...times].sort(), 'oldest first');
          assert.equal(kinds('docs/a.txt').length, 3, `docs/a.txt: v1, v2, deleted: ${JSON.stringify(kinds('docs/a.txt'))}`);
          assert.equal(kinds('docs/a.txt').at(-1), 'deleted');
          assert.deepEqual(json.filter((v) => v.path === 'docs/sub/c.txt').map((v) => v.kind), ['file', 'deleted']);
          assert.deepEqual(json.filter((v) => v.path === 'docs/sub/b.txt').map((v) => v.kind), ['file', 'deleted']);
          assert.ok(!json.some((v) => v.path === 'other/x.txt'), 'only paths under docs/');
          const text = assertOk(await c.fedsync(['history', '--set', 'www', 'docs'])).stdout;
          const lines = text.trim().split('\n');
          t.diagnostic(`history docs:\n${text.trimEnd()}`);
          assert.equal(lines.length, json.length, 'one line per version');
          const deleted = lines.filter((l) => /\sdeleted$/.test(l));
          assert.equal(deleted.length, json.filter((v) => v.kind === 'deleted').length, 'every deletion marked "deleted"');
          assert.ok(deleted.some((l) => l.includes('docs/a.txt')), `docs/a.txt's deletion is listed: ${text}`);
          assert.ok(deleted.every((l) => /\sB\s/.test(l)), `every deletion was B's: ${deleted.join('\n')}`);
          // The nodes' names are shown.
          assert.ok(lines.some((l) => / A\s+docs\/a\.txt/.test(l)) && lines.some((l) => / C\s+docs\/sub\/c\.txt/.test(l)), text);
        });

        await t.test('restore --to DEST writes the directory as of T1 elsewhere and publishes nothing', async () => {
          const before = (await fed.list()).map((o) => `${o.key} ${o.size} ${o.lastModified}`);
          const cBefore = c.tree();
          const r = assertOk(await c.fedsync(['restore', '--set', 'www', '--at', T1.toISOString(), '--to', dest, 'docs']));
          t.diagnostic(r.stdout.trim());
          const got = snapshotTree(dest);
          const files = [...got].filter(([, e]) => e.kind === 'file').map(([p]) => p).sort();
          assert.deepEqual(files, ['a.txt', 'keep.txt', 'sub/b.txt'], `DEST holds ${JSON.stringify([...got.keys()])}`);
          assert.equal(got.get('a.txt')!.mode & 0o777, 0o640);
          assert.equal(got.get('a.txt')!.mtime, MTIME_A1);
          assert.equal(got.get('sub/b.txt')!.mode & 0o777, 0o600);
          assert.equal(got.get('sub/b.txt')!.mtime, MTIME_B1);
          assert.equal(contents(dest).get('a.txt'), 'a v1\n');
          assert.equal(contents(dest).get('sub/b.txt'), 'b v1\n');
          assertTreesEqual([{ name: 'C before', tree: cBefore }, { name: 'C after', tree: c.tree() }], 'restore --to must not touch the root');
          const afterList = (await fed.list()).map((o) => `${o.key} ${o.size} ${o.lastModified}`);
          assert.deepEqual(afterList, before, 'restore --to must not write to the store');
          // And a cycle afterwards has nothing to publish either.
          await c.run();
          assert.equal(c.status().lastCycle.stats.published, 0);
          // Last, as the least important: DEST holds the directory's contents and nothing else.
          const extra = [...got.keys()].filter((p) => !['a.txt', 'keep.txt', 'sub', 'sub/b.txt'].includes(p));
          assert.deepEqual(extra, [], `nothing else under DEST (DEST itself stands for docs/)`);
        });

        await t.test('restore --at T2 in place brings docs/ back as of T2 on every node', async () => {
          const r = assertOk(await c.fedsync(['restore', '--set', 'www', '--at', T2.toISOString(), 'docs']));
          t.diagnostic(r.stdout.trim());
          await cycle([a, b, c]);
          const trees = fed.nodes.map((n) => ({ name: n.name, tree: n.tree() }));
          assertTreesEqual(trees, 'after the restore');
          for (const n of fed.nodes) {
            const now = contents(n.root);
            for (const [p, body] of v2) assert.equal(now.get(p), body, `${n.name}: ${p}`);
            assert.equal(n.read('docs/a.txt'), 'a v2\n');
            assert.equal(n.read('docs/sub/c.txt'), 'c v1 (from C)\n');
            const tr = n.tree();
            for (const p of ['docs/a.txt', 'docs/sub/b.txt', 'docs/sub/c.txt', 'docs/keep.txt']) {
              assert.equal(tr.get(p)!.mtime, v2Tree.get(p)!.mtime, `${n.name}: ${p} has the version's mtime`);
              assert.equal(tr.get(p)!.mode, v2Tree.get(p)!.mode, `${n.name}: ${p} has the version's mode`);
            }
          }
          const json = JSON.parse(assertOk(await a.fedsync(['history', '--set', 'www', '--json', 'docs/a.txt'])).stdout) as Version[];
          assert.equal(json.at(-1)!.kind, 'file', 'the restore is the newest version');
          assert.equal(json.at(-1)!.node, 'C', 'published by C');
        });

        await t.test('restore --version brings back that exact version everywhere', async () => {
          const json = JSON.parse(assertOk(await b.fedsync(['history', '--set', 'www', '--json', 'docs/a.txt'])).stdout) as Version[];
          const v1 = json.find((v) => v.kind === 'file' && v.mtime === MTIME_A1);
          assert.ok(v1, `v1 is listed: ${JSON.stringify(json)}`);
          const r = await b.fedsync(['restore', '--set', 'www', '--version', v1.id, 'docs/a.txt']);
          assert.equal(r.code, 0, describeResult(r));
          assert.match(r.stdout, /restored 1 file\(s\) of docs\/a\.txt in place/, `restore --version did not restore:\n${describeResult(r)}`);
          await cycle([b, a, c]);
          for (const n of fed.nodes) {
            assert.equal(n.read('docs/a.txt'), 'a v1\n', n.name);
            const st = statSync(n.abs('docs/a.txt'));
            assert.equal(st.mode & 0o777, 0o640, `${n.name}: mode of v1`);
            assert.equal(Math.floor(st.mtimeMs), MTIME_A1, `${n.name}: mtime of v1`);
          }
          assertTreesEqual(fed.nodes.map((n) => ({ name: n.name, tree: n.tree() })));
        });

        assertStoreSound(await walkStore(fed, { verifyBlobs: true }));
        t.diagnostic(`total ${since(t0)} ms`);
      } finally {
        rmSync(dest, { recursive: true, force: true });
        await fed.close();
      }
    });
  });
}
