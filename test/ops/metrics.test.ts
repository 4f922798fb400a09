// The metrics file: valid Prometheus text (checked by a strict parser, and by Prometheus's own
// `promtool check metrics` where installed: .ci/run installs it), rewritten after each cycle,
// with counters that keep counting across processes (one `fedsync run` per cron minute).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { renderMetrics } from '../../src/ops/metrics.js';
import { parsePrometheus, value, type MetricFamily } from './promtext.js';
import { createBucket, freshBucketName } from '../support/s3.js';
import { startS3rver } from '../support/s3rver.js';
import { expectCode, fedsyncAsync, makeNode, tempDir, type TestNode } from './support.js';

function metrics(node: TestNode): Map<string, MetricFamily> {
  const file = join(node.stateDir, 'fedsync.prom');
  assert.equal(statSync(file).mode & 0o777, 0o644, 'readable by node_exporter');
  assert.deepEqual(readdirSync(node.stateDir).filter((n) => n.endsWith('.tmp')), [], 'no temp file left behind');
  const text = readFileSync(file, 'utf8');
  if (PROMTOOL) promtool(text);
  return parsePrometheus(text);
}

const PROMTOOL = spawnSync('/bin/sh', ['-c', 'command -v promtool']).status === 0;

/** Prometheus's own parser and linter: exit 0 and nothing to say. */
function promtool(text: string): void {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool check metrics: ${r.stdout}${r.stderr}`);
}

describe('metrics', () => {
  it('counters move across real cycles of separate processes', (t) => {
    const dir = tempDir(t);
    const a = makeNode(dir, { node: 'web1', sets: [{ name: 'uploads' }, { name: 'config', mode: 'lightweight' }] });
    const b = makeNode(dir, { node: 'web2', sets: [{ name: 'uploads' }] });
    expectCode(a.run(['init']), 0, 'init a');
    expectCode(b.run(['init']), 0, 'init b');
    writeFileSync(join(a.root('uploads'), 'one.jpg'), Buffer.alloc(1000, 1));
    writeFileSync(join(a.root('uploads'), 'two.jpg'), Buffer.alloc(2000, 2));
    writeFileSync(join(a.root('uploads'), 'three.jpg'), Buffer.alloc(3000, 3));

    expectCode(a.run(['run']), 0, 'a: first cycle');
    let m = metrics(a);
    const up = { set: 'uploads' };
    assert.equal(value(m, 'fedsync_cycles_total', up), 1);
    assert.equal(value(m, 'fedsync_cycle_failures_total', up), 0);
    assert.equal(value(m, 'fedsync_files_published_total', up), 3);
    assert.equal(value(m, 'fedsync_bytes_up_total', up), 6000);
    assert.ok(value(m, 'fedsync_store_requests_total', { ...up, kind: 'put' }) >= 5, 'three blobs, a segment, a head');
    assert.ok(value(m, 'fedsync_last_success_timestamp_seconds', up) > Date.now() / 1000 - 60);
    assert.ok(value(m, 'fedsync_last_cycle_duration_seconds', up) > 0);
    assert.equal(value(m, 'fedsync_last_cycle_success', up), 1);
    // The lightweight set, which has not run, is there with zero counters and no success.
    assert.equal(value(m, 'fedsync_cycles_total', { set: 'config' }), 0);
    assert.equal(value(m, 'fedsync_last_success_timestamp_seconds', { set: 'config' }), 0);
    assert.equal(m.get('fedsync_cycles_total')!.type, 'counter');
    assert.equal(m.get('fedsync_peer_lag_segments'), undefined, 'no peers yet');

    expectCode(b.run(['run']), 0, 'b: first cycle');
    const mb = metrics(b);
    assert.equal(value(mb, 'fedsync_files_applied_total', up), 3);
    assert.equal(value(mb, 'fedsync_bytes_down_total', up), 6000);
    assert.equal(value(mb, 'fedsync_peer_lag_segments', { ...up, peer: 'web1' }), 0);
    assert.equal(value(mb, 'fedsync_peer_lag_seconds', { ...up, peer: 'web1' }), 0);
    assert.equal(value(mb, 'fedsync_peer_error', { ...up, peer: 'web1' }), 0);

    writeFileSync(join(a.root('uploads'), 'one.jpg'), Buffer.alloc(1500, 9));
    const before = value(m, 'fedsync_store_requests_total', { ...up, kind: 'list' });
    expectCode(a.run(['run']), 0, 'a: second cycle');
    m = metrics(a);
    assert.equal(value(m, 'fedsync_cycles_total', up), 2);
    assert.equal(value(m, 'fedsync_files_published_total', up), 4);
    assert.equal(value(m, 'fedsync_bytes_up_total', up), 7500);
    assert.ok(value(m, 'fedsync_store_requests_total', { ...up, kind: 'list' }) > before);
    assert.equal(value(m, 'fedsync_peer_lag_segments', { ...up, peer: 'web2' }), 0);

    // A cycle that fails (the store is gone when it publishes) is counted as one.
    writeFileSync(join(a.root('uploads'), 'four.jpg'), 'four');
    const store = join(dir, 'store', 'uploads');
    renameSync(store, `${store}.away`);
    writeFileSync(store, 'not a directory');
    expectCode(a.run(['run']), 1, 'a: cycle against a broken store');
    m = metrics(a);
    assert.equal(value(m, 'fedsync_cycles_total', up), 3);
    assert.equal(value(m, 'fedsync_cycle_failures_total', up), 1);
    assert.equal(value(m, 'fedsync_last_cycle_success', up), 0);
    const status = JSON.parse(expectCode(a.run(['status', '--json', '--set', 'uploads']), 1, 'status').stdout);
    assert.equal(status.sets[0].totals.failures, 1);
    assert.ok(existsSync(join(a.stateDir, 'uploads', 'counters.json')));
  });

  it('exports what the alerts compare with: thresholds, unresolved conflict copies, the rail', (t) => {
    const dir = tempDir(t);
    const a = makeNode(dir, { node: 'web1', sets: [{ name: 'uploads', extra: 'node_timeout = "2d"\ninterval = "5m"' }, { name: 'config', mode: 'lightweight', extra: 'poll = "7s"' }] });
    const b = makeNode(dir, { node: 'web2', sets: [{ name: 'uploads' }] });
    const up = { set: 'uploads' };
    expectCode(a.run(['init']), 0, 'init a');
    expectCode(b.run(['init']), 0, 'init b');
    for (let i = 0; i < 12; i++) writeFileSync(join(a.root('uploads'), `f${i}`), `file ${i}`);
    expectCode(a.run(['run']), 0, 'a: publish');
    expectCode(b.run(['run']), 0, 'b: apply');
    let m = metrics(a);
    assert.equal(value(m, 'fedsync_node_timeout_seconds', up), 172800);
    assert.equal(value(m, 'fedsync_interval_seconds', up), 300);
    assert.equal(value(m, 'fedsync_interval_seconds', { set: 'config' }), 7, "a lightweight set: the daemon's poll");
    assert.equal(value(metrics(b), 'fedsync_interval_seconds', up), 60, 'a heavyweight set: the cron minute');
    assert.equal(value(m, 'fedsync_conflict_copies', up), 0);
    assert.equal(value(m, 'fedsync_deletion_rail_tripped', up), 0);
    assert.equal(value(m, 'fedsync_store_unreachable', up), 0);

    // Both edit f0: whichever loses becomes a copy, which every node then counts until deleted.
    writeFileSync(join(a.root('uploads'), 'f0'), 'edited on web1');
    writeFileSync(join(b.root('uploads'), 'f0'), 'edited on web2');
    for (const n of [a, b, a, b]) expectCode(n.run(['run']), 0, 'conflicting edits');
    for (const n of [a, b]) assert.equal(value(metrics(n), 'fedsync_conflict_copies', up), 1, n.dir);
    assert.match(a.run(['status']).stdout, /conflicts +1 conflict copy \(\*\.sync-conflict-\*\) in the set not deleted yet/);
    const copy = readdirSync(b.root('uploads')).find((f) => f.includes('.sync-conflict-'))!;
    rmSync(join(b.root('uploads'), copy));
    expectCode(b.run(['run']), 0, 'b: publish the resolution');
    expectCode(a.run(['run']), 0, 'a: apply it');
    for (const n of [a, b]) assert.equal(value(metrics(n), 'fedsync_conflict_copies', up), 0, n.dir);

    // web1 loses most of its files: the rail refuses to publish that.
    for (let i = 1; i < 12; i++) rmSync(join(a.root('uploads'), `f${i}`));
    expectCode(a.run(['run']), 1, 'a: refused by the rail');
    m = metrics(a);
    assert.equal(value(m, 'fedsync_deletion_rail_tripped', up), 1);
    assert.equal(value(m, 'fedsync_last_cycle_success', up), 0);
    assert.equal(value(m, 'fedsync_store_unreachable', up), 0);

  });

  it('says when the last cycle failed for the store: refused credentials, an endpoint that does not answer', async (t) => {
    const server = await startS3rver();
    t.after(() => server.stop());
    const bucket = freshBucketName('fedsync-metrics');
    await createBucket(server, bucket);
    const node = makeNode(tempDir(t), {
      node: 'web1',
      sets: [{ name: 'uploads' }],
      store: `s3://${bucket}/metrics`,
      storeExtra: `endpoint = "${server.endpoint}"\nregion = "us-east-1"\nforce_path_style = true\n`,
    });
    const creds = { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_REGION: server.region };
    const run = async (env: Record<string, string>, code: number, what: string) => {
      expectCode(await fedsyncAsync(['-c', node.config, 'run'], env), code, what);
      return metrics(node);
    };
    const up = { set: 'uploads' };
    expectCode(await fedsyncAsync(['-c', node.config, 'init'], creds), 0, 'init');
    writeFileSync(join(node.root('uploads'), 'a.txt'), 'a');
    assert.equal(value(await run(creds, 0, 'a good cycle'), 'fedsync_store_unreachable', up), 0);
    const bad = await run({ ...creds, AWS_ACCESS_KEY_ID: 'WRONGKEY' }, 1, 'refused credentials');
    assert.equal(value(bad, 'fedsync_store_unreachable', up), 1);
    assert.equal(value(bad, 'fedsync_deletion_rail_tripped', up), 0);
    writeFileSync(node.config, readFileSync(node.config, 'utf8').replace(server.endpoint, 'http://127.0.0.1:1'));
    assert.equal(value(await run({ ...creds, AWS_MAX_ATTEMPTS: '2' }, 1, 'nothing listens'), 'fedsync_store_unreachable', up), 1);
    writeFileSync(node.config, readFileSync(node.config, 'utf8').replace('http://127.0.0.1:1', server.endpoint));
    assert.equal(value(await run(creds, 0, 'the store is back'), 'fedsync_store_unreachable', up), 0);
  });

  it('a dry run counts nothing', (t) => {
    const node = makeNode(tempDir(t), { node: 'web1', sets: [{ name: 'uploads' }] });
    expectCode(node.run(['init']), 0, 'init');
    expectCode(node.run(['run']), 0, 'run');
    writeFileSync(join(node.root('uploads'), 'x'), 'x');
    expectCode(node.run(['run', '--dry-run']), 0, 'dry run');
    assert.equal(value(metrics(node), 'fedsync_cycles_total', { set: 'uploads' }), 1);
  });

  it('escapes label values and keeps each family together', () => {
    const text = renderMetrics('web "1"', [
      { name: 'a\\b', mode: 'heavyweight', role: 'both', nodeTimeout: 604800, interval: 60, status: null, counters: null },
      { name: 'c', mode: 'lightweight', role: 'subscribe', nodeTimeout: 604800, interval: 5, status: null, counters: null },
    ]);
    const m = parsePrometheus(text); // throws on a split family, a bad escape or a duplicate
    assert.equal(value(m, 'fedsync_set_info', { set: 'a\\b', node: 'web "1"' }), 1);
    assert.equal(m.get('fedsync_store_requests_total')!.samples.length, 10);
  });

  it('exports the on_apply hook for each set that has one, from 0 before its first run', () => {
    const last = { startedAt: '2026-12-01T10:00:00.000Z', durationMs: 1000, changed: 2, ok: false, exitCode: -1, result: 'timeout', lastLine: null };
    const text = renderMetrics('web1', [
      { name: 'conf', mode: 'lightweight', role: 'both', nodeTimeout: 604800, interval: 5, status: null, counters: null, onApply: true, hook: { version: 1, set: 'conf', runs: 3, failures: 1, last } },
      { name: 'fresh', mode: 'lightweight', role: 'both', nodeTimeout: 604800, interval: 5, status: null, counters: null, onApply: true, hook: null },
      { name: 'uploads', mode: 'heavyweight', role: 'both', nodeTimeout: 604800, interval: 60, status: null, counters: null },
    ]);
    if (PROMTOOL) promtool(text);
    const m = parsePrometheus(text);
    assert.equal(value(m, 'fedsync_on_apply_runs_total', { set: 'conf' }), 3);
    assert.equal(value(m, 'fedsync_on_apply_failures_total', { set: 'conf' }), 1);
    assert.equal(value(m, 'fedsync_on_apply_last_exit_code', { set: 'conf' }), -1);
    assert.equal(value(m, 'fedsync_on_apply_last_run_timestamp_seconds', { set: 'conf' }), Date.parse(last.startedAt) / 1000);
    for (const name of ['fedsync_on_apply_runs_total', 'fedsync_on_apply_failures_total', 'fedsync_on_apply_last_exit_code', 'fedsync_on_apply_last_run_timestamp_seconds']) {
      assert.equal(value(m, name, { set: 'fresh' }), 0);
      assert.deepEqual(m.get(name)!.samples.map((x) => x.labels.set), ['conf', 'fresh'], `${name}: only sets with on_apply`);
    }
  });

  it('promtool, Prometheus\'s own checker, accepts what fedsync writes and refuses a broken file', { skip: PROMTOOL ? false : 'promtool not installed (apt-get install prometheus)' }, () => {
    const text = renderMetrics('web1', [{ name: 'uploads', mode: 'heavyweight', role: 'both', nodeTimeout: 604800, interval: 60, status: null, counters: null }]);
    promtool(text);
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text.replace('} ', ' '), encoding: 'utf8' });
    assert.notEqual(r.status, 0, 'a broken file must fail');
  });

  it('the test parser is strict (not vacuous)', () => {
    const ok = '# TYPE x_total counter\nx_total{a="1"} 1\n';
    parsePrometheus(ok);
    for (const bad of [
      ok.slice(0, -1), // no final newline
      ok + '\n', // blank line
      ok + 'x_total{a="1"} 2\n', // duplicate series
      '# TYPE x_total counter\nx_total -1\n', // negative counter
      'x 1\ny 1\nx{a="2"} 1\n', // family split
      'x{a="\\q"} 1\n', // bad escape
      'x 1 1700000000000\n', // timestamp
    ]) {
      assert.throws(() => parsePrometheus(bad), Error, JSON.stringify(bad));
    }
  });
});
