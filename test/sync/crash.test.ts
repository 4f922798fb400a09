import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { FileStore } from '../../src/store/file/file.js';
import type { PutOptions, PutResult } from '../../src/store/store.js';
import { assertConverged, cleanup, cluster, cycle, cycleWithStore, headSeq, journal, type Cluster, type TestNode } from './harness.js';

after(cleanup);

type Fault = 'before' | 'after';

/**
 * A real file store that fails one chosen write: `before` it reaches the store (a crash or a
 * network error), or `after` it landed (the reply was lost). Fault injection on the store,
 * not a stand-in for the protocol.
 */
class FaultyStore extends FileStore {
  fired = false;
  constructor(
    root: string,
    private readonly match: (key: string) => boolean,
    private readonly when: Fault,
  ) {
    super(root);
  }

  private trip(key: string, when: Fault): void {
    if (this.fired || this.when !== when || !this.match(key)) return;
    this.fired = true;
    throw new Error(`injected fault ${when} writing ${key}`);
  }

  override async put(key: string, body: Buffer, opts?: PutOptions): Promise<PutResult> {
    this.trip(key, 'before');
    const r = await super.put(key, body, opts);
    this.trip(key, 'after');
    return r;
  }

  override async putStream(key: string, open: () => Readable, size: number): Promise<void> {
    this.trip(key, 'before');
    await super.putStream(key, open, size);
    this.trip(key, 'after');
  }
}

/** Every (path, vector) published by a node, with how often, among the segments its head announces. */
function published(c: Cluster, node: TestNode): Map<string, number> {
  const upTo = headSeq(c, node.id);
  const segs = journal(c, node.id).filter((s) => s.seq <= upTo);
  assert.deepEqual(segs.map((s) => s.seq), Array.from({ length: upTo }, (_, i) => i + 1), 'segments 1..head, none missing');
  const out = new Map<string, number>();
  for (const r of segs.flatMap((s) => s.records)) {
    const k = `${r.path} ${JSON.stringify(r.vv)}`;
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

const where: Record<string, (key: string) => boolean> = {
  blob: (k) => k.startsWith('blobs/'),
  segment: (k) => k.startsWith('journal/'),
  head: (k) => k.startsWith('heads/'),
};

describe('crash safety: a publish interrupted anywhere is repaired by the next run', () => {
  const cases: [keyof typeof where, Fault][] = [
    ['blob', 'before'],
    ['blob', 'after'],
    ['segment', 'before'],
    ['segment', 'after'],
    ['head', 'before'],
    ['head', 'after'],
  ];
  for (const [at, when] of cases) {
    it(`fault ${when} the ${at} write`, async () => {
      const c = await cluster(['alpha', 'beta']);
      const [a, b] = c.nodes as [TestNode, TestNode];
      writeFileSync(join(a.root, 'base.txt'), 'base');
      await cycle(a);
      await cycle(b);
      const seqBefore = headSeq(c, a.id);

      for (let i = 0; i < 3; i++) writeFileSync(join(a.root, `f${i}.txt`), `first ${i}`);
      writeFileSync(join(a.root, 'base.txt'), 'base v2');
      let faulty: FaultyStore | undefined;
      const r = await cycleWithStore(a, (root) => (faulty = new FaultyStore(root, where[at]!, when)));
      assert.ok(faulty!.fired, 'the fault was hit');
      assert.equal(r.ok, false);
      assert.match(r.error!.message, /injected fault/);
      if (!(at === 'head' && when === 'after')) assert.equal(headSeq(c, a.id), seqBefore, 'the head did not move');

      // Readers see nothing half-done.
      await cycle(b);
      if (headSeq(c, a.id) === seqBefore) assert.equal(Object.keys(assertConvergedOr(c, b)).includes('f0.txt'), false);

      // More changes before the repairing run: they must neither be lost nor duplicated.
      writeFileSync(join(a.root, 'f1.txt'), 'second 1');
      writeFileSync(join(a.root, 'late.txt'), 'late');
      await cycle(a);
      await cycle(b);
      assertConverged(c);
      const counts = published(c, a);
      for (const [k, n] of counts) assert.equal(n, 1, `${k} published ${n} times`);
      const paths = new Set([...counts.keys()].map((k) => k.split(' ')[0]));
      for (const p of ['base.txt', 'f0.txt', 'f1.txt', 'f2.txt', 'late.txt']) assert.ok(paths.has(p), `${p} published`);
      // And a quiet run afterwards publishes nothing more.
      assert.equal((await cycle(a)).record!.stats.published, 0);
      assert.equal(headSeq(c, a.id), Math.max(...journal(c, a.id).map((s) => s.seq)), 'no segment beyond the head');
    });
  }

  it('an apply interrupted by store trouble is retried from the same place', async () => {
    const c = await cluster(['alpha', 'beta']);
    const [a, b] = c.nodes as [TestNode, TestNode];
    for (let i = 0; i < 5; i++) writeFileSync(join(a.root, `f${i}.txt`), `content ${i}`);
    await cycle(a);
    class FailingGets extends FileStore {
      override async getStream(key: string): Promise<Readable | null> {
        if (key.startsWith('blobs/')) throw new Error('injected: store unavailable');
        return super.getStream(key);
      }
    }
    const r = await cycleWithStore(b, (root) => new FailingGets(root));
    assert.equal(r.ok, false);
    assert.match(r.error!.message, /store unavailable/);
    await cycle(b);
    assertConverged(c);
    assert.equal(journal(c, b.id).length, 0, 'beta published nothing of what it applied');
  });
});

/** The tree of `node` (helper: readers must not see a half-published change). */
function assertConvergedOr(c: Cluster, node: TestNode): Record<string, unknown> {
  return assertConverged(c, [node]);
}
