// The federation's state is what nodes published, never one node's disk or filters
// (DESIGN "A snapshot is the federation's state", rule 7 "Retry until applied").
//
// 1. Exclude on the leader. X1–X3 exclude `secret.php` and `private/`; P (role publish, so
//    never the housekeeping leader) publishes both beside `index.php`; R (no exclude) takes
//    them and then stops. X2 has a `secret.php` of its own, which its exclude keeps local.
//    The leader (an X) housekeeps with history 1s until P's first segment and R's journal
//    are pruned. Then: the newest snapshot has both paths; a brand-new node bootstraps from
//    it and gets them; R, back after history, keeps them; X2's own file is untouched and was
//    never published.
// 2. A blob missing once is retried. A publishes `late.jpg`; its blob is deleted from the
//    bucket before B runs. B runs: no file, status shows one wanted record. The blob is put
//    back; B runs and has the file, status shows none wanted.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { after, before, describe, it } from 'node:test';
import type { S3Target } from '../support/s3.js';
import { Federation, servers, sha256, sleep } from './harness.js';
import { backends, HFed, since, walkStore, type BackendEnv } from './history-harness.js';

const SYNC = { history: '1s', gc_grace: '2s', snapshot_every: '1s', heartbeat: '1s', node_timeout: '4s' };
const EXCLUDE = ['secret.php', 'private/'];

for (const backend of backends('a leader with its own exclude')) {
  describe(`federation state: a leader that excludes paths, on ${backend.name}`, () => {
    let env: BackendEnv;
    before(async () => {
      env = await backend.start();
    });
    after(async () => {
      await env?.stop();
    });

    it('snapshots keep what the leader excludes; a new node gets it, a returning node keeps it', { timeout: 600_000 }, async (t) => {
      const t0 = performance.now();
      const fed = await HFed.create(env, { nodes: [], sync: SYNC });
      const xs = ['X1', 'X2', 'X3'].map((n) => fed.addNode(n, { exclude: EXCLUDE }));
      const p = fed.addNode('P', { role: 'publish' });
      const r = fed.addNode('R');
      try {
        for (const n of [...xs, p, r]) await n.init();
        const x2 = fed.node('X2');
        x2.write('secret.php', '<?php // X2\'s own, never published\n');
        p.write('index.php', '<?php echo "hello";\n');
        p.write('secret.php', '<?php $password = "p";\n');
        p.write('private/key.pem', '-----BEGIN KEY-----\nP\n-----END KEY-----\n');
        const all = [p, ...xs, r];
        for (const n of all) await n.run();
        assert.equal(r.read('secret.php'), '<?php $password = "p";\n', 'R got secret.php');
        assert.equal(r.read('private/key.pem'), '-----BEGIN KEY-----\nP\n-----END KEY-----\n', 'R got private/key.pem');
        for (const x of xs) {
          assert.equal(x.read('index.php'), '<?php echo "hello";\n', `${x.name} got index.php`);
          assert.equal(x.read('private/key.pem'), null, `${x.name} excludes private/`);
        }

        // R stops. The others go on, and the leader (the smallest X id: P never leads, R is
        // dead after node_timeout) housekeeps until P's first segment and R's journal are gone.
        const leader = fed.leaderOf(xs);
        let round = 0;
        let state = '';
        const started = performance.now();
        for (;;) {
          round++;
          p.write(`churn/${round % 3}.txt`, `churn ${round}\n`);
          for (const n of [p, ...xs]) await n.run();
          await leader.housekeep();
          const w = await walkStore(fed);
          const ofP = w.segments.filter((s) => s.node === p.id).map((s) => s.seq);
          const ofR = w.segments.filter((s) => s.node === r.id).map((s) => s.seq);
          state = `round ${round} at ${since(started)} ms: P's segments ${JSON.stringify(ofP)}, R's ${JSON.stringify(ofR)}, snapshots ${w.snapshots.length}`;
          if (!ofP.includes(1) && ofR.length === 0 && w.snapshots.length > 0) break;
          assert.ok(performance.now() - started < 90_000, `housekeeping did not prune within 90 s: ${state}`);
          await sleep(400);
        }
        t.diagnostic(`pruned: ${state}`);

        await t.test('the newest snapshot holds the paths the leader excludes', async () => {
          const w = await walkStore(fed);
          const newest = w.snapshots.at(-1)!;
          const paths = new Set(newest.entries.map((e) => e.path));
          for (const path of ['index.php', 'secret.php', 'private/key.pem']) assert.ok(paths.has(path), `snapshot ${newest.name} (by ${newest.header.node === leader.id ? 'the leader' : newest.header.node}) lacks ${path}`);
        });

        await t.test('a new node bootstrapping from it gets secret.php and private/key.pem', async () => {
          const n = fed.addNode('N');
          await n.init();
          await n.run();
          assert.ok(n.logLines().some((l) => l.msg === 'catching up from a snapshot'), 'N caught up from a snapshot');
          assert.equal(n.read('index.php'), '<?php echo "hello";\n');
          assert.equal(n.read('secret.php'), '<?php $password = "p";\n');
          assert.equal(n.read('private/key.pem'), '-----BEGIN KEY-----\nP\n-----END KEY-----\n');
        });

        await t.test('R, back after history, does not delete what the federation still has', async () => {
          await r.run();
          assert.ok(r.logLines().some((l) => l.msg === 'catching up from a snapshot'), 'R caught up from a snapshot');
          assert.equal(r.read('secret.php'), '<?php $password = "p";\n');
          assert.equal(r.read('private/key.pem'), '-----BEGIN KEY-----\nP\n-----END KEY-----\n');
          await p.run();
          assert.equal(p.read('secret.php'), '<?php $password = "p";\n', 'P still has secret.php');
        });

        await t.test("X2's own excluded file stays as it is, unpublished; no X holds P's", async () => {
          assert.equal(x2.read('secret.php'), '<?php // X2\'s own, never published\n');
          for (const x of xs.filter((n) => n !== x2)) assert.equal(x.read('secret.php'), null, `${x.name} excludes secret.php`);
          const w = await walkStore(fed);
          const mine = sha256('<?php // X2\'s own, never published\n');
          const named = w.segments.flatMap((s) => s.records).filter((rec) => rec.digest === mine);
          assert.deepEqual(named, [], 'X2 published its excluded secret.php');
          for (const x of xs) {
            const wanted = (x.status() as { wanted?: { count: number } }).wanted;
            assert.equal(wanted?.count, 0, `${x.name}: excluded paths are not wanted`);
          }
        });
        t.diagnostic(`total ${since(t0)} ms`);
      } finally {
        await fed.close();
      }
    });
  });
}

/** `fedsync status --json` of a node, its one set's report. */
async function statusOf(n: { fedsync(args: string[]): Promise<{ stdout: string }> }): Promise<{ wanted?: { count: number; oldestSince: string | null } }> {
  const r = await n.fedsync(['status', '--json']);
  const out = JSON.parse(r.stdout) as { sets: { wanted?: { count: number; oldestSince: string | null } }[] };
  return out.sets[0]!;
}

for (const server of servers('a blob missing once')) {
  describe(`federation state: a blob missing once, on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    before(async () => {
      target = await server.start();
    });
    after(async () => {
      await target?.stop();
    });

    it('is retried until it applies', { timeout: 300_000 }, async (t) => {
      const fed = await Federation.create(target, { nodes: ['A', 'B'] });
      try {
        const [a, b] = fed.nodes as [(typeof fed.nodes)[0], (typeof fed.nodes)[0]];
        writeFileSync(a.abs('index.html'), '<h1>hi</h1>\n');
        await a.run();
        await b.run();
        const body = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
        writeFileSync(a.abs('late.jpg'), body);
        await a.run();
        const digest = sha256(body);
        const key = `blobs/${digest.slice(0, 2)}/${digest}`;
        const stored = await fed.getObject(key);
        assert.ok(stored, `A stored ${key}`);
        await fed.s3.send(new DeleteObjectCommand({ Bucket: fed.bucket, Key: fed.setPrefix + key }));

        await b.run();
        await t.test('while the blob is missing, B has no file and status shows one wanted record', async () => {
          assert.equal(existsSync(b.abs('late.jpg')), false, 'B cannot have late.jpg yet');
          const missing = await statusOf(b);
          assert.equal(missing.wanted?.count, 1, `status --json shows one wanted record: ${JSON.stringify(missing.wanted)}`);
          assert.ok(missing.wanted?.oldestSince, 'and since when');
          const text = await b.fedsync(['status']);
          assert.match(text.stdout, /wanted\s+1/, `status shows it:\n${text.stdout}`);
        });

        await fed.putObject(key, stored);
        await b.run();
        await t.test('once the blob is back, B has the file and nothing is wanted', async () => {
          assert.ok(existsSync(b.abs('late.jpg')), 'B has late.jpg once the blob is back');
          assert.equal(sha256(readFileSync(b.abs('late.jpg'))), digest);
          const after = await statusOf(b);
          assert.equal(after.wanted?.count, 0, `no wanted record left: ${JSON.stringify(after.wanted)}`);
        });
      } finally {
        await fed.close();
      }
    });
  });
}
