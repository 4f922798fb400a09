// The per-set `on_apply` hook, end to end: two nodes as separate processes of the built binary
// on one real S3 server.
//
// 1. Heavyweight: B's hook copies its environment and the list of changed paths out of the
//    root. It runs once for a cycle that applied A's creations (one with a newline in its name)
//    and a deletion, with exactly those paths, NUL-separated, in the root as cwd; the list is
//    removed afterwards. An idle cycle and a cycle that only publishes B's own change run nothing.
//    `run --loop` runs it after each applying cycle, and exits 0 on SIGTERM.
// 2. A failing hook (exit 3) and a hanging one (killed at on_apply_timeout): `fedsync run` still
//    exits 0 with the files applied; status (human and --json), the metrics file and the log
//    say what happened; the hanging hook's process group is gone.
// 3. The watch daemon: a burst published over two runs of A makes one hook run (after things
//    are quiet) with every path; while a slow hook runs, the daemon goes on applying.
// 4. A bad on_apply_timeout is one clear error naming the key and the file.
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Target } from '../support/s3.js';
import { validate } from '../ops/jsonschema.js';
import { assertOk, describeResult, Federation, oneServer, ownStderrLines, REPO, sleep, type FedNode } from './harness.js';

/** The hook: records each run's environment and list under `out/<n>/`, and guards against overlap. */
const HOOK = `#!/bin/sh
out="$1"
mkdir "$out/running" 2>/dev/null || echo overlap >> "$out/overlap"
n=$(ls "$out" | grep -c '^run[0-9]')
d="$out/run$((n + 1))"
mkdir "$d"
printf '%s' "$FEDSYNC_SET" > "$d/set"
printf '%s' "$FEDSYNC_ROOT" > "$d/root"
printf '%s' "$FEDSYNC_CHANGED" > "$d/list"
pwd > "$d/cwd"
cp "$FEDSYNC_CHANGED" "$d/changed"
[ -f "$out/slow" ] && sleep "$(cat "$out/slow")"
touch "$d/ended"
rmdir "$out/running"
echo "reloaded $((n + 1))"
`;

interface HookRunSeen {
  set: string;
  root: string;
  list: string;
  cwd: string;
  changed: string[];
  ended: boolean;
}

function hookRuns(out: string): HookRunSeen[] {
  const dirs = readdirSync(out).filter((n) => /^run\d+$/.test(n)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  return dirs.map((d) => {
    const f = (name: string) => readFileSync(join(out, d, name), 'utf8');
    const raw = f('changed');
    assert.ok(raw === '' || raw.endsWith('\0'), `the list is NUL-terminated: ${JSON.stringify(raw)}`);
    return { set: f('set'), root: f('root'), list: f('list'), cwd: f('cwd').trim(), changed: raw.split('\0').slice(0, -1).sort(), ended: existsSync(join(out, d, 'ended')) };
  });
}

/** Rewrites the node's config with these extra keys in its [[sync]] table (TOML text). */
function configure(fed: Federation, n: FedNode, extra: string[], mode = 'heavyweight'): void {
  n.writeConfig(fed.options.endpoint ?? fed.target.endpoint);
  if (mode !== 'heavyweight') writeFileSync(n.config, readFileSync(n.config, 'utf8').replace('mode = "heavyweight"', `mode = "${mode}"`));
  appendFileSync(n.config, extra.join('\n') + '\n');
}

function hookOut(fed: Federation, name: string): { out: string; command: string } {
  const out = join(fed.dir, `hook-${name}`);
  mkdirSync(out, { recursive: true });
  const script = join(fed.dir, `hook-${name}.sh`);
  writeFileSync(script, HOOK);
  return { out, command: `sh ${script} ${out}` };
}

function write(n: FedNode, rel: string, content: string): void {
  mkdirSync(join(n.root, rel, '..'), { recursive: true });
  writeFileSync(n.abs(rel), content);
}

const SCHEMA = JSON.parse(readFileSync(join(REPO, 'docs', 'status-schema.json'), 'utf8')) as Record<string, unknown>;

async function statusJson(n: FedNode): Promise<{ sets: { onApply: Record<string, unknown> | null }[] }> {
  const r = await n.fedsync(['status', '--json']);
  assert.ok(r.code !== null && r.code <= 2, describeResult(r));
  const json = JSON.parse(r.stdout) as { sets: { onApply: Record<string, unknown> | null }[] };
  assert.deepEqual(validate(SCHEMA, json), [], 'status --json matches docs/status-schema.json');
  return json;
}

function metric(n: FedNode, name: string): number {
  const text = readFileSync(join(n.stateDir, 'fedsync.prom'), 'utf8');
  const m = new RegExp(`^${name}\\{set="www"\\} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} in the metrics file:\n${text}`);
  return Number(m[1]);
}

/** Processes of a process group that are not zombies (a container's init may be slow to reap them). */
function liveMembers(pgid: number): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so read after its last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') out.push(`${pid} ${stat.slice(0, stat.lastIndexOf(')') + 1)}`);
  }
  return out;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

for (const server of oneServer('on_apply')) {
  describe(`on_apply hook (${server.name})`, () => {
    let target: S3Target & { stop(): Promise<void> };
    before(async () => {
      target = await server.start();
    });
    after(async () => {
      await target.stop();
    });

    it('runs once with exactly the paths applied from a peer; never for an idle cycle or a local change', async () => {
      const fed = await Federation.create(target, { nodes: ['a', 'b'] });
      try {
        const [a, b] = fed.nodes as [FedNode, FedNode];
        const { out, command } = hookOut(fed, 'b');
        configure(fed, b, [`on_apply = ${JSON.stringify(command)}`]);
        write(a, 'gone.txt', 'soon deleted\n');
        write(a, 'keep.txt', 'kept\n');
        await a.run();
        await b.run();
        assert.deepEqual(hookRuns(out).map((r) => r.changed), [['gone.txt', 'keep.txt']]);

        const NEWLINE = 'new\nline.txt';
        write(a, 'index.html', '<h1>home</h1>\n');
        write(a, 'docs/guide.txt', 'guide\n');
        write(a, NEWLINE, 'odd name\n');
        rmSync(a.abs('gone.txt'));
        await a.run();
        await b.run();
        const runs = hookRuns(out);
        assert.equal(runs.length, 2, 'one hook run per applying cycle');
        const run = runs[1]!;
        assert.deepEqual(run.changed, ['docs', 'docs/guide.txt', 'gone.txt', 'index.html', NEWLINE].sort());
        assert.equal(run.set, 'www');
        assert.equal(run.root, b.root);
        assert.equal(run.cwd, b.root);
        assert.ok(run.list.startsWith(b.stateDir), `the list lives in the state dir: ${run.list}`);
        assert.ok(!existsSync(run.list), 'the list is removed after the hook ended');
        assert.equal(readFileSync(b.abs(NEWLINE), 'utf8'), 'odd name\n');

        await b.run();
        assert.equal(hookRuns(out).length, 2, 'an idle cycle runs no hook');
        write(b, 'local.txt', 'mine\n');
        await b.run();
        assert.equal(hookRuns(out).length, 2, "publishing the node's own change runs no hook");
        await a.run();
        assert.ok(existsSync(a.abs('local.txt')));
        await b.run(['--dry-run']);
        assert.equal(hookRuns(out).length, 2);

        const st = (await statusJson(b)).sets[0]!.onApply!;
        assert.equal(st.runs, 2);
        assert.equal(st.result, 'exit 0');
        assert.equal(st.lastLine, 'reloaded 2');
        assert.equal(metric(b, 'fedsync_on_apply_runs_total'), 2);
        assert.equal(metric(b, 'fedsync_on_apply_failures_total'), 0);
        assert.equal(metric(b, 'fedsync_on_apply_last_exit_code'), 0);
        assert.ok(metric(b, 'fedsync_on_apply_last_run_timestamp_seconds') > Date.now() / 1000 - 600);
        assert.ok(!existsSync(out + '/overlap'));
      } finally {
        await fed.close();
      }
    });

    it('run --loop runs the hook after each cycle that applied something, never for its idle cycles', async () => {
      const fed = await Federation.create(target, { nodes: ['a', 'b'], sync: { interval: '1s' } });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      const { out, command } = hookOut(fed, 'b');
      configure(fed, b, [`on_apply = ${JSON.stringify(command)}`]);
      const loop = b.spawn(['run', '--loop'], { timeoutMs: 120_000 });
      try {
        write(a, 'one.txt', '1');
        await a.run();
        await until('a hook run with one.txt', () => hookRuns(out).some((r) => r.ended && r.changed.includes('one.txt')));
        write(a, 'two.txt', '2');
        await a.run();
        await until('a hook run with two.txt', () => hookRuns(out).some((r) => r.ended && r.changed.includes('two.txt')));
        await sleep(3_000); // idle cycles of the loop meanwhile
        assert.deepEqual(hookRuns(out).map((r) => r.changed), [['one.txt'], ['two.txt']]);
      } finally {
        loop.kill('SIGTERM');
        const r = await loop.done;
        await fed.close();
        assert.equal(r.code, 0, describeResult(r));
      }
    });

    it('a failing or hanging hook leaves the cycle ok and is reported in status, metrics and log', async () => {
      const fed = await Federation.create(target, { nodes: ['a', 'b'] });
      try {
        const [a, b] = fed.nodes as [FedNode, FedNode];
        configure(fed, b, [`on_apply = ${JSON.stringify('echo checking; echo "nginx: [emerg] bad\tline" >&2; exit 3')}`]);
        assertOk(await b.fedsync(['run']));
        const first = (await statusJson(b)).sets[0]!.onApply!;
        assert.equal(first.runs, 0);
        assert.equal(first.result, null);
        assert.equal(first.timeoutSeconds, 60);
        assert.equal(metric(b, 'fedsync_on_apply_runs_total'), 0, 'exported before the first run');
        write(a, 'one.txt', '1\n');
        await a.run();
        const r = await b.fedsync(['run']);
        assert.equal(r.code, 0, describeResult(r));
        assert.equal(readFileSync(b.abs('one.txt'), 'utf8'), '1\n');
        let st = (await statusJson(b)).sets[0]!.onApply!;
        assert.equal(st.result, 'exit 3');
        assert.equal(st.exitCode, 3);
        assert.equal(st.ok, false);
        assert.equal(st.lastLine, 'nginx: [emerg] bad\\tline');
        assert.equal(metric(b, 'fedsync_on_apply_failures_total'), 1);
        assert.equal(metric(b, 'fedsync_on_apply_last_exit_code'), 3);
        const failed = b.logLines().filter((l) => l.msg === 'on_apply hook failed');
        assert.equal(failed.length, 1);
        assert.equal(failed[0]!.level, 'warn');
        assert.equal(failed[0]!.lastLine, 'nginx: [emerg] bad\\tline');
        const human = assertOk(await b.fedsync(['status'])).stdout;
        assert.match(human, /on_apply {4}last run \d+s ago: FAILED \(exit 3\), 1 path; 1 runs, 1 failed/);
        assert.match(human, /last line: nginx: \[emerg\] bad\\tline/);

        const pidFile = join(fed.dir, 'hang.pid');
        configure(fed, b, [`on_apply = ${JSON.stringify(`echo $$ > ${pidFile}; echo waiting; sleep 30`)}`, 'on_apply_timeout = "1s"']);
        write(a, 'two.txt', '2\n');
        await a.run();
        const hung = await b.fedsync(['run']);
        assert.equal(hung.code, 0, describeResult(hung));
        assert.ok(hung.ms < 20_000, `the hook was cut short: ${hung.ms} ms`);
        assert.equal(readFileSync(b.abs('two.txt'), 'utf8'), '2\n');
        st = (await statusJson(b)).sets[0]!.onApply!;
        assert.equal(st.result, 'timeout');
        assert.equal(st.exitCode, -1);
        assert.equal(st.lastLine, 'waiting');
        assert.equal(metric(b, 'fedsync_on_apply_failures_total'), 2);
        assert.equal(metric(b, 'fedsync_on_apply_runs_total'), 2);
        assert.equal(metric(b, 'fedsync_on_apply_last_exit_code'), -1);
        const pgid = Number(readFileSync(pidFile, 'utf8'));
        assert.deepEqual(liveMembers(pgid), [], "the hook's process group was killed");
        const timedOut = b.logLines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('on_apply hook timed out'));
        assert.equal(timedOut.length, 1);
        assert.equal(timedOut[0]!.lastLine, 'waiting');
        assert.match(assertOk(await b.fedsync(['status'])).stdout, /FAILED \(timeout after 1s\)/);
      } finally {
        await fed.close();
      }
    });

    it('the watch daemon runs the hook once for a burst, and keeps syncing while it runs', async () => {
      const fed = await Federation.create(target, { nodes: ['a', 'b'], sync: { poll: '500ms', delay: '3s' } });
      const { out, command } = hookOut(fed, 'b');
      const [a, b] = fed.nodes as [FedNode, FedNode];
      configure(fed, b, [`on_apply = ${JSON.stringify(command)}`], 'lightweight');
      const watch = b.spawn(['watch'], { timeoutMs: 180_000 });
      try {
        await until('the first cycle of the daemon', () => b.logLines().some((l) => l.msg === 'cycle done'));
        const burst = ['b1.txt', 'b2.txt', 'sub/b3.txt', 'b4.txt', 'b5.txt', 'sub/b6.txt'];
        for (const p of burst.slice(0, 3)) write(a, p, p);
        await a.run();
        for (const p of burst.slice(3)) write(a, p, p);
        await a.run();
        await until('the hook run for the burst', () => hookRuns(out).some((r) => r.ended));
        await sleep(4_000); // a second run would come `delay` after the last batch
        const batches = b.logLines().filter((l) => l.msg === 'cycle done' && Number(l.applied) > 0).length;
        const runs = hookRuns(out);
        assert.ok(runs.length === 1 || runs.length < batches, `${runs.length} hook runs for ${batches} applying batches`);
        assert.deepEqual([...new Set(runs.flatMap((r) => r.changed))].sort(), [...burst, 'sub'].sort());

        writeFileSync(join(out, 'slow'), '8');
        write(a, 's1.txt', 's1');
        await a.run();
        await until('the slow hook to start', () => existsSync(join(out, 'running')));
        write(a, 's2.txt', 's2');
        await a.run();
        await until('s2.txt applied on b', () => existsSync(b.abs('s2.txt')));
        assert.ok(existsSync(join(out, 'running')), 'applied while the slow hook was still running');
        rmSync(join(out, 'slow'));
        await until('a hook run with s2.txt', () => hookRuns(out).some((r) => r.ended && r.changed.includes('s2.txt')), 60_000);
        assert.ok(!existsSync(join(out, 'overlap')), 'two hook runs never overlap');
        assert.deepEqual(hookRuns(out).flatMap((r) => r.changed).filter((p) => /^s\d/.test(p)).sort(), ['s1.txt', 's2.txt']);
      } finally {
        watch.kill('SIGTERM');
        const r = await watch.done;
        await fed.close();
        assert.equal(r.code, 0, describeResult(r));
      }
    });

    it('a bad on_apply_timeout is one error naming the key and the file', async () => {
      const fed = await Federation.create(target, { nodes: ['a'], init: false });
      try {
        const a = fed.nodes[0]!;
        configure(fed, a, ['on_apply = "true"', 'on_apply_timeout = "soon"']);
        const r = await a.fedsync(['run']);
        assert.equal(r.code, 2, describeResult(r));
        const lines = ownStderrLines(r);
        assert.equal(lines.length, 1, describeResult(r));
        assert.equal(lines[0], `fedsync: ${a.config}: sync[0].on_apply_timeout: "soon" is not a duration (use e.g. "500ms", "30s", "15m", "7d")`);
      } finally {
        await fed.close();
      }
    });
  });
}
