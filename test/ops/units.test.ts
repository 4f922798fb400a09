// The shipped service files: the systemd units pass `systemd-analyze verify` (with the
// generated ReadWritePaths drop-in beside them) and say what the operations guide promises;
// the logrotate file rotates a real watch daemon's log and the daemon, sent SIGHUP by the
// postrotate script, writes on into the new file.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { BIN, expectCode, makeNode, REPO, tempDir } from './support.js';

const CRON = join(REPO, 'cron');
const UNITS = ['fedsync-run.service', 'fedsync-run.timer', 'fedsync-watch.service'];

function which(cmd: string): string | null {
  const r = spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** `[Section] Key=value` pairs of a unit file, every value of a repeated key kept. */
function directives(file: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) section = s[1]!;
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (kv) out.set(`${section}.${kv[1]}`, [...(out.get(`${section}.${kv[1]}`) ?? []), kv[2]!]);
  }
  return out;
}

describe('systemd units', () => {
  const analyze = which('systemd-analyze');
  const skip = analyze ? false : 'systemd-analyze is missing: `apt-get install -y systemd` to run this test';

  it('pass systemd-analyze verify, with the drop-in from `fedsync cron --systemd`', { skip }, (t) => {
    const dir = tempDir(t);
    const node = makeNode(dir, { node: 'web1', sets: [{ name: 'uploads' }, { name: 'config', mode: 'lightweight' }] });
    const units = join(dir, 'units');
    mkdirSync(units);
    for (const u of UNITS) copyFileSync(join(CRON, u), join(units, u));
    const dropIn = expectCode(node.run(['cron', '--systemd']), 0, 'cron --systemd').stdout;
    for (const svc of ['fedsync-run.service', 'fedsync-watch.service']) {
      mkdirSync(join(units, `${svc}.d`));
      writeFileSync(join(units, `${svc}.d`, 'paths.conf'), dropIn);
    }
    const r = spawnSync(analyze!, ['verify', ...UNITS.map((u) => join(units, u))], { encoding: 'utf8', cwd: units });
    assert.equal(r.status, 0, r.stderr);
    // Unknown keys and bad values are only warnings to systemd: they must not appear either.
    assert.equal(r.stderr.trim(), '', r.stderr);

    // The shipped example drop-in too.
    writeFileSync(join(units, 'fedsync-run.service.d', 'paths.conf'), readFileSync(join(CRON, 'fedsync-paths.conf')));
    const ex = spawnSync(analyze!, ['verify', join(units, 'fedsync-run.service')], { encoding: 'utf8', cwd: units });
    assert.equal(ex.status, 0, ex.stderr);
    assert.equal(ex.stderr.trim(), '', ex.stderr);
  });

  it('a bad key would be caught (the check is not vacuous)', { skip }, (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'fedsync-run.service'), readFileSync(join(CRON, 'fedsync-run.service'), 'utf8') + 'ProtectSytem=strict\n');
    const r = spawnSync(analyze!, ['verify', join(dir, 'fedsync-run.service')], { encoding: 'utf8' });
    assert.match(r.stderr, /Unknown key 'ProtectSytem'/);
  });

  it('say what the guide promises', () => {
    const run = directives(join(CRON, 'fedsync-run.service'));
    const timer = directives(join(CRON, 'fedsync-run.timer'));
    const watch = directives(join(CRON, 'fedsync-watch.service'));
    assert.deepEqual(run.get('Service.Type'), ['oneshot']);
    assert.deepEqual(run.get('Service.ExecStart'), ['/usr/bin/env fedsync run']);
    assert.deepEqual(timer.get('Timer.OnCalendar'), ['minutely']);
    assert.deepEqual(timer.get('Timer.Persistent'), ['true']);
    assert.deepEqual(timer.get('Install.WantedBy'), ['timers.target']);
    assert.deepEqual(watch.get('Service.Type'), ['simple']);
    assert.deepEqual(watch.get('Service.ExecStart'), ['/usr/bin/env fedsync watch']);
    assert.deepEqual(watch.get('Service.Restart'), ['on-failure']);
    assert.deepEqual(watch.get('Service.ExecReload'), ['/bin/kill -HUP $MAINPID']);
    for (const unit of [run, watch]) {
      for (const [k, v] of [
        ['ProtectSystem', 'strict'],
        ['ProtectHome', 'read-only'],
        ['PrivateTmp', 'yes'],
        ['NoNewPrivileges', 'yes'],
        ['StateDirectory', 'fedsync'],
        ['StateDirectoryMode', '0700'],
        ['LogsDirectory', 'fedsync'],
      ]) {
        assert.deepEqual(unit.get(`Service.${k}`), [v], k);
      }
      // Writing into www-data's webroot as root, and giving files their owner.
      assert.deepEqual(unit.get('Service.CapabilityBoundingSet'), ['CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH']);
    }
  });
});

describe('logrotate', () => {
  const logrotate = which('logrotate');
  const skip = logrotate ? false : 'logrotate is missing: `apt-get install -y logrotate` to run this test';

  it('rotates the watch daemon log and the daemon reopens it on SIGHUP', { skip }, async (t) => {
    const dir = tempDir(t);
    const node = makeNode(dir, { node: 'web1', sets: [{ name: 'config', mode: 'lightweight', extra: 'poll = "200ms"\n' }] });
    const log = join(node.dir, 'log', 'fedsync.log');
    writeFileSync(node.config, readFileSync(node.config, 'utf8').replace('log_file =', 'log_level = "debug"\nlog_file ='));
    expectCode(node.run(['init']), 0, 'init');
    const pidfile = join(dir, 'fedsync-watch.pid');
    // The shipped file, pointed at this test's log and pid file; nothing else changed.
    const conf = readFileSync(join(CRON, 'fedsync.logrotate'), 'utf8')
      .replace('/var/log/fedsync/*.log /var/log/fedsync.log', log)
      .replaceAll('/run/fedsync-watch.pid', pidfile)
      .replace(/create 0640 root adm/, 'create 0640');
    assert.notEqual(conf, readFileSync(join(CRON, 'fedsync.logrotate'), 'utf8'));
    const confFile = join(dir, 'logrotate.conf');
    writeFileSync(confFile, conf, { mode: 0o644 });

    const daemon = spawn(process.execPath, [BIN, '-c', node.config, 'watch'], { stdio: 'ignore' });
    t.after(() => daemon.kill('SIGKILL'));
    writeFileSync(pidfile, `${daemon.pid}\n`);
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('"watching"'), 'the daemon to log that it watches');

    const r = spawnSync(logrotate!, ['-f', '--state', join(dir, 'logrotate.state'), confFile], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(`${log}.1`), 'the old log was renamed');
    assert.match(readFileSync(`${log}.1`, 'utf8'), /"watching"/);
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('log file reopened'), 'the daemon to write into the new log');

    daemon.kill('SIGTERM');
    await new Promise((res) => daemon.once('exit', res));
    assert.match(readFileSync(log, 'utf8'), /"stopped"/, 'the last lines go to the new file too');
  });
});

async function waitFor(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
