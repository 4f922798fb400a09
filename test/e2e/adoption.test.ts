// Adoption against the federation's current state (DESIGN rule 9; docs/protocol.md "Joining")
// and one plan for the dry run and the real run (docs/protocol.md "The cycle").
//
// A and B form a federation; the leader writes a snapshot; then A edits a file and adds one,
// and publishes: the federation's current state is the snapshot plus the journals after it.
// 1. C is pre-seeded with a copy of A's current tree (`cp -a` of the root, not the state
//    dir), as docs/operations.md suggests. Its first run makes no conflict copy, transfers
//    nothing (bytesDown 0), keeps every file in place (same inode), and B sees no conflict copy.
// 2. D is pre-seeded with the same copy, but one file differs from the current version and one
//    is missing. `run --dry-run` lists adopt / download / keep-both lines; the real run then
//    does exactly that: the plan it logs (debug, "planned") is the dry run's, the differing
//    file is kept as a conflict copy beside the federation's version, the identical ones keep
//    their inode, the missing one is downloaded.
// 3. An ordinary cycle: B has local edits (one of them concurrent with A's edit of the same
//    file), A has published changes (an edit, a new file, a deletion). B's dry run prints
//    exactly the plan B's real run then logs and carries out.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Target } from '../support/s3.js';
import { assertOk, Federation, servers, type FedNode } from './harness.js';

/** `cp -a` of a node's root into another node's root: the rsync pre-seed, no state dir. */
function preSeed(from: FedNode, to: FedNode): void {
  rmSync(to.root, { recursive: true, force: true });
  execFileSync('cp', ['-a', from.root, to.root]);
}

/** Every file under a root (not the marker), relative. */
function files(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (p === '.fedsync') continue;
    if (e.isDirectory()) out.push(...files(root, p));
    else out.push(p);
  }
  return out.sort();
}

const conflictCopies = (n: FedNode) => files(n.root).filter((p) => p.includes('.sync-conflict-'));
const inodes = (n: FedNode) => new Map(files(n.root).map((p) => [p, statSync(n.abs(p)).ino]));

/** The plan lines of a dry run, as "action path" (the marker line and queued count left out). */
function dryPlan(stdout: string): string[] {
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(publish|adopt|download|keep-both|apply)\s+(?:[+M-] )?(\S+)/.exec(line);
    if (m && !line.includes('change(s) already queued')) out.push(`${m[1]} ${m[2]}`);
  }
  return out.sort();
}

/** The plan a real run logged (debug "planned" lines), as "action path", from log line `from` on. */
function loggedPlan(n: FedNode, from: number): string[] {
  return n
    .logLines()
    .slice(from)
    .filter((l) => l.msg === 'planned')
    .map((l) => `${String(l.action)} ${String(l.path)}`)
    .sort();
}

function lastStats(n: FedNode): Record<string, number> {
  const st = JSON.parse(readFileSync(join(n.stateDir, n.fed.setName, 'status.json'), 'utf8')) as { lastCycle: { stats: Record<string, number> } };
  return st.lastCycle.stats;
}

for (const server of servers('adoption against the current state')) {
  describe(`adoption and one plan, on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    before(async () => {
      target = await server.start();
    });
    after(async () => {
      await target?.stop();
    });

    it('a pre-seeded copy of the current tree is adopted after post-snapshot edits; the dry run shows the real plan', { timeout: 300_000 }, async () => {
      const fed = await Federation.create(target, { nodes: ['A', 'B', 'C', 'D'], init: false, logLevel: 'debug' });
      const [a, b, c, d] = ['A', 'B', 'C', 'D'].map((x) => fed.node(x));
      try {
        await a.init();
        await b.init();
        writeFileSync(a.abs('same.txt'), 'unchanged since the snapshot\n');
        writeFileSync(a.abs('edited.txt'), 'version 1\n');
        writeFileSync(a.abs('differs.txt'), 'the federation\'s\n');
        writeFileSync(a.abs('missing.txt'), 'only on the federation\n');
        await a.run();
        await b.run();
        // Whichever of A and B leads writes the snapshot.
        for (const n of [a, b]) assertOk(await n.fedsync(['housekeep']));
        const snapshots = await fed.listObjects('snapshots/');
        assert.equal(snapshots.length, 1, 'one snapshot written');

        // After the snapshot: an edit and a new file, published and taken by B.
        writeFileSync(a.abs('edited.txt'), 'version 2, after the snapshot\n');
        writeFileSync(a.abs('added.txt'), 'added after the snapshot\n');
        await a.run();
        await b.run();
        assert.deepEqual(await fed.listObjects('snapshots/'), snapshots, 'the edits are after the newest snapshot');

        // 1. C: an exact copy of A's current tree.
        preSeed(a, c);
        const before = inodes(c);
        await c.init();
        await c.run();
        assert.deepEqual(conflictCopies(c), [], 'C made no conflict copy');
        assert.equal(lastStats(c).bytesDown, 0, 'C transferred nothing');
        assert.equal(lastStats(c).conflicts, 0, 'C counted no conflict');
        assert.deepEqual(inodes(c), before, 'C kept every file in place');
        await a.run();
        await b.run();
        assert.deepEqual(conflictCopies(b), [], 'B sees no conflict copy');
        assert.deepEqual(conflictCopies(a), [], 'A sees no conflict copy');

        // 2. D: the same copy, one file differing from the current version, one missing.
        preSeed(a, d);
        writeFileSync(d.abs('differs.txt'), 'D\'s own\n');
        rmSync(d.abs('missing.txt'));
        await d.init();
        const dry = assertOk(await d.fedsync(['run', '--dry-run']), 'D: run --dry-run');
        const plan = dryPlan(dry.stdout);
        assert.deepEqual(
          plan,
          ['adopt added.txt', 'adopt edited.txt', 'adopt same.txt', 'download missing.txt', 'keep-both differs.txt'],
          `D's dry run:\n${dry.stdout}`,
        );
        assert.deepEqual(conflictCopies(d), [], 'the dry run changed nothing');
        const inodesD = inodes(d);
        const logFrom = d.logLines().length;
        await d.run();
        const real = loggedPlan(d, logFrom);
        assert.deepEqual(real, plan, 'the real run carried out the dry run\'s plan');
        const copies = conflictCopies(d);
        assert.equal(copies.length, 1, `one conflict copy on D: ${copies.join(', ')}`);
        assert.match(copies[0]!, /^differs\.sync-conflict-/);
        assert.equal(readFileSync(d.abs(copies[0]!), 'utf8'), 'D\'s own\n', 'the local version is kept');
        assert.equal(readFileSync(d.abs('differs.txt'), 'utf8'), 'the federation\'s\n');
        assert.equal(readFileSync(d.abs('missing.txt'), 'utf8'), 'only on the federation\n');
        for (const p of ['same.txt', 'edited.txt', 'added.txt']) assert.equal(statSync(d.abs(p)).ino, inodesD.get(p), `${p} adopted in place`);
        assert.equal(readFileSync(d.abs('edited.txt'), 'utf8'), 'version 2, after the snapshot\n');
      } finally {
        await fed.close();
      }
    });

    it('an ordinary cycle: the dry run prints the plan the real run carries out', { timeout: 300_000 }, async () => {
      const fed = await Federation.create(target, { nodes: ['A', 'B'], logLevel: 'debug' });
      const [a, b] = ['A', 'B'].map((x) => fed.node(x));
      try {
        writeFileSync(a.abs('both.txt'), 'base\n');
        writeFileSync(a.abs('remote-edit.txt'), 'base\n');
        writeFileSync(a.abs('remote-delete.txt'), 'base\n');
        writeFileSync(a.abs('local-edit.txt'), 'base\n');
        await a.run();
        await b.run();
        // A: an edit, a new file, a deletion, and an edit of both.txt; B edits both.txt after A.
        writeFileSync(a.abs('remote-edit.txt'), 'edited on A\n');
        writeFileSync(a.abs('remote-new.txt'), 'new on A\n');
        rmSync(a.abs('remote-delete.txt'));
        writeFileSync(a.abs('both.txt'), 'A\'s edit\n');
        await a.run();
        writeFileSync(b.abs('both.txt'), 'B\'s edit, later\n');
        writeFileSync(b.abs('local-edit.txt'), 'edited on B\n');
        writeFileSync(b.abs('local-new.txt'), 'new on B\n');

        const dry = assertOk(await b.fedsync(['run', '--dry-run']), 'B: run --dry-run');
        const plan = dryPlan(dry.stdout);
        assert.deepEqual(
          plan,
          ['apply remote-delete.txt', 'download remote-edit.txt', 'download remote-new.txt', 'publish both.txt', 'publish local-edit.txt', 'publish local-new.txt'],
          `B's dry run:\n${dry.stdout}`,
        );
        const logFrom = b.logLines().length;
        await b.run();
        assert.deepEqual(loggedPlan(b, logFrom), plan, 'the real run carried out the dry run\'s plan');
        assert.equal(readFileSync(b.abs('remote-edit.txt'), 'utf8'), 'edited on A\n');
        assert.equal(readFileSync(b.abs('both.txt'), 'utf8'), 'B\'s edit, later\n', 'the later edit wins');
        assert.deepEqual(conflictCopies(b), []);
        await a.run();
        assert.equal(readFileSync(a.abs('both.txt'), 'utf8'), 'B\'s edit, later\n');
        assert.equal(conflictCopies(a).length, 1, 'A keeps its losing edit as a conflict copy');
      } finally {
        await fed.close();
      }
    });
  });
}
