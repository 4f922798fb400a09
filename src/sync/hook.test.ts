import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { SetConfig } from '../config/types.js';
import { ChangedPaths } from './changed.js';
import { readHookRecord, runHook } from './hook.js';
import { HookRunner } from './hook-runner.js';

const dir = mkdtempSync(join(tmpdir(), 'fedsync-hook-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
const set = (onApply: string, timeout = 10_000): SetConfig => ({ name: 's', path: dir, onApply, onApplyTimeout: timeout } as SetConfig);

describe('ChangedPaths', () => {
  it('writes every path NUL-terminated, in chunks, once each, and nothing when none changed', () => {
    const empty = new ChangedPaths(join(dir, 'lists'));
    empty.close();
    assert.ok(!existsSync(empty.file));
    const list = new ChangedPaths(join(dir, 'lists'));
    const names = Array.from({ length: 20_000 }, (_, i) => `d/${i}\nname.txt`);
    for (const n of names) list.add(n);
    list.add(names[0]!);
    list.close();
    assert.equal(list.count, names.length);
    assert.equal(readFileSync(list.file, 'utf8'), names.map((n) => `${n}\0`).join(''));
    list.remove();
    assert.ok(!existsSync(list.file));
  });
});

describe('runHook', () => {
  const state = join(dir, 'state');

  it('gives the environment and records the exit status and the last output line, escaped', async () => {
    const run = await runHook(state, set('printf "%s|%s|%s|\\n" "$FEDSYNC_SET" "$FEDSYNC_ROOT" "$PWD"; printf "last\\033[31m\\n\\n" >&2; exit 4'), '/x/list', 2, log);
    assert.equal(run?.result, 'exit 4');
    assert.equal(run?.exitCode, 4);
    assert.equal(run?.ok, false);
    assert.equal(run?.lastLine, 'last\\x1b[31m');
    const ok = await runHook(state, set('echo "$FEDSYNC_SET|$FEDSYNC_ROOT|$FEDSYNC_CHANGED|$(pwd)"'), '/x/list', 2, log);
    assert.equal(ok?.lastLine, `s|${dir}|/x/list|${dir}`);
    assert.deepEqual({ ...readHookRecord(state, 's'), last: null }, { version: 1, set: 's', runs: 2, failures: 1, last: null });
  });

  it('returns when the command exits, leaving what it started in the background running', async () => {
    const pidFile = join(dir, 'bg.pid');
    const started = Date.now();
    const run = await runHook(state, set(`sleep 5 & echo $! > ${pidFile}; echo restarted`), '/x/list', 1, log);
    assert.equal(run?.result, 'exit 0');
    assert.equal(run?.lastLine, 'restarted');
    assert.ok(Date.now() - started < 3_000, 'not held by the pipes the background process keeps open');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    process.kill(pid, 0);
    process.kill(pid, 'SIGKILL');
  });

  it('kills the process group at the timeout, and reports a command that cannot start', async () => {
    const started = Date.now();
    const run = await runHook(state, set('echo started; sleep 20 & sleep 20', 300), '/x/list', 1, log);
    assert.equal(run?.result, 'timeout');
    assert.equal(run?.exitCode, -1);
    assert.equal(run?.lastLine, 'started');
    assert.ok(Date.now() - started < 5_000);
    const missing = await runHook(state, { ...set('true'), path: join(dir, 'no-such-dir') }, '/x/list', 1, log);
    assert.equal(missing?.exitCode, -1);
    assert.match(missing?.result ?? '', /^failed to start: /);
  });
});

describe('HookRunner', () => {
  it('runs once for cycles close together, never for a cycle that changed nothing, and removes the lists', async () => {
    const state = join(dir, 'runner');
    const out = join(dir, 'runs');
    const runner = new HookRunner(state, set(`cat "$FEDSYNC_CHANGED" >> ${out}; echo >> ${out}`), log, 150);
    runner.begin();
    runner.end();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!existsSync(out), 'no run for a cycle that changed nothing');
    for (const p of ['a', 'b']) {
      runner.begin().add(p);
      runner.end();
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 600));
    runner.begin().add('c');
    runner.end();
    await runner.flush();
    assert.equal(readFileSync(out, 'utf8'), 'a\0b\0\nc\0\n');
    assert.deepEqual(readdirSync(join(state, 's', 'on-apply')), []);
  });
});
