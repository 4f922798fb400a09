// The heavyweight benchmark suite: fedsync against rclone (the anchor) on one machine, one
// real S3 server on loopback behind the request-counting proxy (test/support/proxy.ts).
//
//   npx tsc -p tsconfig.json      # bin/fedsync runs dist/ (copied aside for the run)
//   node --import tsx bench/run.ts --files 10000 [--server rgw|s3rver] [--big-mb 2048]
//     [--out docs/benchmarks.md] [--dir /tmp/fedsync-bench] [--seed 1] [--repeat 3]
//     [--nodes 2,5,10] [--nodes-files 200] [--churn 0.01] [--rclone-flags '...']
//     [--bin path/to/fedsync] [--no-docs] [--keep]
//
// --keep leaves the run directory and the S3 server up (the nodes' configs rewritten to talk
// to it directly), for profiling: `node --cpu-prof <bin> -c <run>/A/fedsync.toml run`.
// Check `uptime` first: on a loaded machine the times mean little (the load is recorded).
//
// Cases, each measured for rclone and fedsync in the same run (wall time, requests by kind,
// peak RSS of the process):
//   upload      initial upload (rclone sync) / initial publish (`fedsync run` on node A)
//   housekeep   `fedsync housekeep` on A right after (snapshot + bundles when due)
//   download    rclone sync into an empty directory / bootstrap of an empty node B
//   idle        nothing changed: rclone sync vs `fedsync run` (after two settling rounds), with
//               `rsync -an` over two identical trees and a `find -printf` stat walk as floors
//   one-*       one file changed: publish on A / receive on B (rclone: sync up / sync down)
//   churn-*     1% of the files changed (½ rewritten, ¼ deleted, ¼ added), publish / receive
//   big-*       one --big-mb file: rclone copyto both ways vs fedsync publish + B's run
//   nodes       idle requests per node per cycle with 2, 5 and 10 nodes on a small tree
// The tree is generated once per (files, seed) and cached under --dir (see bench/tree.ts).
// The results are printed and written into --out under "Heavyweight sync against rclone".
import { execFileSync, execSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startProxy, type Proxy } from '../test/support/proxy.js';
import { createBucket, type S3Target } from '../test/support/s3.js';
import { startS3rver } from '../test/support/s3rver.js';
import { measure, median, type Sample } from './measure.js';
import { report, type BenchResult, type Row } from './report.js';
import { applyOps, churn, ensureBigFile, ensureTree, oneChange, planTree } from './tree.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));

const { values: args } = parseArgs({
  options: {
    files: { type: 'string', default: '10000' },
    server: { type: 'string' },
    'big-mb': { type: 'string', default: '2048' },
    out: { type: 'string', default: join(REPO, 'docs', 'benchmarks.md') },
    dir: { type: 'string', default: '/tmp/fedsync-bench' },
    seed: { type: 'string', default: '1' },
    repeat: { type: 'string', default: '3' },
    nodes: { type: 'string', default: '2,5,10' },
    'nodes-files': { type: 'string', default: '200' },
    churn: { type: 'string', default: '0.01' },
    bin: { type: 'string', default: process.env.FEDSYNC_BENCH_BIN ?? join(REPO, 'bin', 'fedsync') },
    'rclone-flags': { type: 'string', default: '' },
    'no-docs': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

const FILES = Number(args.files);
const SEED = Number(args.seed);
const BIG_MB = Number(args['big-mb']);
const REPEAT = Math.max(1, Number(args.repeat));
const NODE_COUNTS = args.nodes.split(',').filter(Boolean).map(Number);
const NODES_FILES = Number(args['nodes-files']);
const CHURN = Number(args.churn);
const WORK = resolve(args.dir);
let BIN = resolve(args.bin);
const SERVER = args.server ?? (hasCommand('radosgw') ? 'rgw' : 's3rver');
const RCLONE_EXTRA = args['rclone-flags'].split(' ').filter(Boolean);
if (!Number.isInteger(FILES) || FILES < 10) throw new Error('--files must be an integer ≥ 10');
if (SERVER !== 'rgw' && SERVER !== 's3rver') throw new Error('--server is rgw or s3rver');

const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

// ---------------------------------------------------------------------------------------------
// The S3 server

interface Server extends S3Target {
  version: string;
  stop(): Promise<void>;
}

async function startServer(): Promise<Server> {
  if (SERVER === 's3rver') {
    const s = await startS3rver();
    const pkg = JSON.parse(readFileSync(join(REPO, 'node_modules', 's3rver', 'package.json'), 'utf8')) as { version: string };
    return { ...s, version: `s3rver ${pkg.version} (child process, files in a temp dir)` };
  }
  const dir = join(WORK, `rgw-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  log(`starting Ceph RGW in ${dir}`);
  const out = execFileSync('bash', [join(REPO, 'test', 'support', 'rgw.sh'), 'start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const env = Object.fromEntries([...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  const version = execSync('radosgw --version', { encoding: 'utf8' }).trim().split('\n')[0]!.replace(/\s*\(\w{40}\)/, '');
  return {
    name: 'rgw',
    endpoint: env.FEDSYNC_TEST_RGW_ENDPOINT!,
    accessKeyId: env.FEDSYNC_TEST_RGW_ACCESS_KEY!,
    secretAccessKey: env.FEDSYNC_TEST_RGW_SECRET_KEY!,
    region: 'us-east-1',
    version: `Ceph RGW (${version}, memstore OSD, beast, test/support/rgw.sh)`,
    stop: async () => {
      log('stopping Ceph RGW');
      spawnSync('bash', [join(REPO, 'test', 'support', 'rgw.sh'), 'stop', dir], { stdio: 'inherit' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The two tools

/** Environment for a child: the server's credentials, nothing of the machine's AWS setup. */
function cleanEnv(target: S3Target, home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('AWS_') || k.startsWith('FEDSYNC_') || k.startsWith('RCLONE_') || k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST')) delete env[k];
  }
  env.AWS_ACCESS_KEY_ID = target.accessKeyId;
  env.AWS_SECRET_ACCESS_KEY = target.secretAccessKey;
  env.AWS_EC2_METADATA_DISABLED = 'true';
  env.HOME = home;
  return env;
}

class Rclone {
  readonly env: NodeJS.ProcessEnv;
  readonly flags: string[];
  constructor(
    target: S3Target,
    endpoint: string,
    readonly dir: string,
  ) {
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'rclone.conf');
    writeFileSync(conf, '');
    this.env = {
      ...cleanEnv(target, dir),
      RCLONE_CONFIG: conf,
      RCLONE_CONFIG_BENCH_TYPE: 's3',
      RCLONE_CONFIG_BENCH_PROVIDER: SERVER === 'rgw' ? 'Ceph' : 'Other',
      RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: target.accessKeyId,
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: target.secretAccessKey,
      RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
      RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
    };
    // s3rver misses prefixes in delimiter listings: rclone must list recursively there.
    this.flags = ['-q', ...(SERVER === 's3rver' ? ['--fast-list'] : []), ...RCLONE_EXTRA];
  }

  run(proxy: Proxy, ...cmd: string[]): Promise<Sample> {
    return measure('rclone', [...cmd, ...this.flags], { env: this.env, proxy, scratch: this.dir });
  }
}

interface CycleLine extends Record<string, unknown> {
  ms?: number;
  scanned?: number;
  hashed?: number;
  published?: number;
  applied?: number;
  deleted?: number;
  conflicts?: number;
  rejected?: number;
  bytesUp?: number;
  bytesDown?: number;
  requests?: Record<string, number>;
}

class FedNode {
  readonly root: string;
  readonly config: string;
  readonly logFile: string;
  readonly env: NodeJS.ProcessEnv;
  private logOffset = 0;

  constructor(
    readonly name: string,
    readonly dir: string,
    target: S3Target,
    endpoint: string,
    url: string,
  ) {
    this.root = join(dir, 'root');
    this.config = join(dir, 'fedsync.toml');
    this.logFile = join(dir, 'fedsync.log');
    mkdirSync(this.root, { recursive: true });
    mkdirSync(join(dir, 'state'), { recursive: true });
    this.env = cleanEnv(target, dir);
    const q = JSON.stringify;
    writeFileSync(
      this.config,
      [
        `node = ${q(name)}`,
        `state_dir = ${q(join(dir, 'state'))}`,
        `log_file = ${q(this.logFile)}`,
        'log_level = "info"',
        '',
        '[store]',
        `url = ${q(url)}`,
        `endpoint = ${q(endpoint)}`,
        'region = "us-east-1"',
        'force_path_style = true',
        '',
        '[[sync]]',
        'name = "uploads"',
        `path = ${q(this.root)}`,
        'mode = "heavyweight"',
        'settle = "0s"',
        '',
      ].join('\n'),
    );
  }

  async fedsync(proxy: Proxy | undefined, ...cmd: string[]): Promise<Sample> {
    return measure(process.execPath, [BIN, '-c', this.config, ...cmd], { env: this.env, proxy, scratch: this.dir, cwd: this.dir });
  }

  /** The log lines written since the last call. */
  newLogLines(): Record<string, unknown>[] {
    if (!existsSync(this.logFile)) return [];
    const text = readFileSync(this.logFile, 'utf8');
    const fresh = text.slice(this.logOffset);
    this.logOffset = text.length;
    return fresh
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return { msg: l };
        }
      });
  }

  /** Runs a cycle and returns it with the cycle's own log line (and anything notable logged). */
  async run(proxy: Proxy | undefined): Promise<Sample & { cycle: CycleLine; notes: string[] }> {
    this.newLogLines();
    const s = await this.fedsync(proxy, 'run');
    const lines = this.newLogLines();
    const cycle = (lines.filter((l) => l.msg === 'cycle done').at(-1) ?? {}) as CycleLine;
    const notes = lines.filter((l) => l.msg !== 'cycle done' && typeof l.msg === 'string' && Number(l.level) >= 30).map((l) => String(l.msg));
    return { ...s, cycle, notes };
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function copyTree(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  // cp -a keeps the mtimes, as a restore from backup or an rsync would.
  execFileSync('cp', ['-a', `${from}/.`, to]);
}

/** Files and bytes under `root` (without .fedsync/): a cheap check that a transfer completed. */
function census(root: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (dir: string) => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      if (d.name === '.fedsync' && dir === root) continue;
      const abs = join(dir, d.name);
      if (d.isDirectory()) walk(abs);
      else if (d.isFile()) {
        files++;
        bytes += statSync(abs).size;
      }
    }
  };
  walk(root);
  return { files, bytes };
}

/** Problems found on the way (a failed case, a tree that did not converge); reported, not fatal. */
const failures: string[] = [];

function expectCensus(what: string, root: string, want: { files: number; bytes: number }): void {
  const got = census(root);
  if (got.files !== want.files || got.bytes !== want.bytes) {
    const msg = `${what}: ${root} has ${got.files} files / ${got.bytes} bytes, expected ${want.files} / ${want.bytes}`;
    log(`CHECK FAILED: ${msg}`);
    failures.push(msg);
  }
}

/** Runs one group of cases; a failure is recorded and the benchmark goes on with the next group. */
async function attempt(what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const msg = `${what} failed: ${(err as Error).message.split('\n').slice(0, 6).join(' / ')}`;
    log(msg);
    failures.push(msg);
  }
}

/**
 * A private copy of bin/ and dist/ for the run (node_modules linked), so a rebuild of the
 * checkout during a long run cannot change the binary under measurement half-way.
 */
function snapshotBuild(): string {
  const dir = join(WORK, 'build');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const d of ['bin', 'dist']) execFileSync('cp', ['-a', join(REPO, d), join(dir, d)]);
  execFileSync('cp', [join(REPO, 'package.json'), dir]);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return join(dir, 'bin', 'fedsync');
}

function machine(): BenchResult['machine'] {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? '?';
  let nproc = String(cpus().length);
  try {
    nproc = execSync('nproc', { encoding: 'utf8' }).trim();
  } catch {
    // cpus() it is
  }
  const git = (a: string) => {
    try {
      return execSync(`git ${a}`, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  const rclone = (() => {
    try {
      return execSync('rclone version', { encoding: 'utf8', env: { ...process.env, AWS_CA_BUNDLE: '' } }).split('\n')[0]!.trim();
    } catch {
      return 'rclone ?';
    }
  })();
  const rsync = hasCommand('rsync') ? execSync('rsync --version', { encoding: 'utf8' }).split('\n')[0]!.replace(/\s+protocol.*/, '').replace(/\s+/g, ' ').trim() : '';
  return {
    nproc,
    cpu: model,
    ramGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    os: readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?(.*?)"?$/m)?.[1] ?? process.platform,
    fedsync: `${git('rev-parse --short HEAD') || '?'}${git('status --porcelain -- src') ? ' + uncommitted changes in src/' : ''}`,
    rclone,
    rsync,
  };
}

const load = () => loadavg().map((x) => Number(x.toFixed(2))) as [number, number, number];

// ---------------------------------------------------------------------------------------------
// The run

async function main(): Promise<void> {
  if (BIN === join(REPO, 'bin', 'fedsync')) {
    if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) {
      log('dist/ is missing: building (npx tsc -p tsconfig.json)');
      execSync('npx tsc -p tsconfig.json', { cwd: REPO, stdio: 'inherit' });
    }
    mkdirSync(WORK, { recursive: true });
    BIN = snapshotBuild();
  }
  if (!hasCommand('rclone')) {
    // The anchor comes from Debian (rclone 1.60 in bookworm), as the README's set-up says.
    if (process.getuid?.() !== 0 || !hasCommand('apt-get')) throw new Error('rclone is not installed: apt-get install -y rclone (as root), then run the benchmark again');
    log('rclone is missing: installing it from Debian (apt-get install -y rclone)');
    execSync('apt-get install -y -q rclone || (apt-get update -q && apt-get install -y -q rclone)', { stdio: 'inherit' });
  }
  mkdirSync(WORK, { recursive: true });
  const started = new Date();
  const loadStart = load();
  const machineInfo = machine();
  log(`load average ${loadStart.join(' ')} on ${cpus().length} CPUs; fedsync ${machineInfo.fedsync} (${BIN})`);

  const { dir: treeDir, spec } = ensureTree(WORK, FILES, SEED, log);
  const big = BIG_MB > 0 ? ensureBigFile(WORK, BIG_MB, SEED, log) : null;
  const runDir = join(WORK, `run-n${FILES}-${SERVER}`);
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });

  const server = await startServer();
  const proxy = await startProxy({ upstream: server.endpoint });
  const stopAll = async () => {
    await proxy.stop().catch(() => {});
    await server.stop().catch(() => {});
  };
  const onSignal = () => void stopAll().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const rows: Row[] = [];
  const add = (row: Row) => {
    rows.push(row);
    const c = row.counts;
    log(
      `${row.case.padEnd(10)} ${row.tool.padEnd(9)} ${(row.wallMs / 1000).toFixed(2).padStart(8)} s  cpu ${((row.cpuMs ?? 0) / 1000).toFixed(2).padStart(7)} s ${String(c.total).padStart(7)} req ` +
        `(list ${c.list} get ${c.get} head ${c.head} put ${c.put} post ${c.post} del ${c.delete} other ${c.other})  ${(row.rssKB / 1024).toFixed(0)} MB` +
        (row.note ? `  ${row.note}` : ''),
    );
  };
  const row = (c: string, tool: Row['tool'], s: Sample, extra: Partial<Row> = {}): Row => ({
    case: c,
    tool,
    wallMs: Math.round(s.wallMs),
    cpuMs: s.cpuMs,
    rssKB: s.rssKB,
    counts: s.counts,
    ...extra,
  });
  const cycleNote = (s: { cycle: CycleLine; notes: string[] }) => {
    const c = s.cycle;
    const parts = [
      c.published ? `published ${c.published}` : '',
      c.applied ? `applied ${c.applied}` : '',
      c.deleted ? `deleted ${c.deleted}` : '',
      c.hashed ? `hashed ${c.hashed}` : '',
      c.conflicts ? `CONFLICTS ${c.conflicts}` : '',
      c.rejected ? `REJECTED ${c.rejected}` : '',
      ...[...new Set(s.notes)].map((n) => `"${n}"`),
    ].filter(Boolean);
    return parts.join(', ');
  };

  const nodesResult: BenchResult['nodes'] = [];
  const bill: BenchResult['housekeeping'] = [];
  let churnFiles = 0;
  try {
    await createBucket(server, 'bench-rclone');
    await createBucket(server, 'bench-fedsync');
    const rc = new Rclone(server, proxy.endpoint, join(runDir, 'rclone'));
    const rcSrc = join(runDir, 'rclone', 'src');
    const rcDst = join(runDir, 'rclone', 'dst');
    const remote = 'bench:bench-rclone/uploads';
    const url = 's3://bench-fedsync/fed';
    const a = new FedNode('A', join(runDir, 'A'), server, proxy.endpoint, url);
    const b = new FedNode('B', join(runDir, 'B'), server, proxy.endpoint, url);
    log('copying the tree for rclone and for node A');
    copyTree(treeDir, rcSrc);
    copyTree(treeDir, a.root);
    mkdirSync(rcDst, { recursive: true });
    const want = { files: spec.list.length, bytes: spec.bytes };

    // Initial upload / publish. Everything after depends on it: a failure here ends the run.
    add(row('upload', 'rclone', await rc.run(proxy, 'sync', rcSrc, remote)));
    const initA = await a.fedsync(proxy, 'init');
    add(row('init', 'fedsync', initA, { note: 'node A: marker, manifest, format.json' }));
    const pubA = await a.run(proxy);
    add(row('upload', 'fedsync', pubA, { note: cycleNote(pubA), cycle: pubA.cycle }));
    const hk = await a.fedsync(proxy, 'housekeep');
    add(row('housekeep', 'fedsync', hk, { note: hk.stdout.trim().replace(/^uploads: /, '') }));

    // Download into an empty directory / bootstrap of an empty node.
    add(row('download', 'rclone', await rc.run(proxy, 'sync', remote, rcDst)));
    expectCensus('rclone download', rcDst, want);
    const initB = await b.fedsync(proxy, 'init');
    add(row('init', 'fedsync', initB, { note: 'node B' }));
    const boot = await b.run(proxy);
    add(row('download', 'fedsync', boot, { note: cycleNote(boot), cycle: boot.cycle }));
    expectCensus('bootstrap of B', b.root, want);

    await attempt('idle', async () => {
      // Settle: each node sees the other's head move at most once more.
      for (let i = 0; i < 2; i++) {
        for (const n of [a, b]) {
          const s = await n.run(proxy);
          add(row('settle', 'fedsync', s, { note: `node ${n.name} ${cycleNote(s)}`.trim() }));
        }
      }
      add(row('idle', 'rclone', await rc.run(proxy, 'sync', rcSrc, remote), { note: 'sync up, nothing changed' }));
      for (const n of [a, b]) {
        const s = await median(REPEAT, () => n.run(proxy));
        add(row('idle', 'fedsync', s, { note: `node ${n.name}, median of ${REPEAT}: ${s.all.map((x) => (x / 1000).toFixed(2)).join(' / ')} s`, node: n.name }));
      }
      if (hasCommand('rsync')) {
        // -O: directory mtimes are not synced by fedsync (records carry 0 for directories).
        const rs = await median(REPEAT, () => measure('rsync', ['-aniO', '--exclude=/.fedsync/', `${a.root}/`, `${b.root}/`], { scratch: runDir }));
        const diffs = rs.stdout.split('\n').filter(Boolean).length;
        add(row('idle', 'rsync -an', rs, { note: `\`rsync -aniO\` A's tree vs B's, median of ${REPEAT}; ${diffs} differences` }));
        if (diffs > 0) failures.push(`rsync -aniO found ${diffs} differences between A and B: ${rs.stdout.split('\n').slice(0, 5).join(' / ')}`);
      } else log('rsync is not installed (apt-get install -y rsync): no rsync floor');
      const fs = await median(REPEAT, () => measure('sh', ['-c', `find "$0" -printf '%s %T@ %C@ %i %m %p\\n' >/dev/null`, a.root], { scratch: runDir }));
      add(row('idle', 'find', fs, { note: `stat walk of A's tree, median of ${REPEAT}` }));
      // Housekeeping (hourly in cron'd cycles) on an idle federation, for the bill.
      for (const n of [a, b]) {
        const s = await n.fedsync(proxy, 'housekeep');
        const leader = /as leader/.test(s.stdout);
        add(row('hk-idle', 'fedsync', s, { note: `node ${n.name}${leader ? ' (leader)' : ''}: ${s.stdout.trim().replace(/^uploads: /, '')}`, node: n.name }));
        bill.push({ node: n.name, leader, counts: s.counts, wallMs: Math.round(s.wallMs) });
      }
    });

    await attempt('one file changed', async () => {
      const one = oneChange(spec, 1);
      applyOps(rcSrc, SEED, one);
      applyOps(a.root, SEED, one);
      add(row('one-up', 'rclone', await rc.run(proxy, 'sync', rcSrc, remote)));
      const oneA = await a.run(proxy);
      add(row('one-up', 'fedsync', oneA, { note: cycleNote(oneA) }));
      add(row('one-down', 'rclone', await rc.run(proxy, 'sync', remote, rcDst)));
      const oneB = await b.run(proxy);
      add(row('one-down', 'fedsync', oneB, { note: cycleNote(oneB) }));
    });

    await attempt('1% churn', async () => {
      const ops = churn(spec, CHURN, 2);
      churnFiles = ops.length;
      applyOps(rcSrc, SEED, ops);
      applyOps(a.root, SEED, ops);
      const churnNote = `${ops.filter((o) => o.op === 'write').length} written, ${ops.filter((o) => o.op === 'delete').length} deleted`;
      add(row('churn-up', 'rclone', await rc.run(proxy, 'sync', rcSrc, remote), { note: churnNote }));
      const chA = await a.run(proxy);
      add(row('churn-up', 'fedsync', chA, { note: cycleNote(chA) }));
      add(row('churn-down', 'rclone', await rc.run(proxy, 'sync', remote, rcDst)));
      const chB = await b.run(proxy);
      add(row('churn-down', 'fedsync', chB, { note: cycleNote(chB) }));
      const after = census(rcSrc);
      expectCensus('rclone after churn', rcDst, after);
      expectCensus('B after churn', b.root, after);
      expectCensus('A after churn', a.root, after);
    });

    if (big) {
      await attempt('big file', async () => {
        const bytes = statSync(big).size;
        const mbps = (s: Sample) => `${(bytes / 2 ** 20 / (s.wallMs / 1000)).toFixed(0)} MiB/s`;
        const up = await rc.run(proxy, 'copyto', big, 'bench:bench-rclone/big/big.bin');
        add(row('big-up', 'rclone', up, { note: mbps(up), bytes }));
        const down = await rc.run(proxy, 'copyto', 'bench:bench-rclone/big/big.bin', join(runDir, 'rclone', 'big.bin'));
        add(row('big-down', 'rclone', down, { note: mbps(down), bytes }));
        rmSync(join(runDir, 'rclone', 'big.bin'), { force: true });
        // Not measured: make room in the server's memory for fedsync's copy.
        await rc.run(proxy, 'deletefile', 'bench:bench-rclone/big/big.bin');
        execFileSync('cp', ['--preserve=timestamps', big, join(a.root, 'big.bin')]);
        const bu = await a.run(proxy);
        add(row('big-up', 'fedsync', bu, { note: `${mbps(bu)}, ${cycleNote(bu)} (the scan hashes it, then it is uploaded)`, bytes }));
        const bd = await b.run(proxy);
        add(row('big-down', 'fedsync', bd, { note: `${mbps(bd)}, ${cycleNote(bd)}`, bytes }));
        expectCensus('B after the big file', b.root, census(a.root));
      });
    }

    // Idle requests per node per cycle, 2/5/10 nodes, small tree.
    await attempt('nodes', async () => {
      const small = planTree(NODES_FILES, SEED);
      const { dir: smallDir } = ensureTree(WORK, NODES_FILES, SEED, log);
      for (const k of NODE_COUNTS) {
        const nodes = Array.from({ length: k }, (_, i) => new FedNode(`n${i + 1}`, join(runDir, `nodes-${k}`, `n${i + 1}`), server, proxy.endpoint, `s3://bench-fedsync/nodes-${k}`));
        copyTree(smallDir, nodes[0]!.root);
        for (const n of nodes) await n.fedsync(undefined, 'init');
        for (let round = 0; round < 3; round++) for (const n of nodes) await n.run(undefined);
        let total = 0;
        let wall = 0;
        let rss = 0;
        const kinds = new Set<string>();
        for (const n of nodes) {
          const s = await n.run(proxy);
          total += s.counts.total;
          wall += s.wallMs;
          rss = Math.max(rss, s.rssKB);
          for (const r of proxy.log()) kinds.add(`${r.method} ${r.kind}`);
        }
        expectCensus(`nodes-${k}: last node`, nodes.at(-1)!.root, { files: small.list.length, bytes: small.bytes });
        nodesResult.push({ nodes: k, files: NODES_FILES, requestsPerNodeCycle: total / k, wallMs: Math.round(wall / k), rssKB: rss, kinds: [...kinds] });
        log(`nodes ${k}: ${(total / k).toFixed(2)} requests per node per idle cycle (${[...kinds].join(', ')}), ${(wall / k / 1000).toFixed(2)} s per cycle`);
      }
    });

    const result: BenchResult = {
      files: FILES,
      seed: SEED,
      mb: Math.round(spec.bytes / 1e6),
      bytes: spec.bytes,
      dirs: spec.dirs.length,
      server: SERVER,
      serverVersion: server.version,
      churnFiles,
      bigMb: BIG_MB,
      repeat: REPEAT,
      rcloneFlags: rc.flags.join(' '),
      date: started.toISOString(),
      durationS: Math.round((Date.now() - started.getTime()) / 1000),
      load: { start: loadStart, end: load() },
      machine: machineInfo,
      rows,
      nodes: nodesResult,
      housekeeping: bill,
      failures,
    };
    writeFileSync(join(WORK, `result-n${FILES}-${SERVER}.json`), JSON.stringify(result, null, 1));
    report(result, args['no-docs'] ? null : resolve(args.out));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!args.keep) {
      await stopAll();
      rmSync(runDir, { recursive: true, force: true });
    } else {
      // For a post-mortem or profiling: the nodes' configs under runDir point at the proxy,
      // which dies with this process, so they are rewritten to the server itself.
      await proxy.stop().catch(() => {});
      execFileSync('sh', ['-c', `sed -i 's|^endpoint = .*|endpoint = "${server.endpoint}"|' $(find "$0" -name fedsync.toml)`, runDir]);
      writeFileSync(join(runDir, 'server.env'), `export AWS_ACCESS_KEY_ID=${server.accessKeyId}\nexport AWS_SECRET_ACCESS_KEY=${server.secretAccessKey}\nexport BENCH_ENDPOINT=${server.endpoint}\n`);
      log(`kept ${runDir} and the ${SERVER} server at ${server.endpoint} (credentials in ${join(runDir, 'server.env')})`);
      if (SERVER === 'rgw') log(`stop it with: bash test/support/rgw.sh stop ${join(WORK, `rgw-${process.pid}`)}`);
      else await server.stop();
    }
  }
}

await main();
