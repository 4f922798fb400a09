// One writer per node id, checked (DESIGN rule 6; docs/protocol.md, "Node identity"): a node
// whose state went back in time (a VM snapshot reverted) or whose disk was cloned takes a new
// id, reads the old id as a peer, and republishes what it had not published; no journal
// segment is ever given other bytes. Real `fedsync` processes per node, on s3rver (which
// ignores conditional writes) and RGW (which honours them).
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startProxy, type Proxy } from '../support/proxy.js';
import type { S3Target } from '../support/s3.js';
import { assertTreesEqual, Federation, sha256, servers, type FedNode } from './harness.js';

/** `cp -a` of a node's root and state dir into `to` (a directory made for it). */
function copyDisk(n: FedNode, to: { root: string; stateDir: string }): void {
  for (const [from, dest] of [
    [n.root, to.root],
    [n.stateDir, to.stateDir],
  ] as const) {
    rmSync(dest, { recursive: true, force: true });
    execFileSync('cp', ['-a', from, dest]);
  }
}

/** A and B synced on one file, then A's root and state dir copied aside (a VM snapshot to go back to). */
async function syncedThenSnapshot(fed: Federation, a: FedNode, b: FedNode): Promise<{ root: string; stateDir: string }> {
  writeFileSync(a.abs('base.txt'), 'base\n');
  await a.run();
  await b.run();
  await a.run();
  const saved = { root: join(fed.dir, 'A-snapshot', 'root'), stateDir: join(fed.dir, 'A-snapshot', 'state') };
  mkdirSync(join(fed.dir, 'A-snapshot'));
  copyDisk(a, saved);
  return saved;
}

/** Every journal segment's body digest, by key. */
async function segmentBodies(fed: Federation): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const o of await fed.listObjects('journal/')) {
    const body = await fed.getObject(o.key);
    if (body) out.set(o.key, sha256(body));
  }
  return out;
}

/** Asserts that no segment seen before was given other bytes (or vanished), and remembers the new ones. */
async function assertWriteOnce(fed: Federation, seen: Map<string, string>, when: string): Promise<void> {
  const now = await segmentBodies(fed);
  const changed: string[] = [];
  for (const [key, digest] of seen) if (now.get(key) !== digest) changed.push(`${key}: ${digest.slice(0, 12)} -> ${now.get(key)?.slice(0, 12) ?? '(gone)'}`);
  assert.deepEqual(changed, [], `journal segments were overwritten ${when}:\n  ${changed.join('\n  ')}`);
  for (const [k, v] of now) seen.set(k, v);
}

/** The node id its last cycle ran under, as its status.json says. */
function nodeIdOf(n: FedNode): string {
  const st = JSON.parse(readFileSync(join(n.stateDir, n.fed.setName, 'status.json'), 'utf8')) as { nodeId?: string };
  assert.ok(st.nodeId, `no node id in ${n.name}'s status`);
  return st.nodeId;
}

/** Log lines at warn or above that say the node took a new id. */
function newIdWarnings(n: FedNode): Record<string, unknown>[] {
  return n.logLines().filter((l) => ['warn', 'error', 'fatal'].includes(String(l.level)) && /new id/.test(String(l.msg)));
}

const read = (n: FedNode, rel: string) => (existsSync(n.abs(rel)) ? readFileSync(n.abs(rel), 'utf8') : '(absent)');

for (const server of servers('node identity')) {
  describe(`node identity on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    let proxy: Proxy;
    before(async () => {
      target = await server.start();
      proxy = await startProxy({ upstream: target.endpoint });
    });
    after(async () => {
      await proxy?.stop();
      await target?.stop();
    });

    it('a VM snapshot reverted: the node takes a new id, its later files reach B and the ones it published before come back', { timeout: 600_000 }, async () => {
      const fed = await Federation.create(target, { nodes: ['A', 'B'] });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      try {
        const saved = await syncedThenSnapshot(fed, a, b);

        writeFileSync(a.abs('one.txt'), 'one, published before the revert\n');
        await a.run();
        writeFileSync(a.abs('two.txt'), 'two, published before the revert\n');
        await a.run();
        await b.run();
        assert.equal(read(b, 'two.txt'), 'two, published before the revert\n');
        const seen = await segmentBodies(fed);

        // The revert: root and state dir back to the copy.
        copyDisk({ root: saved.root, stateDir: saved.stateDir } as FedNode, a);
        assert.equal(existsSync(a.abs('one.txt')), false);
        writeFileSync(a.abs('three.txt'), 'three, written after the revert\n');
        await a.run();
        await assertWriteOnce(fed, seen, 'by the reverted node');
        await b.run();
        await a.run();
        await b.run();
        await assertWriteOnce(fed, seen, 'after the revert');

        assert.equal(read(b, 'three.txt'), 'three, written after the revert\n', 'B got the file written after the revert');
        assert.equal(read(a, 'one.txt'), 'one, published before the revert\n', 'A got back what it published before the revert');
        assert.equal(read(a, 'two.txt'), 'two, published before the revert\n');
        assertTreesEqual([
          { name: 'A', tree: a.snapshot() },
          { name: 'B', tree: b.snapshot() },
        ]);
        const now = nodeIdOf(a);
        assert.notEqual(now, a.id, 'A took a new id');
        assert.ok(newIdWarnings(a).length > 0, `A's log says it took a new id:\n${readFileSync(a.logFile, 'utf8')}`);
      } finally {
        await fed.close();
      }
    });

    it('a version published before a revert and beaten by a concurrent one is kept as a conflict copy by the reverted node', { timeout: 600_000 }, async () => {
      const fed = await Federation.create(target, { nodes: ['A', 'B'] });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      try {
        const saved = await syncedThenSnapshot(fed, a, b);
        const mine = "A's, published before the revert\n";
        writeFileSync(a.abs('x.txt'), mine);
        await a.run();
        copyDisk({ root: saved.root, stateDir: saved.stateDir } as FedNode, a);
        // B writes the same path before it has A's version: B's is newer and wins (rule 3), so
        // A's version must be kept as a conflict copy, and only the reverted A can make it.
        const theirs = "B's, written without A's\n";
        writeFileSync(b.abs('x.txt'), theirs);
        await b.run();
        for (const n of [a, b, a, b]) await n.run();
        assertTreesEqual([
          { name: 'A', tree: a.snapshot() },
          { name: 'B', tree: b.snapshot() },
        ]);
        assert.equal(read(b, 'x.txt'), theirs);
        const copies = readdirSync(b.root).filter((f) => f.startsWith('x.sync-conflict-'));
        assert.deepEqual(copies.map((f) => read(b, f)), [mine], `A's version as one conflict copy on B: ${copies.join(', ')}`);
        assert.ok(
          a.logLines().some((l) => /before its state went back in time is kept as a conflict copy/.test(String(l.msg))),
          `A's log says it kept its former version:\n${readFileSync(a.logFile, 'utf8')}`,
        );
      } finally {
        await fed.close();
      }
    });

    it('a clone of a disk started under another node name on the same machine: both go on, all three converge, nothing lost', { timeout: 600_000 }, async () => {
      const fed = await Federation.create(target, { nodes: ['A', 'B', 'C'], init: false });
      const [a, b, c] = fed.nodes as [FedNode, FedNode, FedNode];
      try {
        await a.init();
        await b.init();
        writeFileSync(a.abs('base.txt'), 'base\n');
        await a.run();
        await b.run();
        await a.run();
        copyDisk(a, c);
        c.id = a.id;
        const seen = await segmentBodies(fed);
        const written: [string, string][] = [];
        for (let round = 0; round < 3; round++) {
          for (const n of round % 2 === 0 ? [a, c] : [c, a]) {
            const rel = `${n.name}-${round}.txt`;
            writeFileSync(n.abs(rel), `${n.name} round ${round}\n`);
            written.push([rel, `${n.name} round ${round}\n`]);
            await n.run();
            await assertWriteOnce(fed, seen, `by ${n.name} in round ${round}`);
          }
          await b.run();
        }
        for (let i = 0; i < 2; i++) for (const n of [a, b, c]) await n.run();
        await assertWriteOnce(fed, seen, 'at the end');
        for (const n of [a, b, c]) for (const [rel, body] of written) assert.equal(read(n, rel), body, `${n.name} has ${rel}`);
        assertTreesEqual([
          { name: 'A', tree: a.snapshot() },
          { name: 'B', tree: b.snapshot() },
          { name: 'C', tree: c.snapshot() },
        ]);
        const ids = [nodeIdOf(a), nodeIdOf(c)];
        assert.notEqual(ids[0], ids[1], 'A and its clone run under different ids');
        assert.ok(newIdWarnings(a).length + newIdWarnings(c).length > 0, 'one of them says it took a new id');
      } finally {
        await fed.close();
      }
    });

    it('a clone moved to another machine keeps and republishes the unpublished changes of the old id', { timeout: 600_000 }, async () => {
      const fed = await Federation.create(target, { nodes: ['A', 'B', 'C'], init: false, endpoint: proxy.endpoint });
      const [a, b, c] = fed.nodes as [FedNode, FedNode, FedNode];
      try {
        await a.init();
        await b.init();
        writeFileSync(a.abs('base.txt'), 'base\n');
        await a.run();
        await b.run();
        await a.run();
        // A records a change but cannot publish it (the store refuses its writes).
        writeFileSync(a.abs('pending.txt'), 'only in the outbox\n');
        proxy.setFault((req) => (req.kind === 'put' || req.kind === 'post' ? { action: 'error', status: 503, code: 'ServiceUnavailable' } : undefined));
        const failed = await a.fedsync(['run']);
        proxy.setFault(undefined);
        assert.notEqual(failed.code, 0, 'the publish failed');
        // A's disk image goes to another machine (its hostname kept in the manifest differs); A is gone.
        copyDisk(a, c);
        const db = new Database(join(c.stateDir, fed.setName, 'manifest.db'));
        db.prepare("UPDATE meta SET value = 'another-machine' WHERE key = 'hostname'").run();
        db.close();
        await c.run();
        await b.run();
        await c.run();
        assert.equal(read(b, 'pending.txt'), 'only in the outbox\n', 'B got the change the old id never published');
        assertTreesEqual([
          { name: 'B', tree: b.snapshot() },
          { name: 'C', tree: c.snapshot() },
        ]);
        assert.notEqual(nodeIdOf(c), a.id, 'the clone took a new id');
      } finally {
        await fed.close();
      }
    });
  });
}
