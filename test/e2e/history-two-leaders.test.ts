// History acceptance: one precise interleaving of two leaders (the randomized version is in
// history-leader.test.ts), made deterministic with a proxy hook. S3 backends only: the hook
// is what holds one leader at the right instant (s3rver is cheap here: a few dozen objects).
//
// X is the node with the smallest id (the only leader once both are live again); Y the other.
// X publishes, then Y publishes (so X has not read Y's last segment, y_n). Both get
// node_timeout = 1s and nothing runs for 1.3 s: each sees the other as dead and leads.
// X starts `fedsync housekeep`; right after X has listed the snapshots (at X's GET of the
// newest one, through X's own proxy) Y runs a whole `fedsync housekeep`: Y writes a snapshot
// covering y_n and, as nobody else looks live, prunes y_n. X then goes on with its stale
// listing and writes its own snapshot, newer by name but covering Y only up to y_{n-1}.
// The store now holds a pruned segment that the newest snapshot does not cover.
//
// Then node_timeout goes back to 1h (one leader: X), and every node runs and housekeeps for
// a few rounds, Y changing files each round. Harmless means: X's garbage collection did not
// delete a blob Y's snapshot names (X never saw that snapshot, and Y had pruned the segment
// that named it), X gets Y's changes (all trees equal), and a brand-new node joining
// afterwards gets everything too.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startProxy, type Proxy } from '../support/proxy.js';
import { assertTreesEqual, sleep } from './harness.js';
import { backends, describeWalk, HFed, walkStore, type BackendEnv } from './history-harness.js';

// snapshot_every 1h: runs do not housekeep (after a node's first), only `fedsync housekeep`
// does (it writes a snapshot whenever a cursor moved), so the test decides when.
const SYNC = { history: '1s', gc_grace: '2s', snapshot_every: '1h', heartbeat: '1s', node_timeout: '1h' };

for (const backend of backends('two leaders, deterministic interleaving', { file: false, s3rver: false })) {
  describe(`history: two leaders, a stale leader's snapshot newer than a pruned segment, on ${backend.name}`, () => {
    let env: BackendEnv;
    let proxy: Proxy;
    before(async () => {
      env = await backend.start();
      proxy = await startProxy({ upstream: env.target!.endpoint });
    });
    after(async () => {
      await proxy?.stop();
      await env?.stop();
    });

    it("a segment pruned by one leader and not covered by the other's newer snapshot is not lost", { timeout: 180_000 }, async (t) => {
      const fed = await HFed.create(env, { nodes: ['P', 'Q'], sync: SYNC });
      const x = fed.leaderOf();
      const y = fed.nodes.find((n) => n !== x)!;
      x.configure({}, proxy.endpoint);
      try {
        x.write('x/base.txt', 'x base\n');
        y.write('y/base.txt', 'y base\n');
        for (const n of [x, y, x, y]) await n.run();
        assert.ok(await x.housekeep(), `${x.name} leads`);
        // X publishes, then Y publishes: X has not read Y's newest segment.
        x.write('x/1.txt', 'x 1\n');
        await x.run();
        y.write('y/1.txt', 'y 1: published just before the two leaders\n');
        await y.run();
        const yHead = JSON.parse((await fed.get(`heads/${y.id}.json`))!.toString()) as { seq: number };
        // Both lead: each sees the other's heartbeat as older than node_timeout.
        for (const n of fed.nodes) n.configure({ node_timeout: '1s' });
        await sleep(1300);
        let yOut = '';
        proxy.reset();
        proxy.setFault(async (r) => {
          if (r.kind === 'get' && r.key?.startsWith(`${fed.s3SetPrefix}snapshots/`) && !yOut) {
            // X has listed the snapshots; Y housekeeps completely before X goes on.
            const res = await y.fedsync(['housekeep']);
            yOut = `${res.stdout.trim()} (exit ${res.code})`;
          }
          return undefined;
        });
        const xOut = (await x.ok(['housekeep'])).stdout.trim();
        proxy.setFault(undefined);
        t.diagnostic(`X (${x.name}): ${xOut}`);
        t.diagnostic(`Y (${y.name}), in the middle of X's housekeeping: ${yOut}`);
        // Both lead. Y writes a snapshot; X, now behind Y's snapshot, must not shadow it with a
        // staler one of its own (it may only write one that covers at least as much).
        assert.match(xOut, /as leader/);
        assert.match(yOut, /as leader; wrote snapshot/);
        const w = await walkStore(fed);
        t.diagnostic(`store: ${describeWalk(w)}; Y's head seq ${yHead.seq}, Y's kept segments ${JSON.stringify(w.segments.filter((s) => s.node === y.id).map((s) => s.seq))}, newest snapshot ${w.snapshots.at(-1)!.name} covers Y to ${w.snapshots.at(-1)!.header.cursors[y.id]}`);
        if (w.uncovered.length) t.diagnostic(`uncovered: ${w.uncovered.join('; ')}`);
        const missingAfterTwoLeaders = [...w.missingBlobs];

        // One leader again. Y keeps changing things; everyone runs and housekeeps.
        for (const n of fed.nodes) n.configure({ node_timeout: '1h' });
        for (let round = 2; round <= 3; round++) {
          y.write(`y/${round}.txt`, `y ${round}\n`);
          x.write(`x/${round}.txt`, `x ${round}\n`);
          for (const n of [x, y, x]) await n.run();
          await sleep(1100);
          await x.housekeep();
        }
        await x.run();
        const paused = x.logLines().filter((l) => typeof l.msg === 'string' && (l.msg as string).includes('no snapshot covers it')).length;
        t.diagnostic(`${x.name} logged "no snapshot covers it; its updates are paused" ${paused} time(s)`);
        await t.test('no blob a kept snapshot names was collected by the other leader', () => {
          assert.deepEqual(missingAfterTwoLeaders, [], 'right after the two housekeepings');
        });
        await t.test(`the leader ${x.name} gets every change of ${y.name}`, () => {
          assert.equal(x.read('y/1.txt'), 'y 1: published just before the two leaders\n', `${x.name}: y/1.txt`);
          assertTreesEqual([
            { name: y.name, tree: y.tree() },
            { name: x.name, tree: x.tree() },
          ]);
        });
        await t.test('a brand-new node joining afterwards gets everything', async () => {
          const n = fed.addNode('N');
          await n.init();
          await n.run();
          await n.run();
          assertTreesEqual([
            { name: y.name, tree: y.tree() },
            { name: 'N', tree: n.tree() },
          ]);
        });
      } finally {
        proxy.setFault(undefined);
        await fed.close();
      }
    });
  });
}

