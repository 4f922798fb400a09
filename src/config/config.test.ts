import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CONFIG_ENV,
  ConfigError,
  DEFAULT_CONFIG_PATH,
  loadConfig,
  parseConfig,
  resolveConfigPath,
  type Config,
} from './index.js';

const FILE = '/etc/fedsync/fedsync.toml';

/** A valid minimal config with `extraTop` before the tables and `extraSet` in the first set. */
const minimal = (extraSet = '', extraTop = '', extraStore = '') => `
${extraTop}
[store]
url = "s3://bucket/fedsync"
${extraStore}

[[sync]]
name = "webroot"
path = "/srv/www"
${extraSet}
`;

/** Parses `text` expecting a ConfigError on `key` whose message contains every fragment. */
function fails(text: string, key: string | undefined, ...fragments: (string | RegExp)[]): ConfigError {
  let caught: unknown;
  try {
    parseConfig(text, FILE);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  const { message } = caught;
  assert.ok(message.startsWith(`${FILE}:`), `message names the file: ${message}`);
  assert.ok(!message.includes('\n'), `message is one line: ${JSON.stringify(message)}`);
  assert.equal(caught.file, FILE);
  assert.equal(caught.key, key, message);
  if (key !== undefined) assert.ok(message.includes(key), `message names ${key}: ${message}`);
  for (const f of fragments) {
    if (typeof f === 'string') assert.ok(message.includes(f), `expected ${JSON.stringify(f)} in: ${message}`);
    else assert.match(message, f);
  }
  return caught;
}

describe('parseConfig: valid configs', () => {
  it('fills every default', () => {
    const c = parseConfig(minimal(), FILE);
    assert.deepEqual(c, {
      file: FILE,
      node: hostname(),
      stateDir: '/var/lib/fedsync',
      logLevel: 'info',
      store: { url: 's3://bucket/fedsync' },
      sets: [
        {
          name: 'webroot',
          path: '/srv/www',
          mode: 'heavyweight',
          exclude: [],
          role: 'both',
          delay: 1_000,
          poll: 5_000,
          rescan: 600_000,
          settle: 2_000,
          maxDelete: { kind: 'fraction', value: 0.5 },
          history: 30 * 86_400_000,
          interval: 60_000,
          heartbeat: 600_000,
          nodeTimeout: 7 * 86_400_000,
          snapshotEvery: 3_600_000,
          gcGrace: 86_400_000,
          adopt: 'keep-both',
          allowExternalSymlinks: false,
          onApplyTimeout: 60_000,
        },
      ],
    } satisfies Config);
  });

  it('reads a full example: a heavyweight webroot and a lightweight config directory', () => {
    const c = parseConfig(
      `
# fedsync.toml
node = "web-1"
state_dir = "/var/lib/fedsync/"
log_file = "/var/log/fedsync/fedsync.log"
log_level = "debug"

[store]
url = "s3://acme-sites/prod/"
endpoint = "https://rgw.example.net:7480"
region = "eu-west-1"
force_path_style = true
passphrase_file = "/etc/fedsync/passphrase"

[[sync]]
name = "webroot"
path = "/var/www/html/wp-content/"
mode = "heavyweight"
exclude = ["cache/", "*.log", "!keep.log", "/uploads/tmp-*", "\\\\#literal", "[!a]x", "dir\\\\\\\\"]
settle = "5s"
max_delete = 500
owner = "www-data:www-data"
history = "14d"
interval = "30s"
heartbeat = "5m"
node_timeout = "3d"
snapshot_every = "2h"
gc_grace = "48h"
adopt = "remote"

[[sync]]
name = "nginx.conf-d"
path = "/etc/nginx/conf.d"
mode = "lightweight"
role = "subscribe"
delay = "500ms"
poll = "2s"
rescan = "1h30m"
max_delete = "12.5%"
owner = "0:0"
allow_external_symlinks = true
`,
      FILE,
    );
    assert.equal(c.node, 'web-1');
    assert.equal(c.stateDir, '/var/lib/fedsync');
    assert.equal(c.logFile, '/var/log/fedsync/fedsync.log');
    assert.equal(c.logLevel, 'debug');
    assert.deepEqual(c.store, {
      url: 's3://acme-sites/prod',
      endpoint: 'https://rgw.example.net:7480',
      region: 'eu-west-1',
      forcePathStyle: true,
      passphraseFile: '/etc/fedsync/passphrase',
    });
    const [web, conf] = c.sets;
    assert.ok(web && conf && c.sets.length === 2);
    assert.equal(web.path, '/var/www/html/wp-content');
    assert.equal(web.mode, 'heavyweight');
    assert.deepEqual(web.exclude, ['cache/', '*.log', '!keep.log', '/uploads/tmp-*', '\\#literal', '[!a]x', 'dir\\\\']);
    assert.deepEqual(web.maxDelete, { kind: 'count', value: 500 });
    assert.equal(web.settle, 5_000);
    assert.equal(web.owner, 'www-data:www-data');
    assert.equal(web.history, 14 * 86_400_000);
    assert.equal(web.interval, 30_000);
    assert.equal(web.heartbeat, 300_000);
    assert.equal(web.nodeTimeout, 3 * 86_400_000);
    assert.equal(web.snapshotEvery, 7_200_000);
    assert.equal(web.gcGrace, 48 * 3_600_000);
    assert.equal(web.adopt, 'remote');
    assert.equal(web.role, 'both');
    assert.equal(web.delay, 1_000); // default
    assert.equal(conf.name, 'nginx.conf-d');
    assert.equal(conf.mode, 'lightweight');
    assert.equal(conf.role, 'subscribe');
    assert.equal(conf.delay, 500);
    assert.equal(conf.poll, 2_000);
    assert.equal(conf.rescan, 5_400_000);
    assert.deepEqual(conf.maxDelete, { kind: 'fraction', value: 0.125 });
    assert.equal(conf.owner, '0:0');
    assert.equal(conf.allowExternalSymlinks, true);
    assert.equal(conf.adopt, 'keep-both');
  });

  it('normalises paths and store URLs', () => {
    const c = parseConfig(minimal('', 'state_dir = "/var//lib/./fedsync/"', '').replace('path = "/srv/www"', 'path = "/srv//www/x/../"'), FILE);
    assert.equal(c.stateDir, '/var/lib/fedsync');
    assert.equal(c.sets[0]!.path, '/srv/www');
    const url = (u: string) => parseConfig(minimal().replace('"s3://bucket/fedsync"', JSON.stringify(u)), FILE).store.url;
    assert.equal(url('s3://bucket'), 's3://bucket');
    assert.equal(url('s3://bucket/'), 's3://bucket');
    assert.equal(url('s3://my.bucket-1/a/b/'), 's3://my.bucket-1/a/b');
    assert.equal(url('file:///srv/fedsync-store/'), 'file:///srv/fedsync-store');
    assert.equal(url('file:///srv/my%20store'), 'file:///srv/my%20store');
  });

  it('accepts zero for delay and settle, and the owner forms', () => {
    const c = parseConfig(minimal('delay = "0s"\nsettle = "0ms"\nmax_delete = 0\nowner = "www-data"'), FILE);
    assert.equal(c.sets[0]!.delay, 0);
    assert.equal(c.sets[0]!.settle, 0);
    assert.deepEqual(c.sets[0]!.maxDelete, { kind: 'count', value: 0 });
    for (const owner of ['33', '33:33', 'www-data:33', 'nginx:www-data', '_apache']) {
      assert.equal(parseConfig(minimal(`owner = "${owner}"`), FILE).sets[0]!.owner, owner);
    }
  });

  it('defaults settle by mode: 2 s for a scan, the quiet period `delay` for a watcher', () => {
    assert.equal(parseConfig(minimal(''), FILE).sets[0]!.settle, 2_000);
    assert.equal(parseConfig(minimal('mode = "lightweight"'), FILE).sets[0]!.settle, 1_000);
    assert.equal(parseConfig(minimal('mode = "lightweight"\ndelay = "200ms"'), FILE).sets[0]!.settle, 200);
    assert.equal(parseConfig(minimal('mode = "lightweight"\ndelay = "200ms"\nsettle = "3s"'), FILE).sets[0]!.settle, 3_000);
  });
});

describe('parseConfig: errors', () => {
  it('reports a TOML syntax error with its line', () => {
    const e = fails('node = "a"\n\n[store\nurl = "s3://b"\n', undefined, 'TOML syntax error');
    assert.match(e.message, /^\/etc\/fedsync\/fedsync\.toml:3:\d+: /);
    fails('[store]\nurl = "s3://bucket"\n[store]\n', undefined, `${FILE}:3:`);
  });

  it('reports unknown keys at every level, with a suggestion for typos', () => {
    fails(minimal('', 'stat_dir = "/x"'), 'stat_dir', 'unknown key "stat_dir" (did you mean "state_dir"?)');
    fails(minimal('', 'stateDir = "/x"'), 'stateDir', '(did you mean "state_dir"?)');
    fails(minimal('', 'log-level = "info"'), 'log-level', '(did you mean "log_level"?)');
    fails(minimal('', '', 'regoin = "x"'), 'store.regoin', 'unknown key "store.regoin" (did you mean "region"?)');
    fails(minimal('dealy = "5s"'), 'sync[0].dealy', 'unknown key "sync[0].dealy" (did you mean "delay"?)');
    fails(minimal('nodetimeout = "5d"'), 'sync[0].nodetimeout', '(did you mean "node_timeout"?)');
    const e = fails(minimal('', 'colour = "blue"'), 'colour', 'unknown key "colour"');
    assert.ok(!e.message.includes('did you mean'), e.message);
    fails(minimal('[sync.extra]\nx = 1'), 'sync[0].extra', 'unknown key');
  });

  it('says where a key in the wrong table belongs', () => {
    // The classic: a top-level key written after [store] lands in the store table.
    fails(minimal('', '', 'log_level = "debug"'), 'store.log_level', 'log_level belongs at the top level');
    fails(minimal('passphrase_file = "/etc/p"'), 'sync[0].passphrase_file', 'belongs in the [store] table');
    fails(minimal('', 'exclude = ["x"]'), 'exclude', 'belongs in a [[sync]] table');
  });

  it('reports wrong types', () => {
    fails(minimal('', 'state_dir = 5'), 'state_dir', 'expected a string, got integer 5');
    fails(minimal('', 'node = true'), 'node', 'expected a string, got boolean true');
    fails(minimal('', '', 'force_path_style = "yes"'), 'store.force_path_style', 'expected true or false, got string "yes"');
    fails(minimal('allow_external_symlinks = 1'), 'sync[0].allow_external_symlinks', 'expected true or false');
    fails(minimal('exclude = "*.log"'), 'sync[0].exclude', 'expected an array of gitignore patterns, got string');
    fails(minimal('exclude = ["ok", 3]'), 'sync[0].exclude[1]', 'expected a string, got integer 3');
    fails(minimal('mode = 2024-01-01'), 'sync[0].mode', 'got date');
    fails('store = "s3://bucket"\n[[sync]]\nname = "a"\npath = "/a"\n', 'store', 'expected a table, got string');
    fails('[store]\nurl = "s3://bkt"\n[sync]\nname = "a"\npath = "/a"\n', 'sync', 'expected [[sync]] tables', 'single [sync] table');
    fails('sync = []\n[store]\nurl = "s3://bkt"\n', 'sync', 'at least one [[sync]] table is required');
    fails('sync = [1]\n[store]\nurl = "s3://bkt"\n', 'sync', 'expected [[sync]] tables');
  });

  it('reports missing required keys', () => {
    fails('[[sync]]\nname = "a"\npath = "/a"\n', 'store', 'required key is missing', '[store]');
    fails('[store]\nregion = "x"\n[[sync]]\nname = "a"\npath = "/a"\n', 'store.url', 'required key is missing');
    fails('[store]\nurl = "s3://bkt"\n', 'sync', 'required key is missing', '[[sync]]');
    fails('[store]\nurl = "s3://bkt"\n[[sync]]\npath = "/a"\n', 'sync[0].name', 'required key is missing');
    fails(minimal() + '[[sync]]\nname = "b"\n', 'sync[1].path', 'required key is missing');
  });

  it('reports a duplicate set name', () => {
    fails(minimal() + '[[sync]]\nname = "webroot"\npath = "/srv/other"\n', 'sync[1].name', '"webroot" is already the name of sync[0]');
  });

  it('reports relative paths', () => {
    fails(minimal().replace('"/srv/www"', '"srv/www"'), 'sync[0].path', '"srv/www" is not an absolute path');
    fails(minimal('', 'state_dir = "var/lib/fedsync"'), 'state_dir', 'not an absolute path');
    fails(minimal('', 'log_file = "./fedsync.log"'), 'log_file', 'not an absolute path');
    fails(minimal('', '', 'passphrase_file = "~/pass"'), 'store.passphrase_file', 'not an absolute path');
    fails(minimal().replace('"/srv/www"', '"/"'), 'sync[0].path', 'cannot be a sync set');
  });

  it('reports bad durations', () => {
    const text = minimal() + '[[sync]]\nname = "b"\npath = "/b"\ndelay = "5x"\n';
    const e = fails(text, 'sync[1].delay');
    assert.equal(e.message, `${FILE}: sync[1].delay: "5x" is not a duration (use e.g. "500ms", "30s", "15m", "7d")`);
    fails(minimal('poll = 5'), 'sync[0].poll', '5 is not a duration');
    fails(minimal('rescan = "10 m"'), 'sync[0].rescan', 'is not a duration');
    fails(minimal('history = "-1d"'), 'sync[0].history', 'is not a duration');
    fails(minimal('gc_grace = ""'), 'sync[0].gc_grace', 'is not a duration');
    fails(minimal('interval = "0s"'), 'sync[0].interval', 'must be longer than 0');
    for (const key of ['poll', 'rescan', 'history', 'heartbeat', 'node_timeout', 'snapshot_every', 'gc_grace']) {
      fails(minimal(`${key} = "0ms"`), `sync[0].${key}`, 'must be longer than 0');
    }
  });

  it('reads on_apply and reports a bad on_apply or on_apply_timeout', () => {
    const set = parseConfig(minimal('on_apply = "nginx -t && nginx -s reload"\non_apply_timeout = "15s"'), FILE).sets[0]!;
    assert.equal(set.onApply, 'nginx -t && nginx -s reload');
    assert.equal(set.onApplyTimeout, 15_000);
    assert.equal(parseConfig(minimal(), FILE).sets[0]!.onApply, undefined);
    const e = fails(minimal('on_apply = "true"\non_apply_timeout = "soon"'), 'sync[0].on_apply_timeout');
    assert.equal(e.message, `${FILE}: sync[0].on_apply_timeout: "soon" is not a duration (use e.g. "500ms", "30s", "15m", "7d")`);
    fails(minimal('on_apply_timeout = "0s"'), 'sync[0].on_apply_timeout', 'must be longer than 0');
    fails(minimal('on_apply = "  "'), 'sync[0].on_apply', 'must not be empty');
    fails(minimal('on_apply = ["nginx", "-s", "reload"]'), 'sync[0].on_apply', 'expected a string');
    fails(minimal('onapply = "x"'), 'sync[0].onapply', '(did you mean "on_apply"?)');
  });

  it('reports bad enum values', () => {
    fails(minimal('mode = "heavy"'), 'sync[0].mode', '"heavy" is not one of "heavyweight", "lightweight"');
    fails(minimal('role = "primary"'), 'sync[0].role', '"primary" is not one of "both", "publish", "subscribe"');
    fails(minimal('adopt = "mine"'), 'sync[0].adopt', 'is not one of "keep-both", "remote", "local"');
    fails(minimal('', 'log_level = "verbose"'), 'log_level', '"verbose" is not one of "trace", "debug"');
  });

  it('reports bad names, owners and max_delete', () => {
    fails(minimal().replace('"webroot"', '"-web"'), 'sync[0].name', 'is not a valid set name');
    fails(minimal().replace('"webroot"', '"a/b"'), 'sync[0].name', 'is not a valid set name');
    fails(minimal().replace('"webroot"', JSON.stringify('a'.repeat(65))), 'sync[0].name', 'is not a valid set name');
    fails(minimal('', 'node = "web 1"'), 'node', '"web 1" is not a valid node name');
    for (const owner of ['', 'a:b:c', 'user name', 'www-data:', ':33', '1abc']) {
      fails(minimal(`owner = ${JSON.stringify(owner)}`), 'sync[0].owner', 'is not an owner');
    }
    for (const v of ['"150%"', '"10"', '-1', '0.5', '"-5%"', 'true']) {
      fails(minimal(`max_delete = ${v}`), 'sync[0].max_delete', 'is neither a percentage');
    }
  });

  it('reports bad gitignore patterns, naming the element', () => {
    const bad: [string, string][] = [
      ['', 'is empty'],
      ['   ', 'is empty'],
      ['#cache', 'is a comment'],
      ['!', 'negates nothing'],
      ['cache\\', 'lone backslash'],
      ['cache\\\\\\', 'lone backslash'],
      ['[abc', 'unclosed "["'],
      ['a[!]', 'unclosed "["'],
      ['a\nb', 'line break'],
    ];
    for (const [p, why] of bad) {
      fails(minimal(`exclude = ["ok/", ${JSON.stringify(p)}]`), 'sync[0].exclude[1]', 'is not a valid gitignore pattern', why);
    }
  });

  it('reports bad store URLs and endpoints', () => {
    const withUrl = (u: string) => minimal().replace('"s3://bucket/fedsync"', JSON.stringify(u));
    for (const u of ['https://bucket.s3.amazonaws.com', 's3://', 's3:/bucket', 's3://b', 's3://bucket/a//b', 's3://bucket/../x', 'file://host/srv', 'file:srv', 'bucket/prefix']) {
      fails(withUrl(u), 'store.url', 'is not a store URL', '"s3://bucket/prefix" or "file:///absolute/dir"');
    }
    fails(minimal('', '', 'endpoint = "minio:9000"'), 'store.endpoint', 'is not an http(s) URL');
    fails(minimal('', '', 'endpoint = "ftp://minio"'), 'store.endpoint', 'is not an http(s) URL');
    fails(minimal('', '', 'region = ""'), 'store.region', 'must not be empty');
    assert.equal(parseConfig(minimal('', '', 'endpoint = "http://127.0.0.1:9000"'), FILE).store.endpoint, 'http://127.0.0.1:9000');
  });

  it('rejects overlapping set paths', () => {
    const two = (a: string, b: string) =>
      `[store]\nurl = "s3://bucket"\n[[sync]]\nname = "a"\npath = "${a}"\n[[sync]]\nname = "b"\npath = "${b}"\n`;
    fails(two('/srv/www', '/srv/www/'), 'sync[1].path', 'is the same as sync[0].path "/srv/www"');
    fails(two('/srv/www', '/srv/www/conf'), 'sync[1].path', '"/srv/www/conf" is inside sync[0].path "/srv/www"');
    fails(two('/srv/www/conf', '/srv/www'), 'sync[1].path', '"/srv/www" contains sync[0].path "/srv/www/conf"');
    assert.equal(parseConfig(two('/srv/www', '/srv/www2'), FILE).sets.length, 2);
  });

  it('rejects a set inside the state directory and fedsync files inside a set', () => {
    fails(minimal('', 'state_dir = "/srv"'), 'sync[0].path', '"/srv/www" is inside state_dir "/srv"');
    fails(minimal('', 'state_dir = "/srv/www"'), 'sync[0].path', 'is inside state_dir');
    fails(minimal('', 'state_dir = "/srv/www/.state"'), 'state_dir', '"/srv/www/.state" is inside sync[0].path "/srv/www"');
    fails(minimal('', 'log_file = "/srv/www/fedsync.log"'), 'log_file', 'is inside sync[0].path');
    fails(minimal('', '', 'passphrase_file = "/srv/www/.pass"'), 'store.passphrase_file', 'is inside sync[0].path');
    fails(minimal().replace('"s3://bucket/fedsync"', '"file:///srv/www/store"'), 'store.url', 'is inside sync[0].path');
    fails(minimal().replace('"s3://bucket/fedsync"', '"file:///srv"'), 'sync[0].path', 'is inside store.url');
  });
});

describe('loadConfig', () => {
  let dir: string;
  const saved = process.env[CONFIG_ENV];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedsync-config-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc', 'c.toml'), minimal('', 'node = "from-c"'));
    writeFileSync(join(dir, 'etc', 'env.toml'), minimal('', 'node = "from-env"'));
    writeFileSync(join(dir, 'etc', 'broken.toml'), minimal('dealy = "1s"'));
  });
  after(() => {
    if (saved === undefined) delete process.env[CONFIG_ENV];
    else process.env[CONFIG_ENV] = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('resolves -c, then $FEDSYNC_CONFIG, then the default path', () => {
    assert.equal(resolveConfigPath('/a.toml', { [CONFIG_ENV]: '/b.toml' }), '/a.toml');
    assert.equal(resolveConfigPath(undefined, { [CONFIG_ENV]: '/b.toml' }), '/b.toml');
    assert.equal(resolveConfigPath(undefined, { [CONFIG_ENV]: '' }), DEFAULT_CONFIG_PATH);
    assert.equal(resolveConfigPath(undefined, {}), '/etc/fedsync/fedsync.toml');
    assert.equal(resolveConfigPath('rel.toml', {}), join(process.cwd(), 'rel.toml'));
  });

  it('reads -c over $FEDSYNC_CONFIG, and $FEDSYNC_CONFIG when there is no -c', () => {
    process.env[CONFIG_ENV] = join(dir, 'etc', 'env.toml');
    const c = loadConfig(join(dir, 'etc', 'c.toml'));
    assert.equal(c.node, 'from-c');
    assert.equal(c.file, join(dir, 'etc', 'c.toml'));
    assert.equal(loadConfig(relative(process.cwd(), join(dir, 'etc', 'c.toml'))).file, join(dir, 'etc', 'c.toml'));
    const e = loadConfig();
    assert.equal(e.node, 'from-env');
    assert.equal(e.file, join(dir, 'etc', 'env.toml'));
  });

  it('falls back to the default path', () => {
    delete process.env[CONFIG_ENV];
    try {
      assert.equal(loadConfig().file, DEFAULT_CONFIG_PATH);
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.file, DEFAULT_CONFIG_PATH);
      assert.ok(e.message.startsWith(`${DEFAULT_CONFIG_PATH}: `), e.message);
    }
  });

  it('says how to create a missing config file', () => {
    const file = join(dir, 'nope', 'fedsync.toml');
    assert.throws(() => loadConfig(file), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.file, file);
      assert.ok(e.message.startsWith(`${file}: config file does not exist`), e.message);
      assert.match(e.message, /fedsync init/);
      assert.match(e.message, /README/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  });

  it('reports an unreadable config file and errors inside the file', () => {
    assert.throws(() => loadConfig(join(dir, 'etc')), (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${join(dir, 'etc')}: cannot read config file`));
    assert.throws(
      () => loadConfig(join(dir, 'etc', 'broken.toml')),
      (e: unknown) => e instanceof ConfigError && e.message === `${join(dir, 'etc', 'broken.toml')}: unknown key "sync[0].dealy" (did you mean "delay"?)`,
    );
  });
});
