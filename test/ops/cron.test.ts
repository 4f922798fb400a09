// `fedsync cron`: the cron.d entries follow the config (heavyweight sets → one `run` line a
// minute, lightweight sets → one `@reboot` watch line), `--install` writes them atomically
// with mode 0644 and leaves an unchanged file alone, and every line is valid cron and shell.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { cronTable, systemdDropIn } from '../../src/ops/cron.js';
import { BIN, expectCode, makeNode, REPO, tempDir } from './support.js';

/** The entries of a cron.d file: [schedule, user, command]; environment lines checked too. */
function cronEntries(text: string): { schedule: string; user: string; command: string }[] {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    if (/^[A-Z_]+=\S*$/.test(line)) continue;
    const m = /^(@reboot|(?:\S+ ){4}\S+) (\S+) (.+)$/.exec(line);
    assert.ok(m, `not a cron.d entry: ${line}`);
    if (m[1] !== '@reboot') for (const f of m[1]!.split(' ')) assert.match(f, /^(\*|\d+)(\/\d+)?$/, `bad cron field in ${line}`);
    // The shell must be able to parse the command (cron runs it with sh -c).
    const sh = spawnSync('/bin/sh', ['-n', '-c', m[3]!.replace(/\\%/g, '%')]);
    assert.equal(sh.status, 0, `sh cannot parse: ${m[3]}\n${sh.stderr}`);
    out.push({ schedule: m[1]!, user: m[2]!, command: m[3]! });
  }
  return out;
}

describe('fedsync cron', () => {
  it('prints a run line for heavyweight sets and an @reboot watch line for lightweight ones', (t) => {
    const dir = tempDir(t);
    const node = makeNode(dir, { node: 'web1', sets: [{ name: 'uploads' }, { name: 'media' }, { name: 'config', mode: 'lightweight' }] });
    const r = expectCode(node.run(['cron']), 0, 'cron');
    const entries = cronEntries(r.stdout);
    assert.equal(entries.length, 2, r.stdout);
    const log = join(node.dir, 'log', 'fedsync.log');
    assert.deepEqual(entries[0], { schedule: '* * * * *', user: 'root', command: `${BIN} -c ${node.config} run >>${log} 2>&1` });
    assert.equal(entries[1]!.schedule, '@reboot');
    assert.equal(entries[1]!.command, `echo $$ >/run/fedsync-watch.pid; exec ${BIN} -c ${node.config} watch >>${log} 2>&1`);
    // cron's own PATH is /usr/bin:/bin: `#!/usr/bin/env node` must find the node that ran `fedsync cron`.
    const path = /^PATH=(.*)$/m.exec(r.stdout)?.[1]?.split(':') ?? [];
    assert.equal(path[0], join(process.execPath, '..'));
    for (const d of ['/usr/local/bin', '/usr/bin', '/bin']) assert.ok(path.includes(d), `PATH has ${d}`);
  });

  it('only the lines the config needs', (t) => {
    const dir = tempDir(t);
    const heavy = makeNode(dir, { node: 'a', sets: [{ name: 'uploads' }] });
    const light = makeNode(dir, { node: 'b', sets: [{ name: 'config', mode: 'lightweight' }] });
    assert.deepEqual(cronEntries(expectCode(heavy.run(['cron']), 0, 'cron').stdout).map((e) => e.schedule), ['* * * * *']);
    assert.deepEqual(cronEntries(expectCode(light.run(['cron']), 0, 'cron').stdout).map((e) => e.schedule), ['@reboot']);
  });

  it('--install writes /etc/cron.d/fedsync atomically with mode 0644, once', (t) => {
    const dir = tempDir(t);
    const cronDir = join(dir, 'etc', 'cron.d');
    const node = makeNode(dir, { node: 'web1', sets: [{ name: 'uploads' }] });
    const env = { FEDSYNC_CRON_DIR: cronDir };
    const first = expectCode(node.run(['cron', '--install'], env), 0, 'install');
    const file = join(cronDir, 'fedsync');
    assert.match(first.stdout, new RegExp(`installed ${file}`));
    assert.equal(statSync(file).mode & 0o777, 0o644);
    assert.equal(readFileSync(file, 'utf8'), expectCode(node.run(['cron']), 0, 'print').stdout, 'installs exactly what it prints');
    assert.ok(existsSync(join(node.dir, 'log')), 'the log directory the entries append to exists');
    const before = statSync(file);

    const again = expectCode(node.run(['cron', '--install'], env), 0, 'install again');
    assert.match(again.stdout, /up to date; not rewritten/);
    const after = statSync(file);
    assert.equal(after.ino, before.ino, 'an unchanged file is not replaced');
    assert.equal(after.mtimeMs, before.mtimeMs);

    // A lightweight set added to the config: the next install adds its line (a new file, renamed in).
    writeFileSync(node.config, readFileSync(node.config, 'utf8') + `\n[[sync]]\nname = "config"\npath = "${node.root('uploads')}/../config"\nmode = "lightweight"\n`);
    spawnSync('mkdir', ['-p', join(node.root('uploads'), '..', 'config')]);
    const updated = expectCode(node.run(['cron', '--install'], env), 0, 'install after a change');
    assert.match(updated.stdout, /installed/);
    assert.match(updated.stdout, /setsid -f \/bin\/sh -c/, 'says how to start the daemon without a reboot');
    assert.deepEqual(cronEntries(readFileSync(file, 'utf8')).map((e) => e.schedule), ['* * * * *', '@reboot']);
    assert.notEqual(statSync(file).ino, before.ino);

    assert.match(expectCode(node.run(['cron', '--uninstall'], env), 0, 'uninstall').stdout, /removed/);
    assert.equal(existsSync(file), false);
    assert.match(expectCode(node.run(['cron', '--uninstall'], env), 0, 'uninstall again').stdout, /was not installed/);
  });

  it('says so in one line when the cron directory is not writable', (t) => {
    const dir = tempDir(t);
    const node = makeNode(dir, { node: 'web1', sets: [{ name: 'uploads' }] });
    writeFileSync(join(dir, 'not-a-dir'), '');
    const r = expectCode(node.run(['cron', '--install'], { FEDSYNC_CRON_DIR: join(dir, 'not-a-dir') }), 1, 'install into a file');
    assert.match(r.stderr, /^fedsync: cannot write .*not-a-dir/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('quotes paths with spaces and escapes % for cron', () => {
    const config = parseConfig(
      `node = "n"\nstate_dir = "/var/lib/fedsync"\nlog_file = "/var/log/fed sync/%d.log"\n[store]\nurl = "file:///srv/store"\n[[sync]]\nname = "a"\npath = "/srv/a"\n`,
      '/etc/fed sync/fedsync.toml',
    );
    const { text } = cronTable(config, '/opt/my tools/fedsync', '/usr/bin/node');
    const [entry] = cronEntries(text);
    assert.equal(entry!.command, `'/opt/my tools/fedsync' -c '/etc/fed sync/fedsync.toml' run >>'/var/log/fed sync/\\%d.log' 2>&1`);
  });

  it('warns when a lightweight set would log to an unreopenable stderr', () => {
    const config = parseConfig(`[store]\nurl = "file:///srv/store"\n[[sync]]\nname = "c"\npath = "/etc/app"\nmode = "lightweight"\n`, '/etc/fedsync/fedsync.toml');
    const t = cronTable(config, '/usr/local/bin/fedsync', '/usr/bin/node');
    assert.match(t.warnings.join('\n'), /log_file is not set/);
    assert.match(t.text, />>\/var\/log\/fedsync\/fedsync\.log 2>&1/);
  });

  it('the shipped template cron/fedsync.cron is valid too', () => {
    const entries = cronEntries(readFileSync(join(REPO, 'cron', 'fedsync.cron'), 'utf8'));
    assert.deepEqual(entries.map((e) => [e.schedule, e.user]), [['* * * * *', 'root'], ['@reboot', 'root']]);
    assert.match(entries[0]!.command, /^fedsync run >>\/var\/log\/fedsync\/fedsync\.log 2>&1$/);
  });

  it('--systemd prints the ReadWritePaths drop-in for the roots', (t) => {
    const dir = tempDir(t);
    const node = makeNode(dir, { node: 'web1', sets: [{ name: 'uploads' }, { name: 'config', mode: 'lightweight' }] });
    const r = expectCode(node.run(['cron', '--systemd']), 0, 'cron --systemd');
    for (const p of [node.root('uploads'), node.root('config'), node.stateDir, join(dir, 'store')]) assert.match(r.stdout, new RegExp(`^ReadWritePaths=${p}$`, 'm'));
    assert.match(r.stdout, new RegExp(`^RequiresMountsFor=${node.root('uploads')}$`, 'm'));
    const config = parseConfig(`[store]\nurl = "s3://bucket/prefix"\n[[sync]]\nname = "a"\npath = "/srv/my site"\n`, '/etc/fedsync/fedsync.toml');
    assert.match(systemdDropIn(config), /^ReadWritePaths="\/srv\/my site"$/m);
    assert.doesNotMatch(systemdDropIn(config), /\/var\/lib\/fedsync/, 'the default state dir is the unit\'s StateDirectory');
  });
});
