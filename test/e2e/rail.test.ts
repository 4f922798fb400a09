// The mass-deletion rail as DESIGN rule 5 states it, on real processes: files and symlinks
// count, directories do not (a tree of many small folders is no easier to empty); a file
// whose content reappears at a new path in the same cycle was moved, not deleted (renaming a
// large directory is not refused, and peers take the content from their own disk); deleting
// every file is refused whatever the size of the tree; while a refusal stands the node still
// applies its peers' changes and hashes nothing it has hashed already.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Target } from '../support/s3.js';
import { assertTreesEqual, describeResult, Federation, ownStderrLines, servers, type CommandResult, type FedNode } from './harness.js';

/** The summary line a cycle logs (its stats and request counts), of the run that made `r`. */
function cycleLine(node: FedNode, r: CommandResult): Record<string, unknown> {
  const lines = node.logLines().filter((l) => l.pid === r.pid && typeof l.requests === 'object');
  assert.equal(lines.length, 1, `${node.name}: expected one cycle summary of pid ${r.pid}:\n${describeResult(r)}`);
  return lines[0]!;
}

function write(node: FedNode, rel: string, body: string): void {
  mkdirSync(dirname(node.abs(rel)), { recursive: true });
  writeFileSync(node.abs(rel), body);
}

/** Records of `node`'s journal, as `kind path`. */
async function published(fed: Federation, node: FedNode): Promise<string[]> {
  return (await fed.journal(node.id)).flatMap((s) => s.records.map((r) => `${r.kind} ${r.path}`));
}

const converged = (nodes: FedNode[], context: string) => assertTreesEqual(nodes.map((n) => ({ name: n.name, tree: n.snapshot() })), context);

for (const server of servers('the mass-deletion rail')) {
  describe(`the mass-deletion rail on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    const feds: Federation[] = [];
    const federation = async (): Promise<[Federation, FedNode, FedNode]> => {
      const fed = await Federation.create(target, { nodes: ['A', 'B'] });
      feds.push(fed);
      return [fed, fed.nodes[0]!, fed.nodes[1]!];
    };

    before(async () => {
      target = await server.start();
    });
    after(async () => {
      for (const f of feds) await f.close();
      await target?.stop();
    });

    describe('40 month folders of 2 images each', () => {
      let fed: Federation;
      let a: FedNode;
      let b: FedNode;
      // uploads/2021/01 .. uploads/2024/04: 40 folders, 80 files, 45 directories.
      const months = Array.from({ length: 40 }, (_, i) => `uploads/${2021 + Math.floor(i / 12)}/${String((i % 12) + 1).padStart(2, '0')}`);
      const images = months.flatMap((m) => [`${m}/photo-1.jpg`, `${m}/photo-2.jpg`]);
      // 60% of the files: both images of the first 24 months (their folders stay).
      const doomed = images.slice(0, 48);
      const fresh = ['uploads/new/a.jpg', 'uploads/new/b.jpg', 'uploads/new/c.jpg'];
      let refusedOnce: CommandResult;

      before(async () => {
        [fed, a, b] = await federation();
        for (const p of images) write(a, p, `JPEG ${p} ${'x'.repeat(200)}\n`);
        await a.run();
        await b.run();
        converged([a, b], 'after the first sync');
      });

      it('deleting 60% of the files (folders left in place) is refused, and no peer loses them', async () => {
        for (const p of doomed) unlinkSync(a.abs(p));
        for (const p of fresh) write(a, p, `new ${p}\n`);
        const before = await published(fed, a);
        const r = await a.fedsync(['run']);
        refusedOnce = r;
        assert.notEqual(r.code, 0, `deleting 48 of 80 files went through:\n${describeResult(r)}`);
        const lines = ownStderrLines(r);
        assert.equal(lines.length, 1, `one line on stderr:\n${describeResult(r)}`);
        assert.match(lines[0]!, /\b48 of 80 files\b/, 'the message counts files, not directories');
        assert.match(lines[0]!, /--force/, 'the message says how to override');
        assert.deepEqual(await published(fed, a), before, 'nothing of the refused scan was published');
        assert.ok((cycleLine(a, r).hashed as number) >= fresh.length, 'the new files were hashed');

        await b.run();
        for (const p of images) assert.ok(existsSync(b.abs(p)), `the peer still has ${p}`);
        for (const p of doomed) assert.equal(existsSync(a.abs(p)), false, 'fedsync does not bring the files back by itself');
      });

      it('while refused, the node applies its peers\' changes and hashes nothing again', async () => {
        assert.ok(refusedOnce, 'runs after the refusal above');
        write(b, 'uploads/2024/04/photo-1.jpg', 'edited on B\n');
        write(b, 'uploads/news.txt', 'from B\n');
        await b.run();

        const r = await a.fedsync(['run']);
        assert.notEqual(r.code, 0, `the refusal no longer stands:\n${describeResult(r)}`);
        assert.match(ownStderrLines(r).join('\n'), /\b48 of 80 files\b/);
        assert.equal(readFileSync(a.abs('uploads/2024/04/photo-1.jpg'), 'utf8'), 'edited on B\n', "the peer's edit applied on the refused node");
        assert.equal(readFileSync(a.abs('uploads/news.txt'), 'utf8'), 'from B\n', "the peer's new file applied on the refused node");
        const line = cycleLine(a, r);
        assert.equal(line.hashed, 0, `the files hashed by the refused cycle before were not hashed again: ${JSON.stringify(line)}`);

        // Nor on the next cycle (the files just applied included).
        const again = await a.fedsync(['run']);
        assert.notEqual(again.code, 0);
        assert.equal(cycleLine(a, again).hashed, 0, `hashed again: ${JSON.stringify(cycleLine(a, again))}`);
        assert.ok(!(await published(fed, a)).some((l) => l.startsWith('deleted ')), 'no deletion published while refused');
        for (const p of doomed) assert.ok(existsSync(b.abs(p)), `the peer still has ${p}`);
      });

      it('run --force publishes the deletion; the peer applies it on its ordinary run', async () => {
        const r = await a.run(['--force']);
        assert.equal(cycleLine(a, r).hashed, 0, 'forced, the kept hashes are used');
        const deleted = (await published(fed, a)).filter((l) => l.startsWith('deleted '));
        assert.deepEqual(deleted.sort(), doomed.map((p) => `deleted ${p}`).sort(), 'files are deleted, folders left');
        await b.run();
        await a.run();
        converged([a, b], 'after the forced deletion');
        for (const p of fresh) assert.ok(existsSync(b.abs(p)), `the peer has ${p}`);
        for (const p of doomed) assert.equal(existsSync(b.abs(p)), false, `the peer deleted ${p}`);
      });
    });

    it('renaming a directory holding 2/3 of the files is a move: not refused, and peers copy the content they have', async () => {
      const [fed, a, b] = await federation();
      const books = Array.from({ length: 80 }, (_, i) => `library/books/b${String(i).padStart(3, '0')}.txt`);
      const misc = Array.from({ length: 40 }, (_, i) => `library/misc/m${String(i).padStart(3, '0')}.txt`);
      for (const p of [...books, ...misc]) write(a, p, `${p} ${'y'.repeat(300)}\n`);
      await a.run();
      await b.run();
      converged([a, b], 'after the first sync');

      renameSync(a.abs('library/books'), a.abs('library/volumes'));
      const r = await a.fedsync(['run']);
      assert.equal(r.code, 0, `renaming a directory was refused:\n${describeResult(r)}`);
      const records = await published(fed, a);
      assert.equal(records.filter((l) => l.startsWith('deleted library/books/')).length, 80, 'the old paths are published as deleted');
      assert.equal(records.filter((l) => l.startsWith('file library/volumes/')).length, 80, 'the new paths are published');

      const rb = await b.fedsync(['run']);
      assert.equal(rb.code, 0, `the peer refused to apply the move:\n${describeResult(rb)}`);
      const line = cycleLine(b, rb);
      assert.equal(line.bytesDown, 0, `the peer downloaded content it had: ${JSON.stringify(line)}`);
      converged([a, b], 'after the move');
      const again = await a.run();
      assert.equal(cycleLine(a, again).hashed, 0, 'nothing hashed again after the move');
    });

    it('emptying a tree of 10 files or fewer (marker left) is refused; moving all of it is not', async () => {
      const [fed, a, b] = await federation();
      const files = Array.from({ length: 6 }, (_, i) => `conf/site-${i}.conf`);
      for (const p of files) write(a, p, `server ${p}\n`);
      await a.run();
      await b.run();
      converged([a, b], 'after the first sync');

      // Every file moved: nothing is deleted.
      renameSync(a.abs('conf'), a.abs('etc'));
      await a.run();
      await b.run();
      converged([a, b], 'after moving every file');
      const moved = files.map((p) => p.replace('conf/', 'etc/'));

      for (const p of moved) unlinkSync(a.abs(p));
      const before = await published(fed, a);
      const r = await a.fedsync(['run']);
      assert.notEqual(r.code, 0, `emptying the tree went through:\n${describeResult(r)}`);
      const lines = ownStderrLines(r);
      assert.equal(lines.length, 1, `one line on stderr:\n${describeResult(r)}`);
      assert.match(lines[0]!, /every file/, 'the message says every file would go');
      assert.match(lines[0]!, /\b6\b/, 'the message says how many');
      assert.match(lines[0]!, /--force/, 'the message says how to override');
      assert.deepEqual(await published(fed, a), before, 'nothing published');
      await b.run();
      for (const p of moved) assert.ok(existsSync(b.abs(p)), `the peer still has ${p}`);

      await a.run(['--force']);
      await b.run();
      converged([a, b], 'after the forced deletion');
      for (const p of moved) assert.equal(existsSync(b.abs(p)), false, `the peer deleted ${p}`);
    });
  });
}
