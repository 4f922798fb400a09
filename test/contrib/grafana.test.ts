// contrib/grafana/fedsync.json and contrib/prometheus/fedsync.rules.yml read only metrics that
// fedsync writes: every metric name in their queries (found by Prometheus's own PromQL
// grammar) must be among those that a real two-node federation of the built binary wrote to
// its metrics files. The dashboard is also checked for the shape Grafana imports.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parsePrometheus } from '../ops/promtext.js';
import { expectCode, makeNode, tempDir, type TestNode } from '../ops/support.js';
import { rules } from './rules.js';
import { metricNames } from './promql.js';

const DASHBOARD = fileURLToPath(new URL('../../contrib/grafana/fedsync.json', import.meta.url));

/**
 * Written by the on_apply hook's metrics, which a build without the `on_apply` option lacks.
 * Accepted only when the build refuses that option; with it, the run below configures a hook
 * and these must be written like any other.
 */
const ON_APPLY_HOOK_METRICS = [
  'fedsync_on_apply_runs_total',
  'fedsync_on_apply_failures_total',
  'fedsync_on_apply_last_exit_code',
  'fedsync_on_apply_last_run_timestamp_seconds',
];

interface Panel {
  type: string;
  title: string;
  datasource?: { uid?: string };
  targets?: { expr?: string }[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
  schemaVersion: number;
  __inputs: { name: string; type: string; pluginId: string }[];
  templating: { list: { name: string; query: { query: string } | string; datasource?: { uid?: string } }[] };
  panels: Panel[];
};
const allPanels = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const panels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr ?? '' })));

/** The metric names written to the metrics files by a real federation of two nodes. */
function exported(t: { after(fn: () => void): void }): { names: Set<string>; onApplyAllowed: boolean } {
  const dir = tempDir(t, 'fedsync-dash-');
  const nodes = (hook: boolean) => ['web1', 'web2'].map((node) => makeNode(dir, { node, sets: [{ name: 'uploads', extra: hook ? 'on_apply = "true"' : '' }] }));
  let [a, b] = nodes(true) as [TestNode, TestNode];
  let onApplyAllowed = false;
  const init = a.run(['init']);
  if (init.code !== 0 && /unknown key "sync\[0\]\.on_apply"/.test(init.stderr)) {
    [a, b] = nodes(false) as [TestNode, TestNode];
    onApplyAllowed = true;
    expectCode(a.run(['init']), 0, 'init web1');
  } else expectCode(init, 0, 'init web1 (with an on_apply hook)');
  expectCode(b.run(['init']), 0, 'init web2');
  writeFileSync(join(a.root('uploads'), 'hello.txt'), 'hello');
  // web2 applies web1's file (its hook runs); web1 then reads web2's head: both see a peer.
  for (const [n, what] of [[a, 'web1 publishes'], [b, 'web2 applies'], [a, 'web1 sees web2']] as const) expectCode(n.run(['run']), 0, what);
  const names = new Set<string>();
  for (const n of [a, b]) {
    assert.ok(readdirSync(n.stateDir).includes('fedsync.prom'), `${n.dir}: no metrics file`);
    for (const name of parsePrometheus(readFileSync(join(n.stateDir, 'fedsync.prom'), 'utf8')).keys()) names.add(name);
  }
  return { names, onApplyAllowed };
}

describe('contrib/grafana and contrib/prometheus read only what fedsync exports', () => {
  let names: Set<string>;
  let onApplyAllowed: boolean;
  const cleanup: (() => void)[] = [];
  before(() => {
    ({ names, onApplyAllowed } = exported({ after: (fn) => cleanup.push(fn) }));
  });
  after(() => cleanup.forEach((fn) => fn()));

  const unknown = (used: { where: string; expr: string }[]) =>
    used.flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((m) => !names.has(m) && !(onApplyAllowed && ON_APPLY_HOOK_METRICS.includes(m)))
        .map((m) => `${where}: ${m}`),
    );

  it('the federation wrote the metrics the checks rely on (not vacuous)', () => {
    for (const m of ['fedsync_cycles_total', 'fedsync_peer_lag_seconds', 'fedsync_conflict_copies', 'fedsync_node_timeout_seconds']) assert.ok(names.has(m), m);
    if (!onApplyAllowed) for (const m of ON_APPLY_HOOK_METRICS) assert.ok(names.has(m), `the on_apply hook ran but ${m} was not written`);
  });

  it('every metric in the dashboard is exported', () => {
    assert.ok(exprs.length >= 15, 'the dashboard has its queries');
    const variables = dashboard.templating.list.map((v) => ({ where: `variable $${v.name}`, expr: /label_values\((\w+)/.exec(typeof v.query === 'string' ? v.query : v.query.query)![1]! }));
    assert.deepEqual(unknown([...exprs, ...variables]), []);
  });

  it('every metric in the alerting rules is exported', () => {
    const used = rules().map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr }));
    assert.ok(used.length >= 8);
    assert.deepEqual(unknown(used), []);
  });

  it('a name fedsync does not write is caught, and a broken query too (not vacuous)', () => {
    assert.deepEqual(unknown([{ where: 'test', expr: 'rate(fedsync_cycles_totl[5m]) > on(set) group_left fedsync_set_info' }]), ['test: fedsync_cycles_totl']);
    assert.throws(() => metricNames('sum(rate(fedsync_cycles_total[5m])'), /not valid PromQL/);
  });
});

describe('contrib/grafana/fedsync.json', () => {
  it('is an importable dashboard: schema 39, a DS_PROMETHEUS input used by every panel, instance and set variables', () => {
    assert.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, `schemaVersion ${dashboard.schemaVersion}`);
    assert.deepEqual(dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId]), [['DS_PROMETHEUS', 'datasource', 'prometheus']]);
    for (const p of panels) assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `panel "${p.title}"`);
    assert.deepEqual(dashboard.templating.list.map((v) => v.name), ['instance', 'set']);
    for (const { where, expr } of exprs) {
      assert.match(expr, /instance=~"\$instance"/, `${where} follows the node variable`);
      assert.match(expr, /set=~"\$set"/, `${where} follows the set variable`);
    }
  });

  it('has the panels operators look for', () => {
    const titles = panels.map((p) => p.title.toLowerCase()).join('\n');
    for (const t of ['cycle duration', 'files per interval', 'bytes up and down', 'lag per peer (seconds)', 'lag per peer (segments)', 'requests per cycle by kind', 'conflict copies', 'conflicts per hour', 'wanted records', 'oldest wanted record age', 'on_apply runs and failures', 'last success age']) {
      assert.ok(titles.includes(t), t);
    }
  });
});
