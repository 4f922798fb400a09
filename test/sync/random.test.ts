import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { targetProblem } from '../../src/sync/record.js';
import { cleanup, cluster, cycle, settle, tree, type Cluster } from './harness.js';

after(cleanup);

const PATHS = ['a.txt', 'b.txt', 'd', 'd/a.txt', 'd/e/f.txt'];
type Op =
  | { node: number; kind: 'write'; path: number; content: number }
  | { node: number; kind: 'delete'; path: number }
  | { node: number; kind: 'mkdir'; path: number }
  | { node: number; kind: 'rename'; path: number; to: number }
  | { node: number; kind: 'symlink'; path: number; to: number }
  | { node: number; kind: 'chmod'; path: number }
  | { node: number; kind: 'cycle' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ node: fc.nat(2), kind: fc.constant('write' as const), path: fc.nat(PATHS.length - 1), content: fc.nat(3) }),
  fc.record({ node: fc.nat(2), kind: fc.constant('delete' as const), path: fc.nat(PATHS.length - 1) }),
  fc.record({ node: fc.nat(2), kind: fc.constant('mkdir' as const), path: fc.nat(PATHS.length - 1) }),
  fc.record({ node: fc.nat(2), kind: fc.constant('rename' as const), path: fc.nat(PATHS.length - 1), to: fc.nat(PATHS.length - 1) }),
  fc.record({ node: fc.nat(2), kind: fc.constant('symlink' as const), path: fc.nat(PATHS.length - 1), to: fc.nat(PATHS.length - 1) }),
  fc.record({ node: fc.nat(2), kind: fc.constant('chmod' as const), path: fc.nat(PATHS.length - 1) }),
  fc.record({ node: fc.nat(2), kind: fc.constant('cycle' as const) }),
  fc.record({ node: fc.nat(2), kind: fc.constant('cycle' as const) }),
);

/** Whether `rel` can be made a file or directory here: every parent a directory or absent. */
function parentsFree(root: string, rel: string): boolean {
  const segs = rel.split('/');
  for (let i = 1; i < segs.length; i++) {
    const p = join(root, ...segs.slice(0, i));
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) return false;
  }
  return true;
}

async function run(c: Cluster, ops: Op[]): Promise<void> {
  for (const o of ops) {
    const n = c.nodes[o.node]!;
    if (o.kind === 'cycle') {
      await cycle(n);
      continue;
    }
    const rel = PATHS[o.path]!;
    const abs = join(n.root, rel);
    if (!parentsFree(n.root, rel)) continue;
    const there = lstatSync(abs, { throwIfNoEntry: false });
    if (o.kind === 'delete') rmSync(abs, { recursive: true, force: true });
    else if (o.kind === 'chmod') {
      if (there && !there.isSymbolicLink()) chmodSync(abs, (there.mode & 0o777) === 0o700 ? 0o755 : 0o700);
    } else if (o.kind === 'rename') {
      const to = PATHS[o.to]!;
      if (there && !`${to}/`.startsWith(`${rel}/`) && parentsFree(n.root, to) && !lstatSync(join(n.root, to), { throwIfNoEntry: false })) {
        mkdirSync(join(n.root, to, '..'), { recursive: true });
        renameSync(abs, join(n.root, to));
      }
    } else if (o.kind === 'symlink') {
      if (!there) {
        mkdirSync(join(abs, '..'), { recursive: true });
        symlinkSync(relative(join(abs, '..'), join(n.root, PATHS[o.to]!)) || '.', abs);
      }
    } else if (o.kind === 'mkdir') {
      if (!there) mkdirSync(abs, { recursive: true });
    } else if (!there || there.isFile()) {
      mkdirSync(join(abs, '..'), { recursive: true });
      writeFileSync(abs, `content ${o.content} from ${n.name}`);
    }
  }
  await settle(c, 4);
  // A rename can leave a symlink pointing out of the root: such a link stays local by design.
  const shared = (root: string) => Object.fromEntries(Object.entries(tree(root)).filter(([p, v]) => v.kind !== 'symlink' || !targetProblem(p, v.target, false)));
  for (const n of c.nodes.slice(1)) assert.deepEqual(shared(n.root), shared(c.nodes[0]!.root), `${n.name} differs from ${c.nodes[0]!.name}`);
  for (const n of c.nodes) assert.deepEqual(readdirSync(join(n.root, '.fedsync', 'tmp')), []);
  // Settled: a further round changes nothing.
  const before = tree(c.nodes[0]!.root);
  for (const n of c.nodes) assert.equal((await cycle(n)).record!.stats.published, 0, n.name);
  assert.deepEqual(tree(c.nodes[0]!.root), before);
}

describe('random edits on three nodes', () => {
  it('converge to one tree, with every node agreeing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: Number(process.env.FEDSYNC_RANDOM_OPS ?? 12) }), async (ops) => {
        // max_delete 100%: a random delete may empty a node's tree; the rail has its own tests.
        const c = await cluster(['alpha', 'beta', 'gamma'], { extra: 'max_delete = "100%"' });
        try {
          await run(c, ops);
        } catch (e) {
          if (process.env.DBG) {
            console.log('FAIL', JSON.stringify(ops), (e as Error).message.slice(0, 3000));
            for (const n of c.nodes) console.log(n.name, JSON.stringify(tree(n.root)));
          }
          throw e;
        }
        cleanup();
      }),
      // FEDSYNC_RANDOM_RUNS raises the count for a longer hunt.
      { numRuns: Number(process.env.FEDSYNC_RANDOM_RUNS ?? 10) },
    );
  });
});
