// History acceptance: the housekeeping leader killed mid-housekeeping, and two leaders at once,
// lose nothing (docs/protocol.md, "Housekeeping": "Two leaders at once (clock skew) are
// harmless"; every step "idempotent and safe to interrupt").
//
// Three nodes; each writes only under its own directory (n<name>/), so the test knows exactly
// which files must exist with which content (a model) whatever order things happen in.
// history 1s, gc_grace 2s, heartbeat 1s: every housekeeping has segments to prune, blobs to
// collect and a snapshot to write (the leader runs last before it, so its cursors moved).
//
// 1. Kills: each trial churns on every node (new, modified, deleted files; some files get a
//    content they had before, so old blobs are reused), runs every node, waits for history to
//    pass, then SIGKILLs the leader's `fedsync housekeep` at a random point: on S3 when the
//    leader's own counting proxy sees its K-th request (K random up to the number of requests
//    an uninterrupted housekeeping made; that request still goes through, so the store may
//    act on it), on file:// after a random delay between a process's start-up time and an
//    uninterrupted housekeeping's duration. After every kill the store is walked and must be
//    sound.
// 2. Two leaders: how to get them. The leader is the live node with the smallest id, "live"
//    meaning a heartbeat within node_timeout, and a node always counts itself live. So with
//    node_timeout = 1s and no run for more than a second, every node sees every other as dead
//    and leads: the test rewrites every config with node_timeout "1s" and, each round, after
//    churn and one run per node, waits 1.2 s and starts `fedsync housekeep` on all three
//    nodes at once. Their output says which did it "as leader"; the test asserts that at least
//    two did so concurrently in some round. (This is the situation clock skew produces: each
//    leader prunes journals the others have not acknowledged, as they look dead.) The store
//    is walked after every round.
// 3. Settle: node_timeout back to 1h, every node runs until the trees agree, one more
//    housekeeping; then: the store is sound and garbage collected, every file the model says
//    exists exists with its content on every node, no other file exists anywhere, all trees
//    are equal.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startProxy, type Proxy } from '../support/proxy.js';
import { chooseSeed, diffTrees, Rng, sleep } from './harness.js';
import {
  assertGarbageCollected,
  assertStoreSound,
  backends,
  contents,
  describeWalk,
  HFed,
  since,
  storeIssues,
  walkStore,
  type BackendEnv,
  type HNode,
  type StoreWalk,
} from './history-harness.js';

const KILLS = 5;
const TWO_LEADER_ROUNDS = 4;
// snapshot_every 1h: a run housekeeps only the first time, so the work (snapshot with bundles,
// pruning, collection) is all in the `fedsync housekeep` the test starts and kills.
const SYNC = { history: '1s', gc_grace: '2s', snapshot_every: '1h', heartbeat: '1s', node_timeout: '1h' };

/** The files each node owns, and what they must hold. */
class Model {
  readonly files = new Map<string, string>();
  /** Every content a path ever had, to reuse old ones (old blobs). */
  private readonly past = new Map<string, string[]>();
  private n = 0;

  constructor(private readonly rng: Rng) {}

  churn(node: HNode): string {
    const mine = [...this.files.keys()].filter((p) => p.startsWith(`n${node.name}/`));
    const done: string[] = [];
    const put = (p: string, body: string) => {
      node.write(p, body);
      this.files.set(p, body);
      this.past.set(p, [...(this.past.get(p) ?? []), body]);
    };
    for (let i = 0; i < 3 && mine.length > 0; i++) {
      const p = this.rng.pick(mine);
      const old = this.past.get(p) ?? [];
      if (old.length > 2 && this.rng.chance(0.3)) {
        put(p, this.rng.pick(old.slice(0, -1)));
        done.push(`~${p}`);
      } else {
        put(p, `${p} #${++this.n} ${'z'.repeat(this.rng.int(0, 300))}\n`);
        done.push(`*${p}`);
      }
    }
    const fresh = `n${node.name}/${this.rng.chance(0.5) ? 'sub/' : ''}f${++this.n}.txt`;
    put(fresh, `${fresh} created #${this.n}\n`);
    done.push(`+${fresh}`);
    if (mine.length > 6) {
      const p = this.rng.pick(mine.filter((x) => !done.some((d) => d.slice(1) === x)));
      node.remove(p);
      this.files.delete(p);
      done.push(`-${p}`);
    }
    return done.join(' ');
  }

  /** Problems of one node's tree against the model: missing/wrong (lost) and extra files. */
  check(node: HNode): { lost: string[]; extra: string[] } {
    const got = contents(node.root);
    const lost: string[] = [];
    const extra: string[] = [];
    for (const [p, body] of this.files) {
      const g = got.get(p);
      if (g === undefined) lost.push(`${node.name}: ${p} is missing`);
      else if (g !== body) lost.push(`${node.name}: ${p} holds ${JSON.stringify(g.slice(0, 40))}, not ${JSON.stringify(body.slice(0, 40))}`);
    }
    for (const p of got.keys()) if (!this.files.has(p)) extra.push(`${node.name}: ${p} should not exist`);
    return { lost, extra };
  }
}

function walkIssues(w: StoreWalk, when: string): string[] {
  return storeIssues(w).map((x) => `${when}: ${x}`);
}

for (const backend of backends('killed and concurrent housekeeping leaders', { s3rver: false })) {
  describe(`history: the leader killed mid-housekeeping, and two leaders at once, on ${backend.name}`, () => {
    let env: BackendEnv;
    let proxy: Proxy | null = null;
    before(async () => {
      env = await backend.start();
      if (env.target) proxy = await startProxy({ upstream: env.target.endpoint });
    });
    after(async () => {
      await proxy?.stop();
      await env?.stop();
    });

    it('loses nothing: the store stays sound, every file that should exist exists, trees converge', { timeout: 300_000 }, async (t) => {
      const t0 = performance.now();
      const seed = chooseSeed();
      t.diagnostic(`seed ${seed} (FEDSYNC_E2E_SEED=${seed} replays it)`);
      const rng = new Rng(seed);
      const fed = await HFed.create(env, { nodes: ['A', 'B', 'C'], sync: SYNC });
      const model = new Model(rng);
      const walkProblems: string[] = [];
      const notes: string[] = [];
      // The leader runs last: its cursors move, so its housekeeping has a snapshot to write.
      const runAll = async () => {
        const leader = fed.leaderOf();
        for (const n of [...fed.nodes.filter((x) => x !== leader), leader]) await n.run();
      };
      try {
        for (const n of fed.nodes) for (let i = 0; i < 8; i++) model.churn(n);
        await runAll();
        await runAll();
        const leader = fed.leaderOf();
        // The leader talks to the store through the proxy, to be killed at its K-th request.
        if (proxy) leader.configure({}, proxy.endpoint);

        // A reference housekeeping: how many requests (S3) or how long (file://) it takes.
        for (const n of fed.nodes) model.churn(n);
        await runAll();
        await sleep(1100);
        proxy?.reset();
        const refStart = performance.now();
        assert.ok(await leader.housekeep(), `${leader.name} leads`);
        const refMs = since(refStart);
        const refRequests = proxy?.counts().total ?? 0;
        // How long a process takes to start at all (it loads every command): file:// kills
        // land between that and the end of a whole housekeeping.
        const startMs = (await leader.fedsync(['--version'])).ms;
        t.diagnostic(`reference housekeeping by ${leader.name}: ${refMs} ms (process start ${startMs} ms)${proxy ? `, ${refRequests} requests ${JSON.stringify(proxy.counts())}` : ''}`);

        // 1. Kills.
        for (let trial = 1; trial <= KILLS; trial++) {
          for (const n of fed.nodes) model.churn(n);
          await runAll();
          await sleep(1100);
          proxy?.reset();
          const running = leader.spawn(['housekeep']);
          let how: string;
          let timer: NodeJS.Timeout | undefined;
          if (proxy) {
            const k = rng.int(1, Math.max(1, refRequests));
            let seen = 0;
            how = `at request #${k}`;
            proxy.setFault((r) => {
              if (++seen !== k) return undefined;
              how += ` (${r.method} ${r.kind} ${r.key?.slice(fed.s3SetPrefix.length) ?? ('delete' in r.query ? '?delete' : `?prefix=${r.query.prefix?.slice(fed.s3SetPrefix.length)}`)})`;
              running.kill('SIGKILL');
              return { action: 'pass', delayMs: rng.int(0, 20) };
            });
          } else {
            const ms = rng.int(Math.min(startMs, refMs - 50), refMs);
            how = `after ${ms} ms`;
            timer = setTimeout(() => running.kill('SIGKILL'), ms);
          }
          const r = await running.done;
          clearTimeout(timer);
          proxy?.setFault(undefined);
          await sleep(50);
          notes.push(`kill ${trial} ${how}: ${r.signal === 'SIGKILL' ? 'killed' : `finished first (exit ${r.code})`}`);
          walkProblems.push(...walkIssues(await walkStore(fed), `after kill ${trial}`));
        }
        for (const n of notes) t.diagnostic(n);

        // 2. Two leaders at once.
        for (const n of fed.nodes) n.configure({ node_timeout: '1s' });
        let concurrentLeaders = 0;
        for (let round = 1; round <= TWO_LEADER_ROUNDS; round++) {
          for (const n of fed.nodes) model.churn(n);
          await runAll();
          await sleep(1200);
          const results = await Promise.all(fed.nodes.map((n) => n.fedsync(['housekeep'])));
          const leaders = fed.nodes.filter((_, i) => results[i]!.code === 0 && /as leader/.test(results[i]!.stdout)).map((n) => n.name);
          const failed = fed.nodes.flatMap((n, i) => (results[i]!.code === 0 ? [] : [`${n.name}: exit ${results[i]!.code} ${results[i]!.stderr.slice(-300)}`]));
          if (leaders.length >= 2) concurrentLeaders++;
          t.diagnostic(`round ${round}: leaders at once: ${leaders.join(', ') || 'none'}${failed.length ? `; failed: ${failed.join('; ')}` : ''}`);
          walkProblems.push(...walkIssues(await walkStore(fed), `after two-leader round ${round}`));
        }
        assert.ok(concurrentLeaders > 0, 'no round had two leaders at once: the test did not test what it claims');

        // 3. Settle with one leader.
        for (const n of fed.nodes) n.configure({ node_timeout: '1h' });
        let rounds = 0;
        for (; rounds < 6; rounds++) {
          await runAll();
          const trees = fed.nodes.map((n) => n.tree());
          if (trees.slice(1).every((tr) => diffTrees(trees[0]!, tr).length === 0) && rounds >= 1) break;
        }
        await sleep(2100);
        await runAll();
        const gcStart = Date.now();
        assert.ok(await fed.leaderOf().housekeep(), 'one leader again');
        const w = await walkStore(fed, { verifyBlobs: true });
        t.diagnostic(`settled after ${rounds + 1} rounds of runs; store: ${describeWalk(w)}; total ${since(t0)} ms`);

        await t.test('the store was sound after every kill and every two-leader round', () => {
          assert.deepEqual(walkProblems.slice(0, 40), [], `${walkProblems.length} issues`);
        });
        await t.test('the store is sound and garbage collected after settling', () => {
          assertStoreSound(w, 'after settling');
          assertGarbageCollected(w, gcStart, 2000, 'after settling');
        });
        const checks = fed.nodes.map((n) => model.check(n));
        await t.test('nothing lost: every file that should exist exists, with its content, on every node', () => {
          const lost = checks.flatMap((c) => c.lost);
          assert.deepEqual(lost.slice(0, 40), [], `${lost.length} files lost or wrong`);
        });
        await t.test('nothing resurrected: no node has a file that should not exist', () => {
          const extra = checks.flatMap((c) => c.extra);
          assert.deepEqual(extra.slice(0, 40), [], `${extra.length} files that should not exist`);
        });
        await t.test('all trees are equal', () => {
          const trees = fed.nodes.map((n) => ({ name: n.name, tree: n.tree() }));
          const diffs = trees.slice(1).flatMap((x) => diffTrees(trees[0]!.tree, x.tree, trees[0]!.name, x.name));
          assert.deepEqual(diffs.slice(0, 30), [], `${diffs.length} differences`);
        });
      } finally {
        await fed.close();
      }
    });
  });
}
