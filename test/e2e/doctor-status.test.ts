// `fedsync doctor` and `fedsync status` tell the truth, with real processes on one real S3
// server (RGW where configured):
//
// (a) doctor checks the passphrase against format.json's key check: a wrong or missing one
//     fails doctor (exit 1, one line saying what to do), as it fails every run.
// (b) doctor names the bucket that does not exist, and the endpoint that does not answer.
// (c) a state dir that refuses writes (`chattr +i` on the set's directory, or a read-only
//     bind mount over it; the tests run as root, which ignores permission bits): `run` fails with one line naming it, `status`
//     (table and --json) does not say healthy though the old status.json does, and doctor
//     does not advise deleting the manifest. The same for a status.json that cannot be
//     replaced (immutable) in a directory that takes writes: the failed atomic write leaves
//     no temp file.
// (d) a full state dir (a tmpfs filled up): `run` fails naming the path, leaves no temp file,
//     `status` is not healthy; once space is freed, all is well again.
// (e) status shows what the node itself published, and the files it leaves to settle.
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { expectCheck } from '../ops/support.js';
import { describeResult, Federation, oneServer, ownStderrLines, type CommandResult, type FedNode } from './harness.js';
import { faultSuite, needs, sh } from './privileged.js';

/** doctor's environment: a cron.d of the test's own, so no file of the machine is read. */
const doctorEnv = (n: FedNode) => ({ env: { FEDSYNC_CRON_DIR: join(n.dir, 'cron.d') } });

/** A failed run: non-zero exit and one line on stderr matching `mentions`. */
function assertOneLineFailure(r: CommandResult, mentions: RegExp): string {
  assert.ok(r.code !== 0 && r.code !== null, `the run did not fail as it should:\n${describeResult(r)}`);
  const lines = ownStderrLines(r);
  assert.equal(lines.length, 1, `expected one line on stderr:\n${describeResult(r)}`);
  assert.match(lines[0]!, mentions, `the error does not say what failed:\n${describeResult(r)}`);
  return lines[0]!;
}

interface StatusJson {
  exitCode: number;
  sets: { health: string; exitCode: number; lastError: { message: string } | null; stateDir: { path: string; writable: boolean; error: string | null } }[];
}

async function statusJson(n: FedNode): Promise<StatusJson> {
  const r = await n.fedsync(['status', '--json']);
  const out = JSON.parse(r.stdout) as StatusJson;
  assert.equal(r.code, out.exitCode, `status --json exit code:\n${describeResult(r)}`);
  return out;
}

/** Asserts the set is reported failed for `dir`, in the table and in --json. */
async function assertNotHealthy(n: FedNode, dir: string, errno: RegExp, refused = `cannot write in ${dir}`): Promise<void> {
  const table = await n.fedsync(['status']);
  assert.equal(table.code, 1, `status must exit 1 (failed):\n${describeResult(table)}`);
  assert.doesNotMatch(table.stdout, /\bhealthy\b/, `status says healthy:\n${table.stdout}`);
  assert.match(table.stdout, /FAILED/);
  assert.ok(table.stdout.includes(`state dir   ${refused}`), `status does not say "${refused}":\n${table.stdout}`);
  const json = await statusJson(n);
  const set = json.sets[0]!;
  assert.equal(set.health, 'failed');
  assert.equal(set.exitCode, 1);
  assert.equal(set.stateDir.path, dir);
  assert.equal(set.stateDir.writable, false);
  assert.match(set.stateDir.error ?? '', errno);
  assert.ok(set.lastError?.message.includes(dir), `lastError does not name ${dir}: ${JSON.stringify(set.lastError)}`);
}

async function assertHealthy(n: FedNode): Promise<void> {
  const json = await statusJson(n);
  assert.equal(json.sets[0]!.health, 'healthy', JSON.stringify(json.sets[0]));
  assert.equal(json.sets[0]!.stateDir.writable, true);
}

/** Temp files of atomic writes (`.status.json.<pid>.tmp` and the like) left in `dir`. */
const tempFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

/** Adds keys to the [store] table of the node's config. */
function storeKeys(n: FedNode, lines: string): void {
  writeFileSync(n.config, readFileSync(n.config, 'utf8').replace('[store]\n', `[store]\n${lines}\n`));
}

for (const server of oneServer('doctor and status')) {
  describe(`doctor and status tell the truth on ${server.name}`, () => {
    const suite = faultSuite(server);
    const { mounted, immutable } = suite;

    it('doctor fails on a wrong or missing passphrase for an encrypted store, as every run does', async () => {
      const fed = await Federation.create(suite.target(), { nodes: ['A'], init: false });
      const [a] = fed.nodes as [FedNode];
      try {
        const file = join(a.dir, 'passphrase');
        writeFileSync(file, 'the right passphrase\n', { mode: 0o600 });
        storeKeys(a, `passphrase_file = "${file}"`);
        await a.init();
        writeFileSync(a.abs('page.html'), 'hello\n');
        await a.run();
        chmodSync(a.stateDir, 0o700);
        const good = await a.fedsync(['doctor'], doctorEnv(a));
        assert.equal(good.code, 0, describeResult(good));
        expectCheck(good, 'www: passphrase', 'ok', /opens format\.json's key check/);

        writeFileSync(file, 'a wrong passphrase\n');
        assertOneLineFailure(await a.fedsync(['run']), /wrong passphrase/);
        const wrong = await a.fedsync(['doctor'], doctorEnv(a));
        assert.equal(wrong.code, 1, describeResult(wrong));
        expectCheck(wrong, 'www: passphrase', 'FAIL', new RegExp(`^wrong passphrase for s3://${fed.bucket}/.*format\\.json.* -- fix: put the passphrase the other nodes .* use in passphrase_file`));
        expectCheck(wrong, 'www: federation', 'ok');

        writeFileSync(a.config, readFileSync(a.config, 'utf8').replace(/^passphrase_file = .*\n/m, ''));
        const missing = await a.fedsync(['doctor'], doctorEnv(a));
        assert.equal(missing.code, 1, describeResult(missing));
        expectCheck(missing, 'www: passphrase', 'FAIL', /is encrypted: set passphrase_file/);
      } finally {
        await fed.close();
      }
    });

    it('doctor names the missing bucket and the unreachable endpoint', async (t) => {
      const fed = await Federation.create(suite.target(), { nodes: ['A'] });
      const [a] = fed.nodes as [FedNode];
      try {
        const config = readFileSync(a.config, 'utf8');
        const nobucket = `${fed.bucket}-missing`;
        writeFileSync(a.config, config.replace(`s3://${fed.bucket}/`, `s3://${nobucket}/`));
        const r = await a.fedsync(['doctor'], doctorEnv(a));
        assert.equal(r.code, 1, describeResult(r));
        t.diagnostic(expectCheck(r, 'www: store', 'FAIL', new RegExp(`s3://${nobucket}/.*NoSuchBucket.* -- fix: create the bucket`)));

        writeFileSync(a.config, config.replace(/^endpoint = .*$/m, 'endpoint = "http://127.0.0.1:1"'));
        const r2 = await a.fedsync(['doctor'], doctorEnv(a));
        assert.equal(r2.code, 1, describeResult(r2));
        t.diagnostic(expectCheck(r2, 'www: store', 'FAIL', /endpoint http:\/\/127\.0\.0\.1:1\b.*ECONNREFUSED.* -- fix: check \[store\] endpoint/));
      } finally {
        await fed.close();
      }
    });

    /** How a state dir is made to refuse writes, the errno that shows, and the fix doctor gives. */
    const refusals = [
      // SQLite cannot create a file in an immutable directory and says only CANTOPEN.
      { how: 'immutable (chattr +i)', errno: 'EPERM', fix: 'lsattr -d', run: 'SQLITE_CANTOPEN: .* check that DIR is writable', lock: (d: string) => sh('chattr', ['+i', d]), unlock: (d: string) => sh('chattr', ['-i', d]), undo: immutable },
      {
        how: 'a read-only bind mount',
        errno: 'EROFS',
        fix: 'remount it read-write',
        run: 'EROFS: read-only file system; the file system of DIR is mounted read-only: remount it read-write',
        lock: (d: string) => (sh('mount', ['--bind', d, d]).ok ? sh('mount', ['-o', 'remount,bind,ro', d]) : { ok: false, err: `mount --bind ${d} failed` }),
        unlock: (d: string) => sh('umount', [d]),
        undo: mounted,
      },
    ];
    for (const r of refusals) {
      it(`a state dir that refuses writes, ${r.how}: run fails naming it, status is not healthy, doctor keeps the manifest`, async (t) => {
        const fed = await Federation.create(suite.target(), { nodes: ['A'] });
        const [a] = fed.nodes as [FedNode];
        const dir = join(a.stateDir, fed.setName);
        try {
          writeFileSync(a.abs('page.html'), 'version 1\n');
          await a.run();
          await assertHealthy(a);
          if (!needs(t, r.how, r.lock(dir))) return;
          r.undo.push(dir);
          writeFileSync(a.abs('page.html'), 'version 2\n');
          t.diagnostic(`A with a state dir ${r.how}: ${assertOneLineFailure(await a.fedsync(['run']), new RegExp(`cannot open ${dir}/\\S+: ${r.run.replace('DIR', dir)}`))}`);
          await assertNotHealthy(a, dir, new RegExp(r.errno));
          const doctor = await a.fedsync(['doctor'], doctorEnv(a));
          assert.equal(doctor.code, 1, describeResult(doctor));
          const line = expectCheck(doctor, 'www: manifest', 'FAIL', new RegExp(`refuses writes \\(${r.errno}\\) -- fix: .*${r.fix}.*keep it`));
          assert.doesNotMatch(line, /move .* aside/, 'doctor advises deleting a sound manifest');

          assert.ok(r.unlock(dir).ok);
          r.undo.pop();
          await a.run();
          await assertHealthy(a);
          assert.deepEqual(tempFiles(dir), []);
        } finally {
          if (r.undo.includes(dir) && r.unlock(dir).ok) r.undo.splice(r.undo.indexOf(dir), 1);
          await fed.close();
        }
      });
    }

    it('a status.json that cannot be replaced: run fails naming it, leaves no temp file, status is not healthy', async (t) => {
      const fed = await Federation.create(suite.target(), { nodes: ['A'] });
      const [a] = fed.nodes as [FedNode];
      const dir = join(a.stateDir, fed.setName);
      const file = join(dir, 'status.json');
      try {
        writeFileSync(a.abs('page.html'), 'version 1\n');
        await a.run();
        if (!needs(t, 'chattr +i', sh('chattr', ['+i', file]))) return;
        immutable.push(file);
        writeFileSync(a.abs('page.html'), 'version 2\n');
        assertOneLineFailure(await a.fedsync(['run']), new RegExp(`^fedsync: www: cannot write ${file}: EPERM`));
        assert.deepEqual(tempFiles(dir), [], 'the failed write left its temp file');
        await assertNotHealthy(a, dir, /EPERM/, `cannot write ${file}: EPERM`);

        assert.ok(sh('chattr', ['-i', file]).ok);
        immutable.pop();
        await a.run();
        await assertHealthy(a);
      } finally {
        sh('chattr', ['-i', file]);
        await fed.close();
      }
    });

    it('a full state dir: run fails naming the path and leaves no temp file, status is not healthy, then recovers', async (t) => {
      const fed = await Federation.create(suite.target(), { nodes: ['A'], init: false });
      const [a] = fed.nodes as [FedNode];
      const dir = join(a.stateDir, fed.setName);
      const filler = join(a.stateDir, 'filler');
      try {
        if (!needs(t, 'mount -t tmpfs', sh('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', a.stateDir]))) return;
        mounted.push(a.stateDir);
        await a.init();
        writeFileSync(a.abs('page.html'), 'version 1\n');
        await a.run();
        await assertHealthy(a);
        fill(filler);
        writeFileSync(a.abs('page.html'), 'version 2\n');
        t.diagnostic(`A with a full state dir: ${assertOneLineFailure(await a.fedsync(['run']), new RegExp(`${dir}\\S*: .*(ENOSPC|full)`, 'i'))}`);
        assert.deepEqual(tempFiles(dir), [], 'a failed write left its temp file');
        await assertNotHealthy(a, dir, /ENOSPC/);
        const doctor = await a.fedsync(['doctor'], doctorEnv(a));
        assert.equal(doctor.code, 1, describeResult(doctor));
        assert.doesNotMatch(doctor.stdout, /move .* aside/, `doctor advises deleting a sound manifest:\n${doctor.stdout}`);

        rmSync(filler);
        await a.run();
        await assertHealthy(a);
        assert.deepEqual(tempFiles(dir), []);
      } finally {
        if (mounted.includes(a.stateDir) && sh('umount', [a.stateDir]).ok) mounted.splice(mounted.indexOf(a.stateDir), 1);
        await fed.close();
      }
    });

    it("status shows the node's own published seq and the files still settling", async () => {
      const fed = await Federation.create(suite.target(), { nodes: ['A'], settle: '1h' });
      const [a] = fed.nodes as [FedNode];
      try {
        writeFileSync(a.abs('draft.html'), 'still being written\n');
        await a.run();
        const table = await a.fedsync(['status']);
        assert.match(table.stdout, /this node {3}published seq 0, 0 records pending, 1 file settling \(draft\.html: still being written/, table.stdout);
        const json = JSON.parse((await a.fedsync(['status', '--json'])).stdout) as { sets: { status: { publishedSeq: number; settling: { count: number; paths: string[] } } }[] };
        assert.deepEqual(json.sets[0]!.status.settling, { count: 1, paths: ['draft.html'] });

        writeFileSync(a.config, readFileSync(a.config, 'utf8').replace('settle = "1h"', 'settle = "0s"'));
        await a.run();
        const after = await a.fedsync(['status']);
        assert.match(after.stdout, /this node {3}published seq 1, 0 records pending, 0 files settling\n/, after.stdout);
      } finally {
        await fed.close();
      }
    });
  });
}

/** Writes `file` until its file system has no byte left. */
function fill(file: string): void {
  const chunk = Buffer.alloc(64 * 1024, 1);
  let size = 0;
  for (;;) {
    try {
      writeFileSync(file, chunk, { flag: 'a' });
      size += chunk.length;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      break;
    }
  }
  // Then byte by byte: the last chunk may not have fit whole.
  for (let i = 0; i < 65536; i++) {
    try {
      writeFileSync(file, Buffer.alloc(1), { flag: 'a' });
    } catch {
      break;
    }
  }
  assert.ok(size > 0);
}
