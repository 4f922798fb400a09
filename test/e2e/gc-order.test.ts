// Garbage collection against blobs refreshed or uploaded while it runs (docs/protocol.md,
// "Garbage collection"). Each case holds the leader's `fedsync housekeep` at one request,
// through the leader's own fault proxy, while the other node runs a whole `fedsync run`
// (through its own proxy), so the interleaving is exact:
//
// 1. An old unreferenced blob X (left by a publish that crashed before its segment, or content
//    superseded long ago) is in the store, older than gc_grace. The other node writes a file
//    with X's content: it stores X again (that refreshes its date) and publishes a segment
//    naming it. The leader is held right after it listed blobs/.
// 2. The same, the leader held after it listed both blobs/ and journal/ (at its next HEAD or
//    delete): the refreshing segment is one it never lists, so only a re-check of X's date
//    just before deleting keeps X.
// 3. The other node's file changes between its scan and its publish, so it cannot upload X
//    from disk and finds X in the store by a HEAD: X is older than the refresh age, and a
//    segment must not name a blob that nobody refreshed (the record waits for the next cycle).
// 4. A leader whose clock is two days ahead (libfaketime) collects while the other node has
//    uploaded a new blob and not yet its segment: ages are judged by the store's clock.
// 5. The other node's run is killed at its segment upload (its blobs stored, the segment
//    reserved); the leader collects those blobs past gc_grace; the next run must store them
//    again before it sends the reserved segment. 6. The same with the file changed since
//    the kill: the blob can no longer be stored, so the reservation is rebuilt without that
//    record and the version on disk now is published instead.
//
// After each: every blob a kept segment or snapshot names is in the bucket, and a brand-new
// node bootstraps with every file. On one S3 server (the proxies hold the requests).
import { PutObjectCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { faketimeEnv, faketimeLib } from '../support/faketime.js';
import { startProxy, type Proxy, type ProxyRequest } from '../support/proxy.js';
import { rgwTargetFromEnv, testClient } from '../support/s3.js';
import { assertTreesEqual, sha256, sleep, spawnFedsync } from './harness.js';
import { backends, HFed, walkStore, type BackendEnv, type HNode, type SyncValues } from './history-harness.js';

const GRACE_MS = 3000;
// snapshot_every 1h: after a node's first housekeeping only `fedsync housekeep` collects, so
// the test decides when.
const SYNC: SyncValues = { history: '1s', gc_grace: '3s', snapshot_every: '1h', heartbeat: '1s', node_timeout: '1h' };
const DAY = 86_400_000;
const noFaketime = faketimeLib() ? false : 'libfaketime is not installed (apt-get install -y faketime)';

const REUSED = 'content stored long ago, unreferenced, and now written again\n';
const CHANGED = 'what the file holds by the time it is published\n';

// The order is the protocol's, not a server's: one real S3 server (RGW where configured).
for (const backend of backends('garbage collection order', { file: false, s3rver: rgwTargetFromEnv() === null })) {
  describe(`garbage collection against blobs refreshed or uploaded while it runs, on ${backend.name}`, () => {
    let env: BackendEnv;
    let proxyA: Proxy;
    let proxyB: Proxy;
    before(async () => {
      env = await backend.start();
      proxyA = await startProxy({ upstream: env.target!.endpoint });
      proxyB = await startProxy({ upstream: env.target!.endpoint });
    });
    after(async () => {
      await proxyA?.stop();
      await proxyB?.stop();
      await env?.stop();
    });

    /** Two nodes, the leader `a` behind proxyA and `b` behind proxyB, both synced and housekept once. */
    async function federation(sync: SyncValues): Promise<{ fed: HFed; a: HNode; b: HNode }> {
      const fed = await HFed.create(env, { nodes: ['P', 'Q'], sync });
      const a = fed.leaderOf();
      const b = fed.nodes.find((n) => n !== a)!;
      a.configure({}, proxyA.endpoint);
      b.configure({}, proxyB.endpoint);
      a.write('a/base.txt', 'a base\n');
      b.write('b/base.txt', 'b base\n');
      for (const n of [a, b, a, b]) await n.run(); // each node's second run housekeeps
      return { fed, a, b };
    }

    /** Stores `body` as a blob no record names, as a publish that crashed before its segment leaves it. */
    async function orphanBlob(fed: HFed, body: string): Promise<string> {
      const digest = sha256(body);
      const s3 = testClient(env.target!);
      try {
        await s3.send(new PutObjectCommand({ Bucket: fed.bucket, Key: `${fed.s3SetPrefix}blobs/${digest.slice(0, 2)}/${digest}`, Body: body }));
      } finally {
        s3.destroy();
      }
      return `blobs/${digest.slice(0, 2)}/${digest}`;
    }

    /**
     * Holds the first request of the leader's that matches `at` (given what it listed so far)
     * and runs `action` before letting it through. Returns whether it fired.
     */
    function holdLeader(fed: HFed, at: 'after blobs listed' | 'after blobs and journals listed', action: () => Promise<void>): () => boolean {
      const listed = { blobs: false, journal: false };
      let fired = false;
      proxyA.reset();
      proxyA.setFault(async (r: ProxyRequest) => {
        if (fired) return undefined;
        const prefix = r.kind === 'list' ? (r.query.prefix ?? '') : '';
        const isBlobList = prefix.startsWith(`${fed.s3SetPrefix}blobs/`);
        const ready =
          at === 'after blobs listed'
            ? listed.blobs && !isBlobList
            : listed.blobs && listed.journal && (r.kind === 'head' || r.kind === 'post' || r.kind === 'delete');
        if (isBlobList) listed.blobs = true;
        if (prefix.startsWith(`${fed.s3SetPrefix}journal/`)) listed.journal = true;
        if (!ready) return undefined;
        fired = true;
        await action();
        return undefined;
      });
      return () => fired;
    }

    /** Every named blob is stored, and a new node bootstraps with every file of `b`. */
    async function assertSound(fed: HFed, a: HNode, b: HNode, label: string): Promise<void> {
      const w = await walkStore(fed);
      assert.deepEqual(w.missingBlobs, [], `${label}: blobs named by kept segments or snapshots are missing`);
      await b.run();
      await a.run();
      const n = fed.addNode('N');
      await n.init();
      await n.run();
      await n.run();
      assertTreesEqual(
        [
          { name: b.name, tree: b.tree() },
          { name: a.name, tree: a.tree() },
          { name: 'N', tree: n.tree() },
        ],
        label,
      );
    }

    for (const at of ['after blobs listed', 'after blobs and journals listed'] as const) {
      it(`an old blob refreshed by another node while the leader collects (held ${at}) is kept`, { timeout: 120_000 }, async (t) => {
        const { fed, a, b } = await federation(SYNC);
        try {
          const x = await orphanBlob(fed, REUSED);
          await sleep(GRACE_MS + 1500); // X is past gc_grace
          await b.run(); // a heartbeat: the store's clock has moved on too
          let bOut = '';
          const fired = holdLeader(fed, at, async () => {
            b.write('g.txt', REUSED);
            bOut = (await b.run()).stdout.trim();
          });
          const out = (await a.ok(['housekeep'])).stdout.trim();
          proxyA.setFault(undefined);
          const gc = a.logLines().filter((l) => l.msg === 'deleted unreferenced blobs and bundles');
          t.diagnostic(`leader ${a.name}: ${out}; ${b.name} meanwhile: ${bOut}; collection: ${JSON.stringify(gc.at(-1) ?? null)}`);
          assert.match(out, /as leader/);
          assert.ok(fired(), `the leader's housekeeping never reached the point "${at}"`);
          assert.ok((await fed.list('blobs/')).some((o) => o.key === x), `the refreshed blob ${x} was deleted`);
          await assertSound(fed, a, b, `held ${at}`);
          assert.equal(fed.node('N').read('g.txt'), REUSED);
        } finally {
          proxyA.setFault(undefined);
          await fed.close();
        }
      });
    }

    it('a blob found in the store by a HEAD, too old to count as stored, is not named by a segment', { timeout: 120_000 }, async (t) => {
      const { fed, a, b } = await federation(SYNC);
      try {
        await orphanBlob(fed, REUSED);
        await sleep(GRACE_MS + 1500);
        await b.run();
        let bOut = '';
        const fired = holdLeader(fed, 'after blobs and journals listed', async () => {
          b.write('g.txt', REUSED);
          // Between b's scan and its publish (at its heads listing) the file changes: the
          // upload of X from disk fails, and X is found in the store by a HEAD.
          let changed = false;
          proxyB.setFault((r) => {
            if (!changed && r.kind === 'list' && (r.query.prefix ?? '').startsWith(`${fed.s3SetPrefix}heads/`)) {
              changed = true;
              b.write('g.txt', CHANGED);
            }
            return undefined;
          });
          try {
            bOut = (await b.run()).stdout.trim();
          } finally {
            proxyB.setFault(undefined);
          }
        });
        const out = (await a.ok(['housekeep'])).stdout.trim();
        proxyA.setFault(undefined);
        t.diagnostic(`leader ${a.name}: ${out}; ${b.name} meanwhile: ${bOut}`);
        assert.ok(fired(), "the leader's housekeeping never listed blobs and journals");
        await assertSound(fed, a, b, 'after a HEAD found an old blob');
        assert.equal(fed.node('N').read('g.txt'), CHANGED);
      } finally {
        proxyA.setFault(undefined);
        proxyB.setFault(undefined);
        await fed.close();
      }
    });

    for (const changed of [false, true]) {
      const what = changed ? 'changed since, is published as it is now' : 'has its blob stored again before the segment';
      it(`a file whose publish was killed at its segment upload, its blob collected meanwhile, ${what}`, { timeout: 120_000 }, async (t) => {
        const { fed, a, b } = await federation(SYNC);
        try {
          const FIRST = 'written before a run killed at its segment upload\n';
          b.write('k.txt', FIRST);
          const running = b.spawn(['run']);
          let killed = false;
          proxyB.setFault(async (r) => {
            if (killed || r.kind !== 'put' || !r.key?.startsWith(`${fed.s3SetPrefix}journal/`)) return undefined;
            killed = true;
            running.kill('SIGKILL');
            return { action: 'reset' };
          });
          const res = await running.done;
          proxyB.setFault(undefined);
          assert.ok(killed && res.signal === 'SIGKILL', `${b.name}'s run was not killed at its segment upload: ${res.stdout}${res.stderr}`);
          const blob = `blobs/${sha256(FIRST).slice(0, 2)}/${sha256(FIRST)}`;
          assert.ok((await fed.list('blobs/')).some((o) => o.key === blob), 'the killed run had not stored the blob');
          await sleep(GRACE_MS + 1500); // the stored blob, unreferenced, is past gc_grace
          // The store's clock moves on (a new blob of the leader's), b itself stays still.
          a.write('a/tick.txt', 'the store clock moves on\n');
          await a.ok(['run']);
          await a.ok(['housekeep']);
          assert.ok(!(await fed.list('blobs/')).some((o) => o.key === blob), 'the leader did not collect the unreferenced blob (the test needs it gone)');
          if (changed) b.write('k.txt', CHANGED);
          const out = (await b.ok(['run'])).stdout.trim();
          t.diagnostic(`${b.name} after the kill and the collection: ${out}`);
          await assertSound(fed, a, b, changed ? 'a reserved segment whose file changed' : 'a reserved segment');
          assert.equal(a.read('k.txt'), changed ? CHANGED : FIRST);
          assert.equal(fed.node('N').read('k.txt'), changed ? CHANGED : FIRST);
          // No record anywhere names a blob that is not stored: nothing stays wanted.
          for (const n of [a, fed.node('N')]) assert.equal((n.status().wanted as { count: number } | undefined)?.count ?? 0, 0, `${n.name} has wanted records`);
        } finally {
          proxyB.setFault(undefined);
          await fed.close();
        }
      });
    }

    it('a leader whose clock is two days ahead keeps a blob uploaded just before its segment', { timeout: 120_000, skip: noFaketime }, async (t) => {
      const { fed, a, b } = await federation({ ...SYNC, gc_grace: '1h' });
      try {
        b.write('new.txt', 'uploaded just before its segment\n');
        let aOut = '';
        let held = false;
        proxyB.setFault(async (r) => {
          if (held || r.kind !== 'put' || !r.key?.startsWith(`${fed.s3SetPrefix}journal/`)) return undefined;
          held = true;
          // b has stored the blob, not yet the segment naming it: the skewed leader collects.
          const res = await spawnFedsync(['-c', a.config, 'housekeep'], { ...a.env(), ...faketimeEnv(2 * DAY) }, { cwd: a.dir }).done;
          aOut = `${res.stdout.trim()} ${res.stderr.trim()} (exit ${res.code})`;
          return undefined;
        });
        try {
          await b.run();
        } finally {
          proxyB.setFault(undefined);
        }
        t.diagnostic(`leader ${a.name}, two days ahead: ${aOut}`);
        assert.ok(held, `${b.name} never uploaded a segment`);
        assert.match(aOut, /as leader/);
        await assertSound(fed, a, b, 'after a skewed leader collected');
        assert.equal(fed.node('N').read('new.txt'), 'uploaded just before its segment\n');
      } finally {
        proxyB.setFault(undefined);
        await fed.close();
      }
    });
  });
}
