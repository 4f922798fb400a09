// Remote input is untrusted (DESIGN.md rule 4). Fake peers write heads and journal segments
// straight into the bucket, the way a compromised or broken node could: path traversal,
// absolute paths, paths through a symlinked parent (the symlink is made on the receiving node
// first, pointing at a sentinel directory outside its root), records inside .fedsync/, a blob
// whose content does not match its digest, symlinks leaving the root, a truncated gzip segment,
// a segment that is not JSON, a head that is not JSON, a segment claiming another node, a
// segment announced but missing. Meanwhile an honest node publishes real changes.
//
// The receiving nodes' runs must touch nothing outside their roots (the sentinel hashes the
// same, nothing of it reaches the store), write nothing wrong inside, log an error for each kind
// of attack, and still apply the honest node's changes (and the well-formed records of the
// malformed peers' streams up to the first bad segment).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { S3Target } from '../support/s3.js';
import { assertTreesEqual, describeResult, Federation, ownStderrLines, servers, sha256, treeDigest, type FedNode, type Tree } from './harness.js';

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
const fakeId = () => Array.from(randomBytes(26), (x) => B32[x & 31]).join('');
const hlc = (offset = 0) => `${String(Date.now() + offset).padStart(13, '0')}-000000`;

interface FakeRecord {
  path: string;
  kind: 'file' | 'symlink' | 'dir' | 'deleted';
  digest?: string;
  size?: number;
  mode?: number;
  mtime?: number;
  target?: string;
}

/** A peer that exists only as objects written into the bucket. */
class FakePeer {
  readonly id = fakeId();
  private counter = 0;

  constructor(
    readonly fed: Federation,
    readonly name: string,
  ) {}

  line(r: FakeRecord): string {
    return JSON.stringify({
      path: r.path,
      kind: r.kind,
      digest: r.digest,
      size: r.size ?? 0,
      mode: r.mode ?? (r.kind === 'dir' ? 0o755 : 0o644),
      mtime: r.mtime ?? (r.kind === 'dir' || r.kind === 'deleted' ? 0 : Date.now() - 60_000),
      target: r.target,
      vv: { [this.id]: ++this.counter },
      hlc: hlc(this.counter),
      author: this.id,
    });
  }

  segmentText(seq: number, records: FakeRecord[], header: Record<string, unknown> = {}): string {
    const h = { fedsync: 'segment', v: 1, node: this.id, seq, count: records.length, ...header };
    return [JSON.stringify(h), ...records.map((r) => this.line(r))].join('\n') + '\n';
  }

  async segment(seq: number, body: Buffer): Promise<void> {
    await this.fed.putObject(`journal/${this.id}/${String(seq).padStart(12, '0')}`, body);
  }

  async head(seq: number, body?: string): Promise<void> {
    const head = { fedsync: 'head', v: 1, node: this.id, name: this.name, role: 'both', seq, hlc: hlc(1000), heartbeat: new Date().toISOString(), acks: {} };
    await this.fed.putObject(`heads/${this.id}.json`, body ?? JSON.stringify(head));
  }
}

/** A blob stored under its true digest; returns the file record fields. */
async function blob(fed: Federation, content: string): Promise<{ digest: string; size: number }> {
  const digest = sha256(content);
  await fed.putObject(`blobs/${digest.slice(0, 2)}/${digest}`, content);
  return { digest, size: Buffer.byteLength(content) };
}

const without = (t: Tree, ...paths: string[]) => new Map([...t].filter(([p]) => !paths.includes(p)));

for (const server of servers('hostile records')) {
  describe(`hostile records on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    before(async () => {
      target = await server.start();
    });
    after(async () => {
      await target?.stop();
    });

    it('a fake peer cannot reach outside the root or corrupt it; errors are logged; the honest node still syncs', { timeout: 600_000 }, async (t) => {
      const fed = await Federation.create(target, { nodes: ['honest', 'B', 'C'] });
      const [honest, b, c] = fed.nodes as [FedNode, FedNode, FedNode];
      try {
        // Sentinels beside each receiving root: what "../outside/..." and the symlink reach.
        const secret = `secret of ${randomBytes(8).toString('hex')}\n`;
        const outside = (n: FedNode) => join(n.dir, 'outside');
        // Every node has one (the honest one too: otherwise it would take "sym/..." as plain
        // paths, make a real sym/ directory and publish it).
        const all = [honest, b, c];
        for (const n of all) {
          mkdirSync(outside(n));
          writeFileSync(join(outside(n), 'secret.txt'), secret);
          writeFileSync(join(outside(n), 'victim.txt'), 'must survive\n');
          writeFileSync(join(outside(n), 'evil.txt'), 'must not be overwritten\n');
          // A symlinked directory inside the root pointing out of it (a local admin's doing).
          symlinkSync(outside(n), n.abs('sym'));
        }
        const sentinel = new Map(all.map((n) => [n, treeDigest(outside(n), { includeMarker: true })]));

        // The honest node publishes first.
        mkdirSync(honest.abs('honest'));
        writeFileSync(honest.abs('honest/one.txt'), 'one\n');
        writeFileSync(honest.abs('honest/two.txt'), 'two\n');
        await honest.run();

        // Fake peer 1: a segment of hostile records among good ones, then a good segment.
        const p1 = new FakePeer(fed, 'evil-paths');
        const good = await blob(fed, 'a good record from a bad peer\n');
        const good2 = await blob(fed, 'the stream goes on after rejected records\n');
        const claimed = sha256('what the record claims\n');
        await fed.putObject(`blobs/${claimed.slice(0, 2)}/${claimed}`, 'not what the record claims!!\n');
        const evil = await blob(fed, 'EVIL\n');
        const hostile: FakeRecord[] = [
          { path: '../outside/evil.txt', kind: 'file', ...evil },
          { path: `${outside(b)}/abs-evil.txt`, kind: 'file', ...evil },
          { path: 'ok/../../outside/evil.txt', kind: 'file', ...evil },
          { path: './dot.txt', kind: 'file', ...evil },
          { path: 'double//slash.txt', kind: 'file', ...evil },
          { path: '.fedsync/evil.txt', kind: 'file', ...evil },
          { path: '.fedsync/tmp', kind: 'deleted' },
          { path: 'back\\..\\slash.txt', kind: 'file', ...evil },
          { path: 'nul\u0000.txt', kind: 'file', ...evil },
          { path: 'sym/evil.txt', kind: 'file', ...evil },
          { path: 'sym/new-file.txt', kind: 'file', ...evil },
          { path: 'sym/secret.txt', kind: 'file', ...evil },
          { path: 'sym/victim.txt', kind: 'deleted' },
          { path: 'sym/sub/dir', kind: 'dir' },
          { path: 'mismatch.txt', kind: 'file', digest: claimed, size: Buffer.byteLength('what the record claims\n') },
          { path: 'escape-link', kind: 'symlink', target: '../outside' },
          { path: 'abs-link', kind: 'symlink', target: '/etc' },
          { path: 'setuid.sh', kind: 'file', ...good, mode: 0o4755 },
          { path: 'hostile-ok.txt', kind: 'file', ...good },
        ];
        await p1.segment(1, gzipSync(p1.segmentText(1, hostile)));
        await p1.segment(2, gzipSync(p1.segmentText(2, [{ path: 'hostile-ok-2.txt', kind: 'file', ...good2 }])));
        await p1.head(2);

        // Fake peer 2: good, truncated gzip, good: the stream stops at the bad one.
        const p2 = new FakePeer(fed, 'truncated');
        const p2one = await blob(fed, 'p2 one\n');
        await p2.segment(1, gzipSync(p2.segmentText(1, [{ path: 'p2-one.txt', kind: 'file', ...p2one }])));
        const whole = gzipSync(p2.segmentText(2, [{ path: 'p2-two.txt', kind: 'file', ...(await blob(fed, 'p2 two\n')) }]));
        await p2.segment(2, whole.subarray(0, whole.length - 12));
        await p2.segment(3, gzipSync(p2.segmentText(3, [{ path: 'p2-three.txt', kind: 'file', ...(await blob(fed, 'p2 three\n')) }])));
        await p2.head(3);

        // Fake peer 3: a segment that is gzip but not JSON lines.
        const p3 = new FakePeer(fed, 'bad-json');
        await p3.segment(1, gzipSync('this is not json\n{"fedsync": "segment", \n'));
        await p3.head(1);

        // Fake peer 4: a head that is not JSON.
        const p4 = new FakePeer(fed, 'bad-head');
        await p4.head(1, '{"fedsync": "head", "seq": ');
        await p4.segment(1, gzipSync(p4.segmentText(1, [{ path: 'p4.txt', kind: 'file', ...evil }])));

        // Fake peer 5: a segment claiming to be another node's.
        const p5 = new FakePeer(fed, 'impostor');
        await p5.segment(1, gzipSync(p5.segmentText(1, [{ path: 'p5.txt', kind: 'file', ...evil }], { node: honest.id })));
        await p5.head(1);

        // Fake peer 6: a head announcing a segment that is not there (after a good one).
        const p6 = new FakePeer(fed, 'missing');
        const p6one = await blob(fed, 'p6 one\n');
        await p6.segment(1, gzipSync(p6.segmentText(1, [{ path: 'p6-one.txt', kind: 'file', ...p6one }])));
        await p6.head(2);

        const blobsBefore = new Set((await fed.listObjects('blobs/')).map((o) => o.key));

        const runs = [];
        for (const n of [b, c, honest, b, c]) {
          const r = await n.fedsync(['run']);
          runs.push(`${n.name}: exit ${r.code}`);
          assert.ok(r.code === 0 || r.code === 1, `unexpected exit:\n${describeResult(r)}`);
          assert.equal(r.signal, null);
        }
        t.diagnostic(`runs with hostile peers present: ${runs.join(', ')}`);

        // The honest node goes on: a modification and a deletion reach both receivers.
        writeFileSync(honest.abs('honest/two.txt'), 'two, edited\n');
        unlinkSync(honest.abs('honest/one.txt'));
        writeFileSync(honest.abs('honest/three.txt'), 'three\n');
        const phase2: string[] = [];
        for (const n of [honest, b, c, honest]) {
          const r = await n.fedsync(['run']);
          phase2.push(`${n.name}: exit ${r.code}${r.code === 0 ? '' : ` (${ownStderrLines(r).join(' | ')})`}`);
        }
        t.diagnostic(`runs after the honest node's edit: ${phase2.join(', ')}`);

        for (const n of all) {
          // Outside the root: untouched, nothing created.
          assert.equal(treeDigest(outside(n), { includeMarker: true }), sentinel.get(n), `${n.name}: the sentinel directory outside the root changed`);
          assert.equal(readFileSync(join(outside(n), 'victim.txt'), 'utf8'), 'must survive\n');
          assert.equal(existsSync(join(n.dir, 'abs-evil.txt')), false);
          for (const p of ['.fedsync/evil.txt', 'mismatch.txt', 'escape-link', 'abs-link', 'p2-two.txt', 'p2-three.txt', 'p4.txt', 'p5.txt', 'dot.txt', 'double', 'ok']) {
            assert.equal(existsSync(n.abs(p)), false, `${n.name}: ${p} must not exist`);
          }
          assert.ok(existsSync(n.abs('.fedsync/tmp')), `${n.name}: .fedsync/tmp was deleted by a remote record`);
          if (n === honest) continue;
          // The honest node's changes, and the well-formed records before any bad segment.
          assert.equal(readFileSync(n.abs('honest/two.txt'), 'utf8'), 'two, edited\n', `${n.name}: the honest edit was not applied (${phase2.join(', ')})`);
          assert.equal(readFileSync(n.abs('honest/three.txt'), 'utf8'), 'three\n');
          assert.equal(existsSync(n.abs('honest/one.txt')), false, `${n.name}: the honest deletion was not applied`);
          assert.equal(readFileSync(n.abs('hostile-ok.txt'), 'utf8'), 'a good record from a bad peer\n');
          assert.equal(readFileSync(n.abs('hostile-ok-2.txt'), 'utf8'), 'the stream goes on after rejected records\n');
          assert.equal(readFileSync(n.abs('p2-one.txt'), 'utf8'), 'p2 one\n');
          assert.equal(readFileSync(n.abs('p6-one.txt'), 'utf8'), 'p6 one\n');
          const setuid = n.snapshot().get('setuid.sh');
          assert.ok(setuid, `${n.name}: setuid.sh (a valid record once its set-id bit is dropped) was not applied`);
          assert.equal(setuid.mode & 0o7000, 0, `${n.name}: a remote set-id bit was honoured`);
        }

        // Nothing from outside the roots reached the store.
        const blobs = (await fed.listObjects('blobs/')).map((o) => o.key);
        assert.ok(!blobs.some((k) => k.endsWith(sha256(secret))), 'the secret behind the symlink was uploaded as a blob');
        for (const n of all) {
          for (const seg of await fed.journal(n.id)) {
            for (const r of seg.records) assert.ok(!r.path.startsWith('sym/') && r.path !== 'sym', `${n.name} published ${JSON.stringify(r)}`);
          }
        }
        const newBlobs = blobs.filter((k) => !blobsBefore.has(k));
        t.diagnostic(`blobs added by the runs: ${newBlobs.length}`);

        // Inside the roots: the receivers agree with the honest node (the local symlink aside).
        assertTreesEqual([
          { name: 'honest', tree: without(honest.snapshot(), 'sym') },
          { name: 'B', tree: without(b.snapshot(), 'sym') },
          { name: 'C', tree: without(c.snapshot(), 'sym') },
        ]);

        // Each kind of attack left an error in the log.
        for (const n of all) {
          const errors = n.logLines().filter((l) => l.level === 'error' || l.level === 'fatal');
          const lines = errors.map((l) => JSON.stringify(l));
          const has = (...res: RegExp[]) => lines.some((l) => res.every((re) => re.test(l)));
          const expected: [string, boolean][] = [
            ['path traversal', has(/\.\.\/outside\/evil\.txt/, /\.\.\\?" segment/)],
            ['absolute path', has(/abs-evil\.txt/, /absolute/)],
            ['path inside .fedsync/', has(/\.fedsync\/evil\.txt/, /inside \.fedsync/)],
            ['backslash', has(/backslash/)],
            ['NUL', has(/NUL/)],
            ['symlinked parent', has(/sym\/(evil|new-file|secret)\.txt/, /symlink/)],
            ['digest mismatch', has(/digest|mismatch/i, /what the record claims|mismatch\.txt|blob/)],
            ['symlink leaving the root', has(/escape-link/, /symlink target/)],
            ['absolute symlink', has(/abs-link/, /symlink target/)],
            ['truncated gzip segment', has(new RegExp(`${p2.id}`), /gzip|unexpected end|truncated/i)],
            ['segment not JSON', has(/not valid JSON/, new RegExp(`${p3.id}|bad-json`))],
            ['head not JSON', has(new RegExp(`head of ${p4.id} is not valid JSON`))],
            ['segment of another node', has(/claims to be/)],
            ['missing segment', has(new RegExp(`${p6.id}|missing`), /missing/)],
          ];
          const missing = expected.filter(([, ok]) => !ok).map(([what]) => what);
          assert.deepEqual(missing, [], `${n.name}: no error logged for: ${missing.join(', ')}\nerrors logged:\n${lines.join('\n')}`);
          t.diagnostic(`${n.name}: ${errors.length} error lines logged`);
        }
      } finally {
        await fed.close();
      }
    });
  });
}
