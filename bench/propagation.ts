// Lightweight-mode propagation latency: two `fedsync watch` daemons (the built binary, one
// process per node) on s3rver (or on Ceph RGW when FEDSYNC_TEST_RGW_* are set, see
// test/support/rgw.sh), delay 200ms and poll 500ms. One file on A is rewritten N times, one
// change at a time; each time the clock runs from the write until B's copy has the new content.
// Prints p50/p95/max, where the time went (from the daemons' own log lines), and writes the
// result into docs/benchmarks.md under "Lightweight propagation".
//
//   npx tsc -p tsconfig.json && node --import tsx bench/propagation.ts [--changes 100]
//     [--settle DURATION] [--delay 200ms] [--poll 500ms] [--store s3rver|rgw|file] [--no-docs]
//
// `settle` is left to the project default unless given (for a lightweight set: `delay`): a
// file written less than `settle` ago is left for a later cycle, so it is part of what a user
// of the defaults sees.
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { rgwTargetFromEnv } from '../test/support/s3.js';
import {
  fileBackend,
  Federation,
  REPO,
  rgwBackend,
  s3rverBackend,
  waitFor,
  type LogLine,
  type Node,
  type StoreBackend,
} from '../test/e2e/watch-harness.js';

const { values: args } = parseArgs({
  options: {
    changes: { type: 'string', default: '100' },
    settle: { type: 'string' },
    delay: { type: 'string', default: '200ms' },
    poll: { type: 'string', default: '500ms' },
    store: { type: 'string' },
    size: { type: 'string', default: '1024' },
    'no-docs': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const CHANGES = Number(args.changes);
const SIZE = Number(args.size);
const storeName = args.store ?? (rgwTargetFromEnv() ? 'rgw' : 's3rver');

async function openBackend(): Promise<StoreBackend> {
  if (storeName === 'file') return fileBackend();
  if (storeName === 'rgw') {
    const t = rgwTargetFromEnv();
    if (!t) throw new Error('--store rgw needs FEDSYNC_TEST_RGW_* (eval "$(bash test/support/rgw.sh start DIR)")');
    return rgwBackend(t);
  }
  return s3rverBackend();
}

interface Sample {
  i: number;
  /** Wall clock (ms) just before the write on A. */
  wrote: number;
  /** Wall clock when B's file first had the new content. */
  arrived: number;
}

interface Cycle {
  start: number;
  end: number;
  published: number;
  applied: number;
  settling: number;
}

function cycles(node: Node): Cycle[] {
  return node
    .logLines()
    .filter((l: LogLine) => l.msg === 'cycle done')
    .map((l) => {
      const end = Date.parse(l.time);
      return { start: end - Number(l.ms), end, published: Number(l.published), applied: Number(l.applied), settling: Number(l.settling) };
    });
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

function stats(xs: number[]): { p50: number; p95: number; max: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: pct(s, 50), p95: pct(s, 95), max: s.at(-1) ?? NaN, mean: s.reduce((a, b) => a + b, 0) / (s.length || 1) };
}

function machine(): Record<string, string> {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? '?';
  let nproc = String(cpus().length);
  try {
    nproc = execSync('nproc', { encoding: 'utf8' }).trim();
  } catch {
    // cpus() it is
  }
  return {
    nproc,
    cpu: model,
    ram: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    os: readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?(.*?)"?$/m)?.[1] ?? process.platform,
  };
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const backend = await openBackend();
  const fed = new Federation(backend, 'bench');
  const opts = { sets: [{ name: 'conf' }], defaults: { delay: args.delay!, poll: args.poll!, ...(args.settle ? { settle: args.settle } : {}) } };
  const a = await fed.add('a', opts);
  const b = await fed.add('b', opts);
  const samples: Sample[] = [];
  let ca: Cycle[] = [];
  let cb: Cycle[] = [];
  try {
    for (const n of [a, b]) n.start();
    for (const n of [a, b]) await waitFor(() => n.logLines().some((l) => l.msg === 'cycle done'), 30_000, `${n.name}'s first cycle`);
    // Warm-up: the first change also proves A's watcher is live (it may still be setting up).
    const fileA = join(a.root(), 'app.conf');
    const fileB = join(b.root(), 'app.conf');
    for (let n = 0; ; n++) {
      const c = `warm-up ${n}\n`;
      writeFileSync(fileA, c);
      const ok = await waitFor(() => safeRead(fileB) === c, 10_000, 'warm-up', 20).catch(() => false);
      if (ok) break;
      if (n > 5) throw new Error('A never published the warm-up change');
    }
    await sleep(1000);

    for (let i = 1; i <= CHANGES; i++) {
      const content = `change ${i} ${randomBytes(8).toString('hex')}\n`.padEnd(SIZE, '#');
      const wrote = Date.now();
      writeFileSync(fileA, content);
      const t0 = performance.now();
      for (;;) {
        if (safeRead(fileB) === content) break;
        if (performance.now() - t0 > 60_000) throw new Error(`change ${i} did not reach B within 60 s`);
        await sleep(2);
      }
      samples.push({ i, wrote, arrived: wrote + (performance.now() - t0) });
      process.stdout.write(`\r${i}/${CHANGES} ${Math.round(samples.at(-1)!.arrived - wrote)} ms   `);
      // A short, varying pause, so changes do not line up with the poll timer.
      await sleep(50 + Math.floor(Math.random() * 250));
    }
    process.stdout.write('\n');
    await sleep(500);
    ca = cycles(a);
    cb = cycles(b);
  } finally {
    await fed.close(args.keep);
    await backend.stop();
  }

  // Where the time went, per change, from the daemons' log lines: A's publishing cycle is the
  // first one starting after the write that published something; B's applying cycle is the
  // first one ending after A's that applied something.
  const parts = { wait: [] as number[], publish: [] as number[], poll: [] as number[], apply: [] as number[] };
  for (const s of samples) {
    const pub = ca.find((c) => c.start >= s.wrote && c.published > 0);
    const app = pub && cb.find((c) => c.end >= pub.end && c.applied > 0);
    if (!pub || !app) continue;
    parts.wait.push(pub.start - s.wrote);
    parts.publish.push(pub.end - pub.start);
    parts.poll.push(Math.max(0, app.start - pub.end));
    // B's cycle goes on after the file is in place (its head, status.json): up to the arrival.
    parts.apply.push(Math.max(0, s.arrived - Math.max(app.start, pub.end)));
  }
  const lat = stats(samples.map((s) => s.arrived - s.wrote));
  const r = (x: number) => Math.round(x);
  const m = machine();
  const server = storeName === 's3rver' ? 's3rver 3.7.1 (loopback, child process)' : storeName === 'rgw' ? 'Ceph RGW (loopback, memstore)' : 'file:// store (local disk)';
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  console.log(`latency write on A -> complete on B, ${samples.length} changes: p50 ${r(lat.p50)} ms, p95 ${r(lat.p95)} ms, max ${r(lat.max)} ms (mean ${r(lat.mean)})`);
  const rows: [string, string, number[]][] = [
    ['wait', 'write → start of the publishing cycle on A (`delay`, `settle`, a cycle already running)', parts.wait],
    ['publish', "A's cycle: scan of the dirty path, blob + segment + head PUTs", parts.publish],
    ['poll', "end of A's cycle → start of B's applying cycle (`poll`)", parts.poll],
    ['apply', "B's cycle until the file is in place: LIST heads, GET head + segment + blob, write, rename", parts.apply],
  ];
  for (const [name, , xs] of rows) {
    const st = stats(xs);
    console.log(`  ${name.padEnd(8)} mean ${r(st.mean)} ms, p50 ${r(st.p50)}, p95 ${r(st.p95)}, max ${r(st.max)}`);
  }
  const goal = lat.p95 <= 1000;
  const biggest = rows.map(([n, , xs]) => [n, stats(xs).mean] as const).sort((x, y) => y[1] - x[1])[0]!;

  const heading = `### ${storeName}, delay ${args.delay}, poll ${args.poll}, settle ${args.settle ?? 'default (= delay)'}`;
  const section = [
    heading,
    '',
    `Measured ${date} with \`node --import tsx bench/propagation.ts --changes ${CHANGES}${args.settle ? ` --settle ${args.settle}` : ''}${storeName === 's3rver' ? '' : ` --store ${storeName}`}\`:`,
    `${m.nproc} CPUs (\`nproc\`), ${m.cpu}, ${m.ram} RAM, ${m.os}, Node ${m.node}, ${server}; ` +
      `load average ${loadBefore.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end` +
      (loadBefore > cpus().length ? ' (more than the CPUs: other jobs were running, so the figures are pessimistic).' : '.'),
    '',
    `| changes | p50 | p95 | max | mean | goal p95 ≤ 1 s |`,
    `|---|---|---|---|---|---|`,
    `| ${samples.length} | ${r(lat.p50)} ms | ${r(lat.p95)} ms | ${r(lat.max)} ms | ${r(lat.mean)} ms | ${goal ? 'met' : 'not met'} |`,
    '',
    `Where the time went, per change (from the daemons' log lines; ${parts.wait.length} of ${samples.length} changes matched; the parts add up to the latency):`,
    '',
    '| part | what | mean | p95 |',
    '|---|---|---|---|',
    ...rows.map(([n, what, xs]) => {
      const st = stats(xs);
      return `| ${n} | ${what} | ${r(st.mean)} ms | ${r(st.p95)} ms |`;
    }),
    '',
    `Largest part: ${biggest[0]} (${r(biggest[1])} ms on average).`,
    '',
  ].join('\n');
  console.log(`\n${section}`);
  if (!args['no-docs']) writeDocs(section, heading);
}

function safeRead(p: string): string | null {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

const HEADING = '## Lightweight propagation';
const INTRO = `${HEADING}

\`bench/propagation.ts\`: two \`fedsync watch\` daemons (the built binary, one process per node) on
one machine and a loopback S3 server. One file on node A is rewritten, one change at a time;
the latency runs from the write on A until node B's copy has the complete new content (B's
file is read every 2 ms). The parts come from the daemons' own \`cycle done\` log lines. Each
configuration below is replaced when the benchmark is run again with it.
`;

/** Puts `section` (one configuration's result) into docs/benchmarks.md, replacing an older run of it. */
function writeDocs(section: string, key: string): void {
  const file = join(REPO, 'docs', 'benchmarks.md');
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  let start = doc.indexOf(`${HEADING}\n`);
  if (start < 0) {
    doc = `${doc.trimEnd()}\n\n${INTRO}`;
    start = doc.indexOf(`${HEADING}\n`);
  }
  const next = doc.indexOf('\n## ', start + HEADING.length);
  const end = next < 0 ? doc.length : next + 1;
  let body = doc.slice(start, end);
  const at = body.indexOf(`${key}\n`);
  if (at >= 0) {
    const after = body.indexOf('\n### ', at + key.length);
    body = body.slice(0, at) + section + (after < 0 ? '' : `\n${body.slice(after + 1)}`);
  } else body = `${body.trimEnd()}\n\n${section}`;
  doc = doc.slice(0, start) + body.trimEnd() + '\n' + (end < doc.length ? `\n${doc.slice(end).replace(/^\n+/, '')}` : '');
  writeFileSync(file, doc);
  console.log(`written to ${file}`);
}

await main();
