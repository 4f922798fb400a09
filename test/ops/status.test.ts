// `fedsync status`: exit codes from crafted status.json files (healthy 0, failed 1, stale or
// never run 2), the table, and `--json` against docs/status-schema.json.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SetStatus } from '../../src/sync/status.js';
import { validate } from './jsonschema.js';
import { expectCode, makeNode, REPO, tempDir, type TestNode } from './support.js';

const SCHEMA = JSON.parse(readFileSync(join(REPO, 'docs', 'status-schema.json'), 'utf8')) as Record<string, unknown>;
const PEER = 'abcdefghijklmnopqrstuvwxyz';

const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString();

function craft(node: TestNode, set: string, o: { ok?: boolean; lastCycleAgo?: number; lastSuccessAgo?: number | null; error?: string; lag?: number } = {}): void {
  const ok = o.ok ?? true;
  const started = ago(o.lastCycleAgo ?? 10);
  const status: SetStatus = {
    version: 1,
    set,
    mode: 'heavyweight',
    role: 'both',
    node: 'web1',
    nodeId: 'zyxwvutsrqponmlkjihgfedcba',
    root: node.root(set),
    store: 'file:///srv/store/' + set,
    publishedSeq: 4,
    pending: ok ? 0 : 2,
    lastCycle: {
      startedAt: started,
      durationMs: 123,
      ok,
      error: ok ? null : (o.error ?? 'pull: store: list heads/ failed: ECONNREFUSED (is the endpoint reachable?)'),
      stats: { scanned: 10, hashed: 1, published: 1, applied: 2, deleted: 0, conflicts: 1, rejected: 0, bytesUp: 100, bytesDown: 2048, settling: 0 },
      requests: { get: 2, put: 3, list: 1, delete: 0, head: 0 },
    },
    lastSuccess: o.lastSuccessAgo === null ? null : ok && o.lastSuccessAgo === undefined ? started : ago(o.lastSuccessAgo ?? 3600),
    peers: [{ node: PEER, name: 'web2', role: 'both', heartbeat: ago(30), seq: 7 + (o.lag ?? 0), cursor: 7, lag: o.lag ?? 0, error: null }],
    updatedAt: started,
  };
  mkdirSync(join(node.stateDir, set), { recursive: true, mode: 0o700 });
  writeFileSync(join(node.stateDir, set, 'status.json'), JSON.stringify(status));
}

function statusJson(node: TestNode, args: string[] = []): { code: number; report: { exitCode: number; sets: Record<string, any>[] } } {
  const r = node.run(['status', '--json', ...args]);
  const report = JSON.parse(r.stdout);
  assert.deepEqual(validate(SCHEMA, report), [], 'status --json matches docs/status-schema.json');
  assert.equal(report.exitCode, r.code);
  return { code: r.code, report };
}

describe('fedsync status', () => {
  it('exit 0 and a table when the last cycle succeeded recently', (t) => {
    const node = makeNode(tempDir(t), { node: 'web1', sets: [{ name: 'uploads' }] });
    craft(node, 'uploads');
    const r = expectCode(node.run(['status']), 0, 'status');
    const lines = r.stdout.split('\n');
    const header = lines.findIndex((l) => l.startsWith('SET '));
    assert.match(lines[header]!, /^SET\s+MODE\s+HEALTH\s+LAST CYCLE\s+RESULT\s+LAST OK\s+PENDING\s+WANTED\s+CONFLICTS$/);
    assert.match(lines[header + 1]!, /^uploads\s+heavyweight\s+healthy\s+1\ds ago \(123 ms\)\s+ok\s+1\ds ago\s+0\s+0\s+1$/);
    assert.match(r.stdout, /peer web2\s+heartbeat [34]\ds ago\s+seq 7\s+cursor 7\s+lag 0 segments, 0s/);
    const { report } = statusJson(node);
    assert.equal(report.sets[0]!.health, 'healthy');
    assert.ok(report.sets[0]!.lastCycleAgeSeconds >= 10 && report.sets[0]!.lastCycleAgeSeconds < 20);
    assert.equal(report.sets[0]!.staleAfterSeconds, 180);
  });

  it('exit 1 with the error when the last cycle failed', (t) => {
    const node = makeNode(tempDir(t), { node: 'web1', sets: [{ name: 'uploads' }] });
    craft(node, 'uploads', { ok: false });
    const r = expectCode(node.run(['status']), 1, 'status');
    assert.match(r.stdout, /^uploads\s+heavyweight\s+FAILED\s+.*FAILED\s+60m ago\s+2\s+0\s+1$/m);
    assert.match(r.stdout, /^ {2}error {7}pull: store: list heads\/ failed: ECONNREFUSED/m);
    const { report } = statusJson(node);
    assert.equal(report.sets[0]!.health, 'failed');
    assert.match(report.sets[0]!.lastError.message, /ECONNREFUSED/);
  });

  it('exit 2 when no cycle succeeded for three intervals (stale)', (t) => {
    const node = makeNode(tempDir(t), { node: 'web1', sets: [{ name: 'uploads' }, { name: 'config', mode: 'lightweight', extra: 'poll = "20s"\n' }] });
    craft(node, 'uploads', { lastCycleAgo: 181 }); // heavyweight: a cron minute x 3
    craft(node, 'config', { lastCycleAgo: 30 }); // lightweight: poll 20 s x 3
    const r = expectCode(node.run(['status']), 2, 'status');
    assert.match(r.stdout, /^uploads\s+heavyweight\s+STALE\s/m);
    assert.match(r.stdout, /is cron or the watch daemon running\?/);
    assert.match(r.stdout, /^config\s+lightweight\s+healthy\s/m);
    expectCode(node.run(['status', '--set', 'config']), 0, 'the lightweight set alone');
    craft(node, 'config', { lastCycleAgo: 61 });
    expectCode(node.run(['status', '--set', 'config']), 2, 'lightweight, 61 s after the last poll');
    const { report } = statusJson(node);
    assert.deepEqual(report.sets.map((s) => s.health), ['stale', 'stale']);
  });

  it('exit 2 when a set never ran; the worst set decides', (t) => {
    const node = makeNode(tempDir(t), { node: 'web1', sets: [{ name: 'uploads' }, { name: 'media' }] });
    craft(node, 'uploads');
    const r = expectCode(node.run(['status']), 2, 'status');
    assert.match(r.stdout, /^media\s+heavyweight\s+NEVER RUN\s/m);
    assert.match(r.stdout, /no cycle has run yet/);
    expectCode(node.run(['status', '--set', 'uploads']), 0, 'status --set uploads');
    const { report } = statusJson(node);
    assert.equal(report.sets[1]!.status, null);
    assert.equal(report.sets[1]!.health, 'never');
    craft(node, 'media', { ok: false });
    expectCode(node.run(['status']), 1, 'one healthy, one failed');
  });

  it('shows peer lag in segments and in seconds behind (from counters.json)', (t) => {
    const node = makeNode(tempDir(t), { node: 'web1', sets: [{ name: 'uploads' }] });
    craft(node, 'uploads', { lag: 3 });
    writeFileSync(
      join(node.stateDir, 'uploads', 'counters.json'),
      JSON.stringify({ version: 1, set: 'uploads', since: ago(7200), counted: null, cycles: 50, failures: 2, published: 9, applied: 8, deleted: 1, conflicts: 4, rejected: 0, bytesUp: 1, bytesDown: 2, requests: { get: 1, put: 1, list: 50, delete: 0, head: 0 }, caughtUp: { [PEER]: ago(600) }, lastError: { at: ago(3000), message: 'apply: disk full' } }),
    );
    const r = expectCode(node.run(['status']), 0, 'status');
    assert.match(r.stdout, /lag 3 segments, 6[0-1]\ds/);
    assert.match(r.stdout, /^uploads\s+heavyweight\s+healthy\s+.*\s4$/m, 'conflicts: the running total');
    assert.match(r.stdout, /last error {2}5[01]m ago: apply: disk full/);
    const { report } = statusJson(node);
    assert.equal(report.sets[0]!.peers[0].lagSegments, 3);
    assert.ok(Math.abs(report.sets[0]!.peers[0].lagSeconds - 605) <= 5);
    assert.equal(report.sets[0]!.totals.cycles, 50);
  });

  it('the schema rejects what it should (the validation is not vacuous)', () => {
    const bad = { version: 1, node: 'n', config: '/c', generatedAt: new Date().toISOString(), exitCode: 3, sets: [{ name: 'x' }] };
    const errors = validate(SCHEMA, bad);
    assert.ok(errors.some((e) => e.includes('exitCode')));
    assert.ok(errors.some((e) => e.includes('missing health')));
  });
});
