// Odd names (DESIGN rules 4 and 8): a name one node can write but the others refuse must not
// poison the set, and every path the CLI prints is escaped.
//
// 1. Node A holds, beside normal files, `back\slash.txt` (refused by rule 4), names with a tab,
//    a newline and an escape sequence (valid: synced, but printed escaped), and a file whose
//    path is over the system's limit (ENAMETOOLONG when read). `run --dry-run` prints escaped
//    names only; A's runs warn once per skipped path (not once per cycle), exit 0, and
//    `status` / `status --json` name the skipped paths. A alone housekeeps (it leads), so its
//    snapshot is what a joining node starts from; B joins from it and gets every publishable
//    path and nothing else. The bad name is deleted, the leader housekeeps again without
//    skipping garbage collection, a new node C bootstraps from the newest snapshot, and
//    `history` / `restore` work for a normal path.
// 2. A hostile bucket: a snapshot with well-formed but invalid entries (a backslash, a name
//    over 255 bytes, a `..` path) is forged as the newest. Its other entries are used: C
//    bootstraps from it, history and restore work, housekeeping's garbage collection is not
//    skipped, and each bad entry is reported once per node. A newer snapshot that is
//    truncated is still refused whole (C falls back to the one before it).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { S3Target } from '../support/s3.js';
import { assertOk, describeResult, Federation, servers, sha256, type FedNode, type Tree } from './harness.js';

const BACKSLASH = 'back\\slash.txt';
const TAB = 'tab\tname.txt';
const NEWLINE = 'new\nline.txt';
const ESCAPE = 'esc\x1b[31mred.txt';
const NORMAL: Record<string, string> = { 'index.html': '<h1>home</h1>\n', 'docs/readme.txt': 'read me\n', 'docs/guide.txt': 'guide v1\n' };

/** Raw control bytes other than the line ends: what an escaped output never holds. */
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f\x80-\x9f]/;

/** A directory chain under `deep/` whose absolute path stays below PATH_MAX, and a file in it that goes over. */
function makeTooLong(root: string): { dirs: string[]; file: string } {
  const seg = 'd'.repeat(200);
  const dirs: string[] = [];
  let rel = 'deep';
  dirs.push(rel);
  while (Buffer.byteLength(join(root, rel, seg)) < 3900) {
    rel = `${rel}/${seg}`;
    dirs.push(rel);
  }
  mkdirSync(join(root, rel), { recursive: true });
  const name = 'f'.repeat(250);
  // Made relative to its directory: the absolute path is too long for any system call.
  execFileSync('sh', ['-c', 'cd "$1" && printf "too long\\n" > "$2"', 'sh', join(root, rel), name]);
  return { dirs, file: `${rel}/${name}` };
}

function files(t: Tree): Map<string, string> {
  return new Map([...t].filter(([, e]) => e.kind === 'file').map(([p, e]) => [p, e.sha256!]));
}

function logsWith(n: FedNode, msg: string): Record<string, unknown>[] {
  return n.logLines().filter((l) => l.msg === msg);
}

function assertNoGcSkip(n: FedNode, what: string): void {
  const skipped = logsWith(n, 'garbage collection skipped this round');
  assert.deepEqual(skipped, [], `${what}: garbage collection was skipped on ${n.name}`);
}

function assertNoSnapshotRejected(n: FedNode, what: string): void {
  const bad = n.logLines().filter((l) => l.msg === 'rejected a snapshot; trying an older one' || l.msg === 'the newest snapshot does not read; writing a new one' || l.msg === 'a snapshot does not read; it covers nothing');
  assert.deepEqual(bad, [], `${what}: ${n.name} refused a snapshot`);
}

async function historyAndRestore(n: FedNode, rel: string, content: string): Promise<void> {
  const h = await n.fedsync(['history', '--set', 'www', rel]);
  assert.equal(h.code, 0, `history ${rel} on ${n.name}:\n${describeResult(h)}`);
  assert.ok(h.stdout.includes(rel), `history lists ${rel}:\n${h.stdout}`);
  const dest = mkdtempSync(join(tmpdir(), 'fedsync-odd-restore-'));
  try {
    const r = await n.fedsync(['restore', '--set', 'www', '--to', join(dest, 'out'), rel]);
    assert.equal(r.code, 0, `restore ${rel} on ${n.name}:\n${describeResult(r)}`);
    assert.equal(readFileSync(join(dest, 'out'), 'utf8'), content);
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
}

for (const server of servers('odd names')) {
  describe(`odd names on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    before(async () => {
      target = await server.start();
    });
    after(async () => {
      await target?.stop();
    });

    it('a name others would refuse is skipped and listed, never poisons snapshots; printed names are escaped', { timeout: 600_000 }, async (t) => {
      const fed = await Federation.create(target, { nodes: ['A', 'B', 'C'], init: false });
      const [a, b, c] = fed.nodes as [FedNode, FedNode, FedNode];
      try {
        await a.init();
        for (const [p, body] of Object.entries(NORMAL)) {
          mkdirSync(join(a.root, p, '..'), { recursive: true });
          writeFileSync(a.abs(p), body);
        }
        for (const p of [BACKSLASH, TAB, NEWLINE, ESCAPE]) writeFileSync(a.abs(p), `odd ${JSON.stringify(p)}\n`);
        const long = makeTooLong(a.root);
        const skipped = [BACKSLASH, long.file];

        // The dry run prints every name escaped: one line per change, no raw control byte.
        const dry = assertOk(await a.fedsync(['run', '--dry-run']), 'A dry run');
        t.diagnostic(`A dry run:\n${dry.stdout.trimEnd()}`);
        assert.doesNotMatch(dry.stdout, RAW_CONTROL, 'dry-run output holds a raw control character');
        for (const line of dry.stdout.split('\n').filter(Boolean)) assert.match(line, /^(publish|apply|skip|dry run|adopt|download|keep)/, `a name broke a dry-run line: ${JSON.stringify(line)}`);
        for (const shown of ['tab\\tname.txt', 'new\\nline.txt', 'esc\\x1b[31mred.txt']) assert.ok(dry.stdout.includes(shown), `dry run shows ${shown}:\n${dry.stdout}`);
        assert.ok(!dry.stdout.split('\n').some((l) => l.startsWith('publish') && l.includes('slash.txt')), `the dry run would publish the backslash name:\n${dry.stdout}`);

        // Runs: exit 0, one warning per skipped path however many cycles.
        await a.run();
        await a.run();
        await a.run();
        const warned = logsWith(a, 'not publishing a path other nodes would refuse');
        t.diagnostic(`A warned: ${JSON.stringify(warned.map((l) => [l.path, l.reason]))}`);
        for (const p of skipped) assert.equal(warned.filter((l) => l.path === p).length, 1, `one warning for ${JSON.stringify(p.slice(0, 60))}, got ${warned.filter((l) => l.path === p).length}`);
        assert.equal(warned.length, skipped.length, 'no other path is warned about');
        const journal = (await fed.journal(a.id)).flatMap((s) => s.records.map((r) => r.path));
        assert.ok(!journal.includes(BACKSLASH), 'the backslash name is not published');
        for (const p of [TAB, NEWLINE, ESCAPE, ...Object.keys(NORMAL)]) assert.ok(journal.includes(p), `${JSON.stringify(p)} is published`);

        // status names them, exit 0 (the set is healthy otherwise).
        const st = await a.fedsync(['status']);
        t.diagnostic(`A status:\n${st.stdout.trimEnd()}`);
        assert.equal(st.code, 0, describeResult(st));
        assert.doesNotMatch(st.stdout, RAW_CONTROL, 'status output holds a raw control character');
        assert.ok(st.stdout.includes('back\\\\slash.txt'), `status lists the backslash name (escaped):\n${st.stdout}`);
        assert.match(st.stdout, /skipped/i);
        const json = JSON.parse(assertOk(await a.fedsync(['status', '--json'])).stdout) as { sets: { skipped?: { count: number; paths: { path: string; reason: string }[] } }[] };
        const sk = json.sets[0]!.skipped;
        assert.ok(sk, 'status --json has skipped');
        assert.equal(sk.count, 2);
        assert.deepEqual(sk.paths.map((p) => p.path).sort(), [...skipped].sort());

        const doctor = await a.fedsync(['doctor']);
        assert.match(doctor.stdout, /names: 2 paths on this disk are not published/, describeResult(doctor));

        // A leads alone: its snapshot is the one B and C start from.
        assertOk(await a.fedsync(['housekeep']), 'A housekeep');
        assert.ok((await fed.listObjects('snapshots/')).length > 0, 'A wrote a snapshot');
        assertNoSnapshotRejected(a, 'first housekeeping');

        await b.init();
        await b.run();
        assertNoSnapshotRejected(b, 'B joining');
        assert.ok(logsWith(b, 'catching up from a snapshot').length > 0, 'B started from the snapshot');
        const expected = new Map([...Object.entries(NORMAL), ...[TAB, NEWLINE, ESCAPE].map((p) => [p, `odd ${JSON.stringify(p)}\n`] as const)].map(([p, body]) => [p, sha256(body)]));
        assert.deepEqual(files(b.snapshot()), expected, 'B holds every publishable file and nothing else');
        assert.deepEqual(logsWith(b, 'rejected a remote record'), [], 'B rejected no record');

        // The bad name goes; both housekeep; garbage collection runs; C joins from the snapshot.
        unlinkSync(a.abs(BACKSLASH));
        writeFileSync(a.abs('docs/guide.txt'), 'guide v2\n');
        await a.run();
        await b.run();
        const st2 = JSON.parse(assertOk(await a.fedsync(['status', '--json'])).stdout) as { sets: { skipped?: { count: number } }[] };
        assert.equal(st2.sets[0]!.skipped?.count, 1, 'a deleted bad name leaves the list');
        for (const n of [a, b]) assertOk(await n.fedsync(['housekeep']), `${n.name} housekeep`);
        for (const n of [a, b]) {
          assertNoGcSkip(n, 'after housekeeping');
          assertNoSnapshotRejected(n, 'after housekeeping');
        }
        await c.init();
        await c.run();
        assertNoSnapshotRejected(c, 'C joining');
        assert.ok(logsWith(c, 'catching up from a snapshot').length > 0, 'C started from the snapshot');
        expected.set('docs/guide.txt', sha256('guide v2\n'));
        assert.deepEqual(files(c.snapshot()), expected, 'C holds every publishable file');
        await historyAndRestore(c, 'docs/guide.txt', 'guide v2\n');
        await historyAndRestore(a, 'index.html', NORMAL['index.html']!);

        // history prints escaped names.
        const h = assertOk(await c.fedsync(['history', '--set', 'www', '']), 'history of the whole set');
        assert.doesNotMatch(h.stdout, RAW_CONTROL, 'history output holds a raw control character');
        assert.ok(h.stdout.includes('tab\\tname.txt'), h.stdout);
      } finally {
        // rm walks the tree relative to each directory; fs.rmSync would hit ENAMETOOLONG.
        execFileSync('rm', ['-rf', 'deep'], { cwd: a.root });
        await fed.close();
      }
    });

    it('a forged snapshot entry is skipped and reported once; the rest of the snapshot serves bootstrap, history, restore and GC', { timeout: 600_000 }, async (t) => {
      const fed = await Federation.create(target, { nodes: ['A', 'C'], init: false });
      const [a, c] = fed.nodes as [FedNode, FedNode];
      try {
        await a.init();
        for (const [p, body] of Object.entries(NORMAL)) {
          mkdirSync(join(a.root, p, '..'), { recursive: true });
          writeFileSync(a.abs(p), body);
        }
        await a.run();
        assertOk(await a.fedsync(['housekeep']), 'A housekeep');
        const names = (await fed.listObjects('snapshots/')).map((o) => o.key).sort();
        assert.equal(names.length, 1, `one snapshot: ${names.join(', ')}`);
        const lines = gunzipSync((await fed.getObject(names[0]!))!).toString('utf8').split('\n').filter(Boolean);
        const header = JSON.parse(lines[0]!) as { hlc: string; node: string; entries: number };
        const good = JSON.parse(lines.find((l) => l.includes('"index.html"'))!) as Record<string, unknown>;
        const bad = [`evil\\name.txt`, `docs/${'x'.repeat(300)}`, '../outside.txt'].map((path) => JSON.stringify({ ...good, path }));
        const forge = (wall: number, extra: string[], count: number) => {
          const hlc = `${String(wall).padStart(13, '0')}-000000`;
          const h = { ...header, hlc, entries: count };
          const body = [JSON.stringify(h), ...extra, ...lines.slice(1)].join('\n') + '\n';
          return { name: `${hlc}-${header.node}`, body: gzipSync(Buffer.from(body)) };
        };
        const wall = Number(header.hlc.slice(0, 13));
        const forged = forge(wall + 1000, bad, header.entries + bad.length);
        await fed.putObject(`snapshots/${forged.name}`, forged.body);

        // The leader reads it (housekeeping twice): no GC skip, each bad entry reported once.
        for (let i = 0; i < 2; i++) assertOk(await a.fedsync(['housekeep']), 'A housekeep');
        assertNoGcSkip(a, 'with a forged entry');
        assertNoSnapshotRejected(a, 'with a forged entry');
        const reported = logsWith(a, 'rejected an invalid snapshot entry; the rest of the snapshot is used');
        t.diagnostic(`A reported: ${JSON.stringify(reported.map((l) => l.reason))}`);
        assert.equal(reported.length, bad.length, 'each bad entry is reported once');
        await historyAndRestore(a, 'index.html', NORMAL['index.html']!);

        // A newer snapshot that is truncated is refused whole; C starts from the forged one.
        const truncated = forge(wall + 2000, bad, header.entries + bad.length + 1);
        await fed.putObject(`snapshots/${truncated.name}`, truncated.body);
        await c.init();
        await c.run();
        const caught = logsWith(c, 'catching up from a snapshot');
        assert.equal(caught[0]?.snapshot, forged.name, `C started from the forged snapshot: ${JSON.stringify(caught)}`);
        assert.ok(
          c.logLines().some((l) => l.msg === 'rejected a snapshot; trying an older one' && l.snapshot === truncated.name),
          'the truncated snapshot is refused whole',
        );
        assert.equal(logsWith(c, 'rejected an invalid snapshot entry; the rest of the snapshot is used').length, bad.length, 'C reports each bad entry once');
        assert.deepEqual(files(c.snapshot()), new Map(Object.entries(NORMAL).map(([p, body]) => [p, sha256(body)])), 'C holds the federation');
        await historyAndRestore(c, 'docs/guide.txt', NORMAL['docs/guide.txt']!);
      } finally {
        await fed.close();
      }
    });
  });
}
