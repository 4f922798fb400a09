// Clock skew between nodes, with real clocks moved by libfaketime (test/support/faketime.ts).
//
// - A node whose clock is 40 minutes off syncs at all: S3 rejects SigV4 requests more than
//   15 minutes from its own time (RequestTimeTooSkewed), and the SDK must correct its clock
//   offset from the server's Date header and retry.
// - Regression (found by the soak, seed 1001): a file whose time is ahead of the node's clock
//   was taken for one still being written (scan.ts: "changed within settle") and left
//   unpublished until the clock passed it: with a node 50 minutes behind, a file it had
//   applied from a node on time and then renamed waited 50 minutes. The settle rule now reads
//   the change time, which the kernel sets from its own clock, and a change time still ahead
//   of the clock (here: libfaketime moves the process's clock, not the kernel's, as with a
//   file server whose clock differs) cannot be judged and does not wait.
import assert from 'node:assert/strict';
import { renameSync, utimesSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { faketimeEnv, faketimeLib } from '../support/faketime.js';
import type { S3Target } from '../support/s3.js';
import { assertTreesEqual, Federation, servers, type FedNode } from './harness.js';

const MIN = 60_000;
const noFaketime = faketimeLib() ? false : 'libfaketime is not installed (apt-get install -y faketime)';

const trees = (fed: Federation) => fed.nodes.map((n) => ({ name: n.name, tree: n.snapshot() }));

for (const server of servers('clock skew')) {
  describe(`clock skew on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    before(async () => {
      target = await server.start();
    });
    after(async () => {
      await target?.stop();
    });

    it('a node 40 minutes ahead and one 40 minutes behind sync through the store', { timeout: 120_000, skip: noFaketime }, async () => {
      const fed = await Federation.create(target, { nodes: ['A', 'B'], nodeEnv: { A: faketimeEnv(40 * MIN), B: faketimeEnv(-40 * MIN) } });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      try {
        writeFileSync(a.abs('from-a.txt'), 'A\n');
        utimesSync(a.abs('from-a.txt'), (Date.now() + 40 * MIN) / 1000, (Date.now() + 40 * MIN) / 1000);
        await a.run();
        await b.run();
        writeFileSync(b.abs('from-b.txt'), 'B\n');
        utimesSync(b.abs('from-b.txt'), (Date.now() - 40 * MIN) / 1000, (Date.now() - 40 * MIN) / 1000);
        await b.run();
        await a.run();
        assertTreesEqual(trees(fed));
        assert.deepEqual([...a.snapshot().keys()].sort(), ['from-a.txt', 'from-b.txt']);
      } finally {
        await fed.close();
      }
    });

    it('regression: a file with an mtime ahead of the clock is published at once (scan.ts settle)', { timeout: 120_000 }, async () => {
      const fed = await Federation.create(target, { nodes: ['A', 'B'] });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      try {
        writeFileSync(a.abs('copied.txt'), 'kept its time\n');
        const future = (Date.now() + 50 * MIN) / 1000;
        utimesSync(a.abs('copied.txt'), future, future);
        await a.run();
        await b.run();
        assert.deepEqual([...b.snapshot().keys()], ['copied.txt'], 'the file with a future mtime did not reach B');
      } finally {
        await fed.close();
      }
    });

    it('regression: a node 50 minutes behind publishes the rename of a file it applied (soak seed 1001)', { timeout: 120_000, skip: noFaketime }, async () => {
      const fed = await Federation.create(target, { nodes: ['A', 'B'], nodeEnv: { B: faketimeEnv(-50 * MIN) } });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      try {
        writeFileSync(a.abs('b.bin'), 'written on A\n');
        await a.run();
        await b.run();
        renameSync(b.abs('b.bin'), b.abs('notes.txt'));
        await b.run();
        await a.run();
        assert.deepEqual([...a.snapshot().keys()], ['notes.txt'], "B's rename did not reach A");
        assertTreesEqual(trees(fed));
      } finally {
        await fed.close();
      }
    });
  });
}
