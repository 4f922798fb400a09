import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, formatLine, reopenOnSighup } from './logger.js';

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('createLogger', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedsync-log-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes JSON lines to a file, making its directory, at the configured level', () => {
    const file = join(dir, 'sub', 'dir', 'fedsync.log');
    const log = createLogger({ file, level: 'info' });
    log.debug('not written');
    log.info({ set: 'webroot', files: 3 }, 'published');
    log.child({ set: 'config' }).warn('slow store');
    const [a, b, ...rest] = lines(file);
    assert.equal(rest.length, 0);
    assert.equal(a!.level, 'info');
    assert.equal(a!.msg, 'published');
    assert.equal(a!.set, 'webroot');
    assert.equal(a!.files, 3);
    assert.match(String(a!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(a!.pid, process.pid);
    assert.equal(b!.level, 'warn');
    assert.equal(b!.set, 'config');
  });

  it('redacts secrets at the top level and one level down', () => {
    const file = join(dir, 'secrets.log');
    const log = createLogger({ file, level: 'info' });
    log.info(
      {
        passphrase: 'hunter2',
        s3: { region: 'eu-west-1', credentials: { accessKeyId: 'AKIA', secretAccessKey: 'SECRET1' } },
        aws: { secretAccessKey: 'SECRET2' },
        headers: { authorization: 'Bearer SECRET3' },
        db: { password: 'SECRET4' },
      },
      'connecting',
    );
    const text = readFileSync(file, 'utf8');
    for (const secret of ['hunter2', 'SECRET1', 'SECRET2', 'SECRET3', 'SECRET4', 'AKIA']) {
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    }
    const [rec] = lines(file);
    assert.equal(rec!.passphrase, '[redacted]');
    assert.deepEqual(rec!.s3, { region: 'eu-west-1', credentials: '[redacted]' });
    assert.deepEqual(rec!.aws, { secretAccessKey: '[redacted]' });
  });

  it('reopens the file after logrotate renamed it', () => {
    const file = join(dir, 'rotate.log');
    const log = createLogger({ file, level: 'info' });
    log.info('one');
    renameSync(file, `${file}.1`);
    log.info('two'); // still the old, renamed file
    assert.ok(!existsSync(file));
    log.reopen();
    log.info('three');
    assert.deepEqual(lines(`${file}.1`).map((r) => r.msg), ['one', 'two']);
    assert.deepEqual(lines(file).map((r) => r.msg), ['three']);
  });

  it('reopens on SIGHUP once the handler is installed, until it is removed', () => {
    const file = join(dir, 'hup.log');
    const log = createLogger({ file, level: 'info' });
    const before = process.listenerCount('SIGHUP');
    const remove = reopenOnSighup(log);
    assert.equal(process.listenerCount('SIGHUP'), before + 1);
    log.info('one');
    renameSync(file, `${file}.1`);
    process.emit('SIGHUP', 'SIGHUP');
    log.info('two');
    remove();
    assert.equal(process.listenerCount('SIGHUP'), before);
    assert.deepEqual(lines(`${file}.1`).map((r) => r.msg), ['one']);
    assert.deepEqual(lines(file).map((r) => r.msg), ['two']);
  });

  it('reopen is harmless on stderr', () => {
    const log = createLogger({ level: 'silent' });
    log.reopen();
    const pretty = createLogger({ level: 'silent', pretty: true });
    pretty.reopen();
    pretty.info('not written');
  });

  it('writes JSON, not pretty lines, when a file is set', () => {
    const file = join(dir, 'notpretty.log');
    createLogger({ file, level: 'info', pretty: true }).info({ n: 1 }, 'hello');
    assert.equal(lines(file)[0]!.msg, 'hello');
  });
});

describe('formatLine', () => {
  it('writes time, level, message and fields', () => {
    const t = new Date(2025, 0, 2, 3, 4, 5);
    const line = formatLine(
      JSON.stringify({
        level: 'info',
        time: t.toISOString(),
        msg: 'published',
        set: 'webroot',
        files: 3,
        path: 'a b.txt',
        err: { type: 'Error', message: 'boom', stack: 'Error: boom\n at x' },
        vv: { n1: 2 },
      }) + '\n',
    );
    assert.equal(line, '03:04:05 info  published set=webroot files=3 path="a b.txt" err=boom vv={"n1":2}\n');
  });

  it('escapes control characters in messages and fields: a name cannot break or restyle the line', () => {
    const line = formatLine(JSON.stringify({ level: 'warn', time: new Date(2025, 0, 2, 3, 4, 5).toISOString(), msg: 'skipped', path: 'new\nline\x1b[31m.txt', dir: 'bell\x07', back: 'a\\b', obj: { p: 'c1\u009b' } }) + '\n');
    assert.equal(line, '03:04:05 warn  skipped path="new\\nline\\x1b[31m.txt" dir="bell\\x07" back="a\\\\b" obj={"p":"c1\\u{009b}"}\n');
    assert.doesNotMatch(line.slice(0, -1), /[\x00-\x1f\x7f-\x9f]/);
  });

  it('passes through what is not JSON', () => {
    assert.equal(formatLine('plain text'), 'plain text\n');
  });
});
