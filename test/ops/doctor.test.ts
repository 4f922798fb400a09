// `fedsync doctor`: all checks pass on a good setup, and each failure it claims to detect is
// detected, with a fix, and makes the exit code 1.
import assert from 'node:assert/strict';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { inotifyWatches } from '../../src/ops/doctor/inotify.js';
import { createBucket, freshBucketName } from '../support/s3.js';
import { startS3rver } from '../support/s3rver.js';
import { expectCheck, expectCode, fedsyncAsync, makeNode, tempDir, doctorLines as lines, type TestNode } from './support.js';

/** A node with one heavyweight set, initialised and synced once, cron installed. */
function goodNode(t: { after(fn: () => void): void }): { node: TestNode; env: Record<string, string> } {
  const dir = tempDir(t);
  const node = makeNode(dir, { node: 'web1', sets: [{ name: 'uploads' }] });
  const env = { FEDSYNC_CRON_DIR: join(dir, 'cron.d') };
  expectCode(node.run(['init']), 0, 'init');
  writeFileSync(join(node.root('uploads'), 'a.txt'), 'a');
  expectCode(node.run(['run']), 0, 'run');
  expectCode(node.run(['cron', '--install'], env), 0, 'cron --install');
  return { node, env };
}

describe('fedsync doctor', () => {
  it('passes on a good file:// setup, one line per check', (t) => {
    const { node, env } = goodNode(t);
    const r = expectCode(node.run(['doctor'], env), 0, 'doctor');
    assert.doesNotMatch(r.stdout, /^FAIL/m);
    for (const key of ['node: config', 'node: state dir', 'node: log file', 'node: schedule', 'uploads: root', 'uploads: marker', 'uploads: owner', 'uploads: manifest', 'uploads: store', 'uploads: federation']) {
      expectCheck(r, key, 'ok');
    }
    expectCheck(r, 'node: clock', 'skip', /file:\/\/ store/);
    expectCheck(r, 'uploads: store', 'ok', /wrote, read and deleted doctor\//);
    assert.ok(['ok', 'WARN'].includes(lines(r).get('uploads: disk')!.verdict));
  });

  it('fails on a root without its .fedsync/ marker', (t) => {
    const { node, env } = goodNode(t);
    rmSync(join(node.root('uploads'), '.fedsync'), { recursive: true });
    const r = expectCode(node.run(['doctor'], env), 1, 'doctor');
    expectCheck(r, 'uploads: marker', 'FAIL', /\.fedsync\/ is missing.*-- fix: .*fedsync init --set uploads/);
  });

  it('fails on a missing root', (t) => {
    const { node, env } = goodNode(t);
    rmSync(node.root('uploads'), { recursive: true });
    const r = expectCode(node.run(['doctor'], env), 1, 'doctor');
    expectCheck(r, 'uploads: root', 'FAIL', /does not exist -- fix: create it/);
  });

  it('fails on a corrupt manifest', (t) => {
    const { node, env } = goodNode(t);
    const db = join(node.stateDir, 'uploads', 'manifest.db');
    const fd = openSync(db, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 4096); // page 2 of the b-trees
    closeSync(fd);
    const r = expectCode(node.run(['doctor'], env), 1, 'doctor');
    expectCheck(r, 'uploads: manifest', 'FAIL', /(is damaged|cannot be read as a database).* -- fix: stop fedsync for this set, move .* aside/);

    writeFileSync(db, 'not a database at all, not even close to one'.repeat(100));
    const r2 = expectCode(node.run(['doctor'], env), 1, 'doctor');
    expectCheck(r2, 'uploads: manifest', 'FAIL', /is damaged \(SQLITE_NOTADB\).* -- fix: stop fedsync for this set, move .* aside/);
  });

  it('fails on a state dir others can read, or a set directory not 0700', (t) => {
    const { node, env } = goodNode(t);
    chmodSync(node.stateDir, 0o755);
    let r = expectCode(node.run(['doctor'], env), 1, 'doctor');
    expectCheck(r, 'node: state dir', 'FAIL', /is mode 0755 -- fix: chmod 0700/);
    chmodSync(node.stateDir, 0o711); // traverse only: node_exporter may read fedsync.prom by name
    chmodSync(join(node.stateDir, 'uploads'), 0o750);
    r = expectCode(node.run(['doctor'], env), 1, 'doctor');
    expectCheck(r, 'node: state dir', 'FAIL', /uploads is mode 0750/);
    chmodSync(join(node.stateDir, 'uploads'), 0o700);
    r = expectCode(node.run(['doctor'], env), 0, 'doctor');
    expectCheck(r, 'node: state dir', 'ok', /is 0711/);
  });

  it('fails when the store has no format.json (never initialised)', (t) => {
    const { node, env } = goodNode(t);
    rmSync(join(node.dir, '..', 'store', 'uploads', 'format.json'));
    const r = expectCode(node.run(['doctor'], env), 1, 'doctor');
    expectCheck(r, 'uploads: federation', 'FAIL', /has no format\.json -- fix: run `fedsync init` on the first node/);
  });

  it('fails on an unwritable log file, an unknown owner and an invalid config', (t) => {
    const { node, env } = goodNode(t);
    writeFileSync(join(node.dir, 'afile'), '');
    const config = node.config;
    const orig = readFileSync(config, 'utf8');
    writeFileSync(config, orig.replace(/^log_file = .*$/m, `log_file = "${join(node.dir, 'afile', 'fedsync.log')}"`).replace('settle = "0s"', 'settle = "0s"\nowner = "no-such-user-xyz"'));
    const r = expectCode(node.run(['doctor'], env), 1, 'doctor');
    expectCheck(r, 'node: log file', 'FAIL', /cannot append to .*afile\/fedsync\.log/);
    expectCheck(r, 'uploads: owner', 'FAIL', /no such user "no-such-user-xyz"/);

    writeFileSync(config, orig + '\nbogus_key = 1\n');
    const bad = expectCode(node.run(['doctor'], env), 1, 'doctor on a bad config');
    expectCheck(bad, 'node: config', 'FAIL', /bogus_key/);
  });

  it('warns when nothing schedules the cycles', (t) => {
    const { node } = goodNode(t);
    const r = expectCode(node.run(['doctor'], { FEDSYNC_CRON_DIR: join(node.dir, 'empty-cron.d') }), 0, 'doctor');
    expectCheck(r, 'node: schedule', 'WARN', /nothing runs `fedsync run`.* -- fix: `fedsync cron --install`/);
  });

  it('fails when the directories outnumber the inotify watches (lightweight sets)', (t) => {
    const dir = tempDir(t);
    const limit = join(dir, 'max_user_watches');
    const set = parseConfig(`[store]\nurl = "file:///srv/s"\n[[sync]]\nname = "c"\npath = "${dir}"\nmode = "lightweight"\n`, '/x.toml').sets[0]!;
    for (const d of ['a', 'b', 'c', 'd']) mkdirSync(join(dir, d));
    writeFileSync(limit, '4\n');
    const r = inotifyWatches(set, limit);
    assert.equal(r.verdict, 'fail');
    assert.match(r.detail, /5 directories to watch, limit 4/);
    assert.match(r.fix!, /sysctl fs\.inotify\.max_user_watches=/);
    writeFileSync(limit, '100000\n');
    assert.equal(inotifyWatches(set, limit).verdict, 'ok');
  });
});

describe('fedsync doctor against S3', () => {
  let server: Awaited<ReturnType<typeof startS3rver>>;
  let bucket: string;
  before(async () => {
    server = await startS3rver();
    bucket = freshBucketName('fedsync-doctor');
    await createBucket(server, bucket);
  });
  after(() => server?.stop());

  const creds = () => ({ AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_REGION: server.region });
  const s3node = (t: { after(fn: () => void): void }, endpoint: string) =>
    makeNode(tempDir(t), {
      node: 'web1',
      sets: [{ name: 'uploads' }],
      store: `s3://${bucket}/doctor-${Math.random().toString(36).slice(2, 8)}`,
      storeExtra: `endpoint = "${endpoint}"\nregion = "us-east-1"\nforce_path_style = true\n`,
    });

  it('passes with good credentials, and measures the clock against the server', async (t) => {
    const node = s3node(t, server.endpoint);
    expectCode(await fedsyncAsync(['-c', node.config, 'init'], creds()), 0, 'init');
    const r = expectCode(await fedsyncAsync(['-c', node.config, 'doctor'], { ...creds(), FEDSYNC_CRON_DIR: join(node.dir, 'cron.d') }), 0, 'doctor');
    expectCheck(r, 'uploads: store', 'ok', /s3:\/\/.*wrote, read and deleted/);
    expectCheck(r, 'uploads: federation', 'ok');
    expectCheck(r, 'node: clock', 'ok', /127\.0\.0\.1/);
  });

  it('fails with bad credentials, naming the cause', async (t) => {
    const node = s3node(t, server.endpoint);
    expectCode(await fedsyncAsync(['-c', node.config, 'init'], creds()), 0, 'init');
    const bad = { ...creds(), AWS_ACCESS_KEY_ID: 'WRONGKEY', AWS_SECRET_ACCESS_KEY: 'wrong' };
    const r = expectCode(await fedsyncAsync(['-c', node.config, 'doctor'], bad), 1, 'doctor');
    expectCheck(r, 'uploads: store', 'FAIL', /InvalidAccessKeyId.* -- fix: check the credentials/);
  });

  it('fails on an unreachable endpoint, in seconds', async (t) => {
    const node = s3node(t, 'http://127.0.0.1:1');
    const started = Date.now();
    const r = expectCode(await fedsyncAsync(['-c', node.config, 'doctor'], creds()), 1, 'doctor');
    assert.ok(Date.now() - started < 30_000, 'gives up quickly');
    expectCheck(r, 'uploads: store', 'FAIL', /ECONNREFUSED.* -- fix: check \[store\] endpoint/);
    expectCheck(r, 'node: clock', 'WARN', /could not ask http:\/\/127\.0\.0\.1:1 for its time: ECONNREFUSED/);
  });

  it('fails when the clock is off against the endpoint', async (t) => {
    // Any HTTP server will do for the clock: this one runs ten minutes behind.
    const skewed = createServer((_req, res) => {
      res.setHeader('Date', new Date(Date.now() - 600_000).toUTCString());
      res.statusCode = 403;
      res.end();
    });
    await new Promise<void>((res) => skewed.listen(0, '127.0.0.1', res));
    t.after(() => skewed.close());
    const port = (skewed.address() as { port: number }).port;
    const node = s3node(t, `http://127.0.0.1:${port}`);
    const r = expectCode(await fedsyncAsync(['-c', node.config, 'doctor'], creds()), 1, 'doctor');
    // A Date header has whole seconds, and the request takes a moment: 600 give or take one.
    expectCheck(r, 'node: clock', 'FAIL', /clock is (599|600|601) s ahead of 127\.0\.0\.1:\d+ -- fix: .*chrony/);
  });
});
