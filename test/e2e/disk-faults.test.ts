// Disk faults on the receiving node, with real processes on s3rver (and RGW when configured):
//
// (a) A full disk. B's root is a 2 MiB tmpfs; A publishes files bigger than its free space.
//     B's run must fail with one clear line (non-zero exit), leave no partial file at any path,
//     keep its manifest sound (SQLite integrity_check), and converge once the tmpfs is grown.
// (b) A directory B may not write into. `chattr +i` makes it immutable, which stops even root
//     (the tests run as root, which ignores permission bits, so chmod 0555 would test nothing;
//     running B as `nobody` through setpriv would need every path it reads, node_modules
//     included, readable by nobody). B's run must report the error, still apply the files
//     elsewhere, and converge once the attribute is removed.
//
// Both need root (mount, chattr). Without it the tests fail and say why, unless
// FEDSYNC_ALLOW_SKIP_MOUNT=1 turns that into a skip.
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { faultSuite, needs, sh } from './privileged.js';
import { assertTreesEqual, describeResult, Federation, ownStderrLines, Rng, servers, sha256, type CommandResult, type FedNode } from './harness.js';

const MiB = 1024 * 1024;

/** A failed cycle: non-zero exit and one line saying what went wrong. */
function assertReportedFailure(r: CommandResult, mentions: RegExp): void {
  assert.notEqual(r.code, 0, `the run succeeded despite the fault:\n${describeResult(r)}`);
  assert.notEqual(r.code, null, `the run was killed:\n${describeResult(r)}`);
  const lines = ownStderrLines(r);
  assert.equal(lines.length, 1, `expected one line on stderr:\n${describeResult(r)}`);
  assert.match(lines[0]!, mentions, `the error does not say what failed:\n${describeResult(r)}`);
}

/** Every file under the node's root holds one of `contents` (no partial file), by path. */
function assertOnlyWhole(n: FedNode, contents: Map<string, string>): void {
  for (const [p, e] of n.snapshot()) {
    if (e.kind !== 'file') continue;
    assert.equal(e.sha256, contents.get(p), `${n.name}: ${JSON.stringify(p)} is not what A wrote there (${e.size} B): a partial or stray file`);
  }
}

function assertManifestSound(n: FedNode, set: string): void {
  const db = new Database(join(n.stateDir, set, 'manifest.db'), { readonly: true, fileMustExist: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `${n.name}'s manifest is corrupt`);
  } finally {
    db.close();
  }
}

/** Writes `body` at `rel` on A and remembers its digest. */
function put(a: FedNode, contents: Map<string, string>, rel: string, body: Buffer | string): void {
  mkdirSync(join(a.abs(rel), '..'), { recursive: true });
  writeFileSync(a.abs(rel), body);
  contents.set(rel, sha256(body));
}

const bothTrees = (a: FedNode, b: FedNode) => [
  { name: 'A', tree: a.snapshot() },
  { name: 'B', tree: b.snapshot() },
];

for (const server of servers('disk faults')) {
  describe(`disk faults on ${server.name}`, () => {
    const suite = faultSuite(server);
    const { mounted, immutable } = suite;

    it('a full disk during download: a clear error, no partial file, sound manifest, then convergence', { timeout: 180_000 }, async (t) => {
      const fed = await Federation.create(suite.target(), { nodes: ['A', 'B'], init: false });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      try {
        if (!needs(t, 'mount -t tmpfs', sh('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', b.root]))) return;
        mounted.push(b.root);
        await a.init();
        await b.init();
        const rng = new Rng(7);
        const contents = new Map<string, string>();
        put(a, contents, 'small.txt', 'a small file\n');
        put(a, contents, 'media/one.bin', rng.bytes(1.5 * MiB));
        put(a, contents, 'media/two.bin', rng.bytes(1.5 * MiB));
        await a.run();

        const failed = await b.fedsync(['run']);
        assertReportedFailure(failed, /ENOSPC|no space/i);
        assertOnlyWhole(b, contents);
        assertManifestSound(b, fed.setName);
        t.diagnostic(`B with a full disk: ${ownStderrLines(failed)[0]}; B holds ${[...b.snapshot().keys()].join(', ') || 'nothing'}`);

        assert.ok(sh('mount', ['-o', 'remount,size=16m', b.root]).ok, 'cannot grow the tmpfs');
        await b.run();
        await a.run();
        assertTreesEqual(bothTrees(a, b), 'after the disk was grown');
        assertOnlyWhole(b, contents);
        assert.deepEqual(readdirSync(b.abs('.fedsync/tmp')), [], "B's temp directory still holds partial downloads");
      } finally {
        if (mounted.includes(b.root) && sh('umount', [b.root]).ok) mounted.splice(mounted.indexOf(b.root), 1);
        await fed.close();
      }
    });

    it('a directory B cannot write into: the error is reported, other files apply, then convergence', { timeout: 180_000 }, async (t) => {
      const fed = await Federation.create(suite.target(), { nodes: ['A', 'B'] });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      const locked = b.abs('locked');
      try {
        const contents = new Map<string, string>();
        put(a, contents, 'locked/page.html', 'version 1\n');
        put(a, contents, 'open/page.html', 'version 1\n');
        await a.run();
        await b.run();
        if (!needs(t, 'chattr +i', sh('chattr', ['+i', locked]))) return;
        immutable.push(locked);
        put(a, contents, 'locked/page.html', 'version 2\n');
        put(a, contents, 'locked/new.html', 'new\n');
        put(a, contents, 'open/page.html', 'version 2\n');
        put(a, contents, 'open/new.html', 'new\n');
        await a.run();

        const failed = await b.fedsync(['run']);
        assertReportedFailure(failed, /EPERM|EACCES|not permitted|permission/i);
        const tree = b.snapshot();
        assert.equal(tree.get('open/page.html')?.sha256, contents.get('open/page.html'), 'the file outside the locked directory was not applied');
        assert.equal(tree.get('open/new.html')?.sha256, contents.get('open/new.html'), 'the new file outside the locked directory was not applied');
        assert.equal(tree.get('locked/page.html')?.sha256, sha256('version 1\n'), 'the locked file changed');
        assert.equal(tree.has('locked/new.html'), false);

        assert.ok(sh('chattr', ['-i', locked]).ok);
        immutable.pop();
        await b.run();
        await a.run();
        assertTreesEqual(bothTrees(a, b), 'after the directory was unlocked');
        assertOnlyWhole(b, contents);
        assert.deepEqual(
          (await fed.journal(b.id)).flatMap((s) => s.records.map((r) => r.path)),
          [],
          'B published changes of its own, though it changed nothing',
        );
      } finally {
        sh('chattr', ['-i', locked]);
        await fed.close();
      }
    });
  });
}
