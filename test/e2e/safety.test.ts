// The safety rails and the CLI's manners, on real processes (DESIGN.md, "Safety rails", and
// "Modes"): a root without its `.fedsync/` marker is refused; a cycle deleting more than
// max_delete stops until forced, and publishes nothing meanwhile; overlapping runs skip quietly;
// a bad config is a usage error naming the key and the file; a dry run changes nothing here or in
// the store; and a run that went well says nothing (cron mails whatever a job prints).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startProxy, type Proxy } from '../support/proxy.js';
import type { S3Target } from '../support/s3.js';
import { assertOk, assertTreesEqual, describeResult, type CommandResult, Federation, ownStderrLines, servers, spawnFedsync, treeDigest, type FedNode } from './harness.js';

const FILES = 20;
const name = (i: number) => `page ${String(i).padStart(2, '0')}.html`;

for (const server of servers('safety rails')) {
  describe(`safety rails on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    let proxy: Proxy;
    let fed: Federation;
    let a: FedNode;
    let b: FedNode;

    const converged = (context: string) =>
      assertTreesEqual(
        [
          { name: 'A', tree: a.snapshot() },
          { name: 'B', tree: b.snapshot() },
        ],
        context,
      );
    const bucket = async () => (await fed.listObjects()).map((o) => `${o.key} ${o.etag}`).join('\n');

    before(async () => {
      target = await server.start();
      proxy = await startProxy({ upstream: target.endpoint });
      fed = await Federation.create(target, { nodes: ['A', 'B'], endpoint: proxy.endpoint });
      [a, b] = fed.nodes as [FedNode, FedNode];
      for (let i = 1; i <= FILES; i++) writeFileSync(a.abs(name(i)), `<p>page ${i}</p>\n`);
      await a.run();
      await b.run();
      await a.run();
      converged('after the first sync');
    });
    after(async () => {
      await fed?.close();
      await proxy?.stop();
      await target?.stop();
    });

    it('a root without .fedsync/ is refused: non-zero exit, one line naming the problem, nothing touched', async () => {
      const tree = treeDigest(a.root);
      const store = await bucket();
      rmSync(a.abs('.fedsync'), { recursive: true });
      proxy.reset();
      const r = await a.fedsync(['run']);
      assert.notEqual(r.code, 0, `run succeeded on a root without its marker:\n${describeResult(r)}`);
      const lines = ownStderrLines(r);
      assert.equal(lines.length, 1, `expected one line on stderr:\n${describeResult(r)}`);
      assert.match(lines[0]!, /\.fedsync/, 'the message names the missing marker');
      assert.ok(lines[0]!.includes(a.root), 'the message names the root');
      assert.equal(r.stdout, '');
      assert.equal(proxy.counts().total, 0, 'no request to the store');
      assert.equal(treeDigest(a.root), tree, 'the tree is untouched');
      assert.equal(existsSync(a.abs('.fedsync')), false, 'run does not recreate the marker by itself');
      assert.equal(await bucket(), store, 'the store is untouched');

      // `init` puts the marker back, and the node goes on as before (nothing deleted anywhere).
      assertOk(await a.fedsync(['init']));
      await a.run();
      await b.run();
      assert.equal(treeDigest(a.root), tree);
      converged('after re-init');
    });

    it('deleting more than max_delete (50%) refuses and publishes nothing; run --force publishes and the peer applies it', async () => {
      const deleted = Array.from({ length: 15 }, (_, i) => name(i + 1));
      for (const p of deleted) unlinkSync(a.abs(p));
      const store = await bucket();
      const r = await a.fedsync(['run']);
      assert.notEqual(r.code, 0, `a 75% deletion went through:\n${describeResult(r)}`);
      const lines = ownStderrLines(r);
      assert.ok(lines.some((l) => l.includes('--force')), `the message says to use --force:\n${describeResult(r)}`);
      assert.ok(lines.some((l) => /\b15\b/.test(l)), `the message says how many:\n${describeResult(r)}`);
      assert.equal(await bucket(), store, 'nothing was published');
      for (const p of deleted) assert.equal(existsSync(a.abs(p)), false, 'fedsync does not bring the files back by itself');

      await b.run();
      for (const p of deleted) assert.ok(existsSync(b.abs(p)), `the peer still has ${p}`);
      // The rail holds on the next cron run too.
      const again = await a.fedsync(['run']);
      assert.notEqual(again.code, 0, `the second run let the deletion through:\n${describeResult(again)}`);
      assert.equal(await bucket(), store, 'still nothing published');

      await a.run(['--force']);
      assert.notEqual(await bucket(), store, '--force published');
      // The peer's ordinary cron run applies a deletion its author forced: every peer's
      // operator should not have to force it again (cron would fail on every node until then).
      const rb = await b.fedsync(['run']);
      if (rb.code !== 0) await b.run(['--force']); // unstick B, so the tests after this one can run
      await a.run();
      converged('after the forced deletion');
      assert.equal([...b.snapshot().keys()].length, FILES - deleted.length);
      assertOk(rb, "B's normal run after A's forced deletion");
    });

    it('two runs started at once on one node: one does the cycle, the other skips quietly with exit 0', async () => {
      writeFileSync(a.abs('overlap.txt'), 'both runs see this\n');
      // A slow store keeps the first run inside its cycle (holding the lock) long enough: its
      // first request waits 2.5 s. (The run that skips makes no request at all.)
      let first = true;
      proxy.setFault(() => {
        const delayMs = first ? 2500 : 0;
        first = false;
        return { action: 'pass', delayMs };
      });
      try {
        const ended = new Map<number, number>();
        const runs = [a.spawn(['run']), a.spawn(['run'])].map((c) => c.done.then((r) => (ended.set(r.pid, performance.now()), r)));
        const [r1, r2] = (await Promise.all(runs)) as [CommandResult, CommandResult];
        for (const r of [r1, r2]) assertOk(r, 'an overlapping run');
        // One left at once, while the other still held the lock, and said nothing.
        const [quiet, busy] = ended.get(r1.pid)! < ended.get(r2.pid)! ? [r1, r2] : [r2, r1];
        assert.equal(quiet.stdout + quiet.stderr, '', `the skipping run printed something:\n${describeResult(quiet)}`);
        assert.ok(quiet.ms < busy.ms, 'the skipping run did not wait for the lock');
        // Only the other one did a cycle: the cycle summary line (with its request counts) is
        // logged by one pid only.
        const lines = a.logLines();
        const summaries = (pid: number) => lines.filter((l) => l.pid === pid && typeof l.requests === 'object');
        assert.equal(summaries(quiet.pid).length, 0, `the skipping run did a cycle too: ${JSON.stringify(lines.filter((l) => l.pid === quiet.pid))}`);
        assert.equal(summaries(busy.pid).length, 1, `the other run did not log its cycle: ${JSON.stringify(lines.filter((l) => l.pid === busy.pid))}`);
      } finally {
        proxy.setFault(undefined);
      }
      await b.run();
      converged('after the overlapping runs');
    });

    it('an unknown config key: exit 2, one line naming the key and the file, no request made', async () => {
      const good = readFileSync(a.config, 'utf8');
      const cases: [string, string, RegExp][] = [
        ['in [[sync]]', good.replace('[[sync]]\n', '[[sync]]\ncolour = "blue"\n'), /sync\[0\]\.colour/],
        ['at the top level', `verbosity = 3\n${good}`, /verbosity/],
        ['in [store]', good.replace('[store]\n', '[store]\nbuckett = "x"\n'), /store\.buckett/],
      ];
      for (const [where, text, key] of cases) {
        const file = join(a.dir, 'bad.toml');
        writeFileSync(file, text);
        proxy.reset();
        const r = await spawnFedsync(['-c', file, 'run'], a.env(), { cwd: a.dir }).done;
        assert.equal(r.code, 2, `unknown key ${where}: exit ${r.code}, not 2:\n${describeResult(r)}`);
        const lines = ownStderrLines(r);
        assert.equal(lines.length, 1, `one line on stderr:\n${describeResult(r)}`);
        assert.match(lines[0]!, key, `the message names the key:\n${describeResult(r)}`);
        assert.ok(lines[0]!.includes(file), `the message names the file:\n${describeResult(r)}`);
        assert.equal(proxy.counts().total, 0, 'a bad config makes no request');
      }
    });

    it('run --dry-run changes nothing here or in the store, and the next real run still does everything', async () => {
      writeFileSync(b.abs('from B.txt'), 'made on B\n');
      await b.run();
      writeFileSync(a.abs('new on A.txt'), 'new\n');
      writeFileSync(a.abs(name(16)), 'modified on A\n');
      unlinkSync(a.abs(name(17)));
      const tree = treeDigest(a.root, { includeMarker: true });
      const status = readFileSync(join(a.stateDir, fed.setName, 'status.json'), 'utf8');
      const store = await bucket();
      proxy.reset();
      const r = assertOk(await a.fedsync(['run', '--dry-run']), 'dry run');
      const writes = proxy.log().filter((x) => x.method !== 'GET' && x.method !== 'HEAD');
      assert.deepEqual(writes, [], 'a dry run sends no write request');
      assert.match(r.stdout, /new on A\.txt/, `the plan lists the new file:\n${describeResult(r)}`);
      assert.match(r.stdout, /page 16\.html/, 'the plan lists the modified file');
      assert.match(r.stdout, /page 17\.html/, 'the plan lists the deleted file');
      assert.match(r.stdout, /from B\.txt/, "the plan lists the peer's file it would apply");
      assert.equal(treeDigest(a.root, { includeMarker: true }), tree, 'the dry run changed the tree');
      assert.equal(readFileSync(join(a.stateDir, fed.setName, 'status.json'), 'utf8'), status, 'the dry run rewrote status.json');
      assert.equal(await bucket(), store, 'the dry run changed the store');

      await a.run();
      await b.run();
      assert.equal(readFileSync(b.abs('new on A.txt'), 'utf8'), 'new\n');
      assert.equal(readFileSync(a.abs('from B.txt'), 'utf8'), 'made on B\n');
      assert.equal(existsSync(b.abs(name(17))), false);
      converged('after the dry run and a real one');
    });

    it('a successful run prints nothing on stdout or stderr (cron mails any output)', async () => {
      writeFileSync(a.abs('quiet.txt'), 'cron job output is mailed\n');
      const r = await a.run();
      assert.equal(r.stdout, '', `stdout:\n${describeResult(r)}`);
      assert.equal(r.stderr, '', `a successful cron run wrote to stderr (every minute, on every node, mailed by cron):\n${describeResult(r)}`);
    });
  });
}
