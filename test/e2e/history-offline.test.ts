// History acceptance (issue "History: replay after downtime, ..."): nodes that were stopped for
// longer than `history` come back after housekeeping pruned every journal segment they would
// have needed, so they must catch up from a snapshot (docs/protocol.md, "Catching up").
//
// Four nodes, every duration in seconds: history 2s, node_timeout 4s, heartbeat 1s,
// snapshot_every 1s, gc_grace 3s. C and D stop; meanwhile A and B create, modify and delete
// files (a whole directory among them) and the leader housekeeps, until
//   - C's and D's own journals are gone from the store,
//   - A's and B's journals are pruned past C's and D's cursors (so replay is impossible),
//   - the newest snapshot no longer even has tombstones for the deleted paths (the leader
//     forgets tombstones after history + node_timeout), the hardest case for "never
//     resurrect": the returning node must notice the paths vanished from the snapshot.
// C changed nothing while away: after ONE `run` its tree equals A's and B's.
// D edited two files while away: one nobody else touched (must reach every node) and one A
// also edited (exactly one conflict copy, on every node). Then every node cycles twice more:
// all trees equal, no deleted file anywhere, and the store walk is sound. file:// and RGW
// (s3rver skipped for time; it behaved the same in 39 s when tried).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertTreesEqual, sleep } from './harness.js';
import {
  assertStoreSound,
  backends,
  conflictCopies,
  describeWalk,
  HFed,
  since,
  walkStore,
  type BackendEnv,
  type HNode,
} from './history-harness.js';

const SYNC = { history: '2s', node_timeout: '4s', heartbeat: '1s', snapshot_every: '1s', gc_grace: '3s' };
const DELETED = ['del/x1.txt', 'del/x2.txt', 'gone', 'gone/a.txt', 'gone/sub', 'gone/sub/b.txt', 'gone/sub/c.txt'];

for (const backend of backends('offline longer than history', { s3rver: false })) {
  describe(`history: offline longer than history, on ${backend.name}`, () => {
    let env: BackendEnv;
    before(async () => {
      env = await backend.start();
    });
    after(async () => {
      await env?.stop();
    });

    it('returning nodes catch up from a snapshot: no resurrection, their edits published, one conflict copy', { timeout: 240_000 }, async (t) => {
      const t0 = performance.now();
      const fed = await HFed.create(env, { nodes: ['A', 'B', 'C', 'D'], sync: SYNC });
      const [a, b, c, d] = fed.nodes as [HNode, HNode, HNode, HNode];
      const cycle = async (nodes: HNode[]) => {
        for (const n of nodes) await n.run();
      };
      try {
        // The federation's starting state, written on A.
        for (let i = 0; i < 12; i++) a.write(`keep/k${i}.txt`, `keep ${i}\n`);
        for (let i = 0; i < 3; i++) a.write(`mod/m${i}.txt`, `mod ${i} v1\n`);
        a.write('del/x1.txt', 'x1\n');
        a.write('del/x2.txt', 'x2\n');
        a.write('gone/a.txt', 'gone a\n');
        a.write('gone/sub/b.txt', 'gone b\n');
        a.write('gone/sub/c.txt', 'gone c\n');
        a.write('d-edit.txt', 'd-edit v1\n');
        a.write('both.txt', 'both v1\n');
        await cycle([a, b, c, d]);
        assertTreesEqual(fed.nodes.map((n) => ({ name: n.name, tree: n.tree() })), 'before C and D stop');
        const cHead = await headOf(fed, c);
        const dHead = await headOf(fed, d);
        t.diagnostic(`set up in ${since(t0)} ms; C acks ${JSON.stringify(cHead.acks)}, D acks ${JSON.stringify(dHead.acks)}`);

        // C and D stop. D's user edits two files on D's disk meanwhile.
        d.write('d-edit.txt', 'd-edit v2, written on D while it was offline\n');
        d.write('both.txt', 'both: D\'s edit while offline\n');
        // A and B go on.
        a.write('both.txt', 'both: A\'s edit while D was offline\n');
        for (let i = 0; i < 3; i++) a.write(`mod/m${i}.txt`, `mod ${i} v2 (A, while C and D were away)\n`);
        a.remove('gone');
        a.write('new/n1.txt', 'new 1\n');
        await cycle([a, b]);
        b.remove('del/x1.txt');
        b.remove('del/x2.txt');
        b.write('new/n2.txt', 'new 2 from B\n');
        await cycle([b, a]);

        // Housekeeping on the live nodes until C's and D's journals are gone, A's and B's are
        // pruned past their cursors, and the newest snapshot has forgotten the deleted paths.
        const started = performance.now();
        let round = 0;
        let state = '';
        for (;;) {
          round++;
          a.write(`churn/a${round % 4}.txt`, `churn ${round}\n`);
          await cycle([a, b]);
          for (const n of [a, b]) await n.housekeep();
          const w = await walkStore(fed);
          const journalOf = (n: HNode) => w.segments.filter((s) => s.node === n.id).map((s) => s.seq);
          const prunedPast = (away: { acks: Record<string, number> }, n: HNode) => (journalOf(n)[0] ?? Infinity) > (away.acks[n.id] ?? 0) + 1;
          const newest = w.snapshots.at(-1);
          const forgotten = newest !== undefined && DELETED.every((p) => !newest.entries.some((e) => e.path === p));
          const done =
            journalOf(c).length === 0 &&
            journalOf(d).length === 0 &&
            [cHead, dHead].every((h) => prunedPast(h, a) && prunedPast(h, b)) &&
            forgotten;
          state = `round ${round} at ${since(started)} ms: journals C ${JSON.stringify(journalOf(c))} D ${JSON.stringify(journalOf(d))} A ${JSON.stringify(journalOf(a))} B ${JSON.stringify(journalOf(b))}; newest snapshot ${newest?.name ?? '-'} ${forgotten ? 'without' : 'with'} the deleted paths; ${describeWalk(w)}`;
          if (done) break;
          assert.ok(performance.now() - started < 60_000, `housekeeping did not prune within 60 s: ${state}`);
          await sleep(300);
        }
        t.diagnostic(`pruned: ${state}`);
        const expected = a.tree();
        assertTreesEqual([{ name: 'A', tree: expected }, { name: 'B', tree: b.tree() }], 'A and B');

        // C returns: one run, and its tree is A's.
        const rc = await c.run();
        t.diagnostic(`C's return: ${rc.ms} ms, ${JSON.stringify(c.status().lastCycle.stats)}`);
        assert.ok(c.logLines().some((l) => l.msg === 'catching up from a snapshot'), 'C caught up from a snapshot');
        assertTreesEqual([{ name: 'A', tree: expected }, { name: 'C', tree: c.tree() }], 'C after one run');

        // D returns with its two edits.
        const rd = await d.run();
        t.diagnostic(`D's return: ${rd.ms} ms, ${JSON.stringify(d.status().lastCycle.stats)}`);
        assert.ok(d.logLines().some((l) => l.msg === 'catching up from a snapshot'), 'D caught up from a snapshot');
        const dAfterOne = d.tree();
        const resurrectedOnD = DELETED.filter((p) => dAfterOne.has(p));

        // Further cycles everywhere, and housekeeping once more.
        for (let i = 0; i < 2; i++) await cycle([a, b, c, d]);
        await fed.leaderOf().housekeep();
        const trees = fed.nodes.map((n) => ({ name: n.name, tree: n.tree() }));
        t.diagnostic(`total ${since(t0)} ms`);

        await t.test('C, which changed nothing, equals A after one run (checked above)', () => {});
        await t.test("D's edit of a file nobody else touched reaches every node", () => {
          for (const n of fed.nodes) assert.equal(n.read('d-edit.txt'), 'd-edit v2, written on D while it was offline\n', `${n.name}: d-edit.txt`);
        });
        await t.test('the file D and A both edited yields exactly one conflict copy, on every node', () => {
          const names = new Set<string>();
          for (const n of fed.nodes) {
            const copies = conflictCopies(n.tree());
            assert.equal(copies.length, 1, `${n.name}: conflict copies ${JSON.stringify(copies)}`);
            assert.ok(copies[0]!.startsWith('both.sync-conflict-'), `${n.name}: ${copies[0]}`);
            names.add(copies[0]!);
            const versions = [n.read('both.txt'), n.read(copies[0]!)].sort();
            assert.deepEqual(versions, ["both: A's edit while D was offline\n", "both: D's edit while offline\n"].sort(), `${n.name}: both.txt and its copy`);
          }
          assert.equal(names.size, 1, `the copy has one name everywhere: ${[...names].join(', ')}`);
        });
        await t.test('no path deleted while C and D were away reappears anywhere', () => {
          const back = [
            ...(resurrectedOnD.length ? [`D right after its first run: ${resurrectedOnD.join(', ')}`] : []),
            ...trees.flatMap(({ name, tree }) => {
              const found = DELETED.filter((p) => tree.has(p));
              return found.length ? [`${name} after 2 more cycles on every node: ${found.join(', ')}`] : [];
            }),
          ];
          assert.deepEqual(back, [], `deleted paths reappeared:\n  ${back.join('\n  ')}`);
        });
        await t.test('all trees are equal', () => assertTreesEqual(trees, 'after the returns and 2 more cycles'));
        await t.test('the store is sound', async () => {
          const w = await walkStore(fed, { verifyBlobs: true });
          t.diagnostic(`final store: ${describeWalk(w)}`);
          assertStoreSound(w, 'after the returns');
        });
      } finally {
        await fed.close();
      }
    });
  });
}

async function headOf(fed: HFed, n: HNode): Promise<{ seq: number; acks: Record<string, number> }> {
  const body = await fed.get(`heads/${n.id}.json`);
  assert.ok(body, `no head for ${n.name}`);
  return JSON.parse(body.toString('utf8')) as { seq: number; acks: Record<string, number> };
}
