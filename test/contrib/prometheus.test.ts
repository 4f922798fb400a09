// contrib/prometheus: the alerting rules pass Prometheus's own checks, `promtool check rules`
// and the unit tests beside them (`promtool test rules`), and those tests show every alert both
// firing and silent. promtool comes with Debian's prometheus package (.ci/run installs it); a
// machine without it fails here unless FEDSYNC_ALLOW_SKIP_PROMTOOL=1 turns that into a skip.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { rules, RULES_FILE } from './rules.js';

const DIR = dirname(RULES_FILE);
const TESTS_FILE = join(DIR, 'fedsync.rules.test.yml');

const HAVE_PROMTOOL = spawnSync('/bin/sh', ['-c', 'command -v promtool']).status === 0;
const SKIP = HAVE_PROMTOOL || process.env.FEDSYNC_ALLOW_SKIP_PROMTOOL !== '1' ? false : 'promtool not installed (FEDSYNC_ALLOW_SKIP_PROMTOOL=1)';

function promtool(args: string[]): string {
  assert.ok(HAVE_PROMTOOL, 'promtool is not installed: apt-get install prometheus (or set FEDSYNC_ALLOW_SKIP_PROMTOOL=1 to skip)');
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

describe('contrib/prometheus', () => {
  it('promtool check rules accepts the rules', { skip: SKIP }, () => {
    assert.match(promtool(['check', 'rules', RULES_FILE]), /SUCCESS: \d+ rules found/);
  });

  it('promtool test rules: the unit tests pass', { skip: SKIP }, () => {
    assert.match(promtool(['test', 'rules', TESTS_FILE]), /SUCCESS/);
  });

  it('promtool test rules fails a test that expects the wrong thing (not vacuous)', { skip: SKIP }, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fedsync-rules-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const broken = readFileSync(TESTS_FILE, 'utf8').replace('  - fedsync.rules.yml', `  - ${RULES_FILE}`).replace('severity: critical', 'severity: page');
    writeFileSync(join(dir, 'broken.test.yml'), broken);
    const r = spawnSync('promtool', ['test', 'rules', join(dir, 'broken.test.yml')], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, r.stdout);
    assert.match(r.stdout + r.stderr, /FAILED:[\s\S]*severity="page"/);
  });

  it('every alert is tested firing, and silent where it should be', () => {
    const doc = parse(readFileSync(TESTS_FILE, 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const cases = doc.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const r of rules().filter((x) => x.alert)) {
      const mine = cases.filter((c) => c.alertname === r.alert);
      assert.ok(mine.some((c) => c.exp_alerts.length > 0), `${r.alert}: no test where it fires`);
      assert.ok(mine.some((c) => c.exp_alerts.length === 0), `${r.alert}: no test where it stays silent`);
    }
  });

  it('every alert has a for:, a severity and a summary and description naming the set and the node', () => {
    const alerts = rules().filter((x) => x.alert);
    assert.ok(alerts.length >= 8);
    for (const r of alerts) {
      assert.match(r.for ?? '', /^\d+[smh]$/, `${r.alert}: for`);
      assert.ok(['critical', 'warning', 'info'].includes(r.labels?.severity ?? ''), `${r.alert}: severity`);
      for (const k of ['summary', 'description']) {
        const text = r.annotations?.[k] ?? '';
        assert.match(text, /\$labels\.set\b/, `${r.alert}: ${k} names the set`);
        assert.match(text, /\$labels\.instance\b/, `${r.alert}: ${k} names the node`);
      }
    }
  });
});
