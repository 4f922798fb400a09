// The benchmark's report: the table (ratios to rclone, and to rsync for idle), the issue's
// goals met / not met, and docs/benchmarks.md: one subsection per (files, server) run, each
// carrying its raw results as a JSON comment, and "Scale notes" rebuilt from every run the
// document holds (how cost grows with files, nodes and change rate; the monthly S3 bill).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Counts } from '../test/support/proxy.js';

export interface Row {
  case: string;
  tool: 'rclone' | 'fedsync' | 'rsync -an' | 'find';
  wallMs: number;
  /** User + system CPU time of the process. */
  cpuMs?: number;
  rssKB: number;
  counts: Counts;
  note?: string;
  node?: string;
  bytes?: number;
  cycle?: Record<string, unknown>;
}

export interface BenchResult {
  files: number;
  seed: number;
  mb: number;
  bytes: number;
  dirs: number;
  server: string;
  serverVersion: string;
  churnFiles: number;
  bigMb: number;
  repeat: number;
  rcloneFlags: string;
  date: string;
  durationS: number;
  load: { start: [number, number, number]; end: [number, number, number] };
  machine: { nproc: string; cpu: string; ramGiB: number; node: string; os: string; fedsync: string; rclone: string; rsync: string };
  rows: Row[];
  nodes: { nodes: number; files: number; requestsPerNodeCycle: number; wallMs: number; rssKB: number; kinds: string[] }[];
  housekeeping: { node: string; leader: boolean; counts: Counts; wallMs: number }[];
  /** Cases that failed and checks that did not hold. */
  failures?: string[];
}

// AWS S3 Standard list prices (us-east-1), per request.
export const PRICE_CLASS_A = 0.005 / 1000; // PUT, COPY, POST, LIST
export const PRICE_CLASS_B = 0.0004 / 1000; // GET, HEAD and other reads
const CYCLES_PER_MONTH = 30 * 24 * 60; // cron every minute, 30 days
const HOUSEKEEPING_PER_MONTH = 30 * 24; // at most hourly
const HEARTBEATS_PER_MONTH = 30 * 24 * 6; // default heartbeat 10 min

/** Dollars for one set of request counts (DELETE is free; "other" priced as class A, to be safe). */
export function cost(c: Counts): number {
  return (c.list + c.put + c.post + c.other) * PRICE_CLASS_A + (c.get + c.head) * PRICE_CLASS_B;
}

const CASES: Record<string, (r: BenchResult) => string> = {
  upload: () => 'initial upload / publish',
  init: () => '`fedsync init`',
  housekeep: () => '`fedsync housekeep` after the publish',
  download: () => 'download to an empty dir / bootstrap of an empty node',
  idle: () => 'idle (nothing changed)',
  'hk-idle': () => 'housekeeping on an idle federation (hourly)',
  'one-up': () => 'one file changed: upload / publish',
  'one-down': () => 'one file changed: download / receive',
  'churn-up': (r) => `1% churn (${r.churnFiles} files): upload / publish`,
  'churn-down': (r) => `1% churn (${r.churnFiles} files): download / receive`,
  'big-up': (r) => `one ${r.bigMb} MiB file: upload / publish`,
  'big-down': (r) => `one ${r.bigMb} MiB file: download / receive`,
};

const s = (ms: number) => (ms >= 100_000 ? (ms / 1000).toFixed(0) : ms >= 10_000 ? (ms / 1000).toFixed(1) : (ms / 1000).toFixed(2));
const mb = (kb: number) => (kb ? `${(kb / 1024).toFixed(0)} MB` : '?');
const ratio = (x: number, y: number | undefined) => (y ? `${(x / y).toFixed(2)}×` : '—');
const int = (n: number) => n.toLocaleString('en-US');
const usd = (x: number) => (x >= 100 ? `$${x.toFixed(0)}` : x >= 1 ? `$${x.toFixed(2)}` : `$${x.toFixed(3)}`);

function find(r: BenchResult, c: string, tool: Row['tool'], node?: string): Row | undefined {
  return r.rows.find((x) => x.case === c && x.tool === tool && (node === undefined || x.node === node));
}

function worst(r: BenchResult, c: string, tool: Row['tool']): Row | undefined {
  return r.rows.filter((x) => x.case === c && x.tool === tool).sort((a, b) => b.wallMs - a.wallMs)[0];
}

export interface Goal {
  goal: string;
  measured: string;
  met: boolean | null;
}

/** The goals of the issue, evaluated on one run. */
export function goals(r: BenchResult): Goal[] {
  const out: Goal[] = [];
  const idle = worst(r, 'idle', 'fedsync');
  const rsync = find(r, 'idle', 'rsync -an');
  const idleReqs = Math.max(...r.rows.filter((x) => x.case === 'idle' && x.tool === 'fedsync').map((x) => x.counts.total));
  if (idle) {
    const vsRsync = rsync ? idle.wallMs / rsync.wallMs : NaN;
    out.push({
      goal: 'idle heavyweight cycle ≤ 1.0 s wall, exactly 1 request, ≤ 1.5× `rsync -an`',
      measured: `${s(idle.wallMs)} s (slower node), ${idleReqs} request(s), ${rsync ? `${vsRsync.toFixed(2)}× rsync -an (${s(rsync.wallMs)} s)` : 'no rsync'}`,
      met: idle.wallMs <= 1000 && idleReqs === 1 && (!rsync || vsRsync <= 1.5),
    });
  }
  const one = find(r, 'one-up', 'fedsync');
  if (one) out.push({ goal: 'one file changed ≤ 1.2 s and ≤ 4 requests', measured: `${s(one.wallMs)} s, ${one.counts.total} requests`, met: one.wallMs <= 1200 && one.counts.total <= 4 });
  const up = find(r, 'upload', 'fedsync');
  const upRc = find(r, 'upload', 'rclone');
  if (up && upRc) {
    const perFile = up.counts.total / r.files;
    out.push({
      goal: 'initial publish ≤ 0.9× rclone wall, ≤ 1.01 requests per file',
      measured: `${(up.wallMs / upRc.wallMs).toFixed(2)}× rclone (${s(up.wallMs)} s vs ${s(upRc.wallMs)} s), ${perFile.toFixed(3)} requests per file (rclone ${(upRc.counts.total / r.files).toFixed(3)})`,
      met: up.wallMs <= 0.9 * upRc.wallMs && perFile <= 1.01,
    });
  }
  const boot = find(r, 'download', 'fedsync');
  const downRc = find(r, 'download', 'rclone');
  if (boot && downRc) {
    out.push({
      goal: 'bootstrap with snapshot + bundles ≤ 0.3× rclone download',
      measured: `${(boot.wallMs / downRc.wallMs).toFixed(2)}× (${s(boot.wallMs)} s vs ${s(downRc.wallMs)} s)`,
      met: boot.wallMs <= 0.3 * downRc.wallMs,
    });
  }
  const bu = find(r, 'big-up', 'fedsync');
  const bd = find(r, 'big-down', 'fedsync');
  const bur = find(r, 'big-up', 'rclone');
  const bdr = find(r, 'big-down', 'rclone');
  if (bu && bd && bur && bdr) {
    const rate = (x: Row) => (x.bytes ?? 0) / 2 ** 20 / (x.wallMs / 1000);
    // Flat: the big file adds at most max(64 MB, 5% of its size) over the node's idle cycle.
    const base = (n: string) => find(r, 'idle', 'fedsync', n)?.rssKB ?? 0;
    const allowKB = Math.max(64 * 1024, (0.05 * (bu.bytes ?? 0)) / 1024);
    const growUp = bu.rssKB - base('A');
    const growDown = bd.rssKB - base('B');
    out.push({
      goal: "big file ≥ rclone's rate, memory flat",
      measured:
        `up ${rate(bu).toFixed(0)} vs ${rate(bur).toFixed(0)} MiB/s, down ${rate(bd).toFixed(0)} vs ${rate(bdr).toFixed(0)} MiB/s; ` +
        `peak RSS ${mb(bu.rssKB)} / ${mb(bd.rssKB)}, ${mb(Math.max(growUp, growDown))} over an idle cycle (flat: ≤ ${mb(allowKB)})`,
      met: rate(bu) >= rate(bur) && rate(bd) >= rate(bdr) && Math.max(growUp, growDown) <= allowKB,
    });
  }
  const fed = r.rows.filter((x) => x.tool === 'fedsync');
  if (fed.length) {
    const peak = fed.reduce((m, x) => (x.rssKB > m.rssKB ? x : m));
    const noBig = fed.filter((x) => !x.case.startsWith('big')).reduce((m, x) => (x.rssKB > m.rssKB ? x : m));
    out.push({
      goal: 'peak RSS ≤ 150 MB at 100,000 files' + (r.files === 100_000 ? '' : ` (here ${int(r.files)} files)`),
      measured: `${mb(peak.rssKB)} (${CASES[peak.case]?.(r) ?? peak.case})${noBig !== peak ? `; ${mb(noBig.rssKB)} without the big file` : ''}`,
      met: peak.rssKB <= 150 * 1024,
    });
  }
  return out;
}

function table(r: BenchResult): string[] {
  const lines = [
    '| case | tool | wall s | vs rclone | CPU s | requests | LIST | GET | HEAD | PUT | POST | DELETE | other | peak RSS | notes |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const x of r.rows) {
    if (x.case === 'settle') continue;
    const rc = x.tool === 'rclone' ? undefined : find(r, x.case, 'rclone');
    const rsync = find(r, 'idle', 'rsync -an');
    let vs = x.tool === 'rclone' ? '1' : ratio(x.wallMs, rc?.wallMs);
    if (x.case === 'idle' && x.tool !== 'rsync -an' && rsync) vs += ` (${ratio(x.wallMs, rsync.wallMs)} rsync)`;
    const c = x.counts;
    const counted = x.tool === 'rclone' || x.tool === 'fedsync';
    const n = (v: number) => (counted ? int(v) : '—');
    lines.push(
      `| ${CASES[x.case]?.(r) ?? x.case} | ${x.tool} | ${s(x.wallMs)} | ${vs} | ${x.cpuMs === undefined ? '?' : s(x.cpuMs)} | ${n(c.total)} | ${n(c.list)} | ${n(c.get)} | ${n(c.head)} | ${n(c.put)} | ${n(c.post)} | ${n(c.delete)} | ${n(c.other)} | ${mb(x.rssKB)} | ${(x.note ?? '').replace(/\|/g, '\\|')} |`,
    );
  }
  return lines;
}

export function runHeading(r: BenchResult): string {
  return `### ${int(r.files)} files on ${r.server}`;
}

function section(r: BenchResult): string {
  const m = r.machine;
  const settle = r.rows.filter((x) => x.case === 'settle');
  const g = goals(r);
  const lines = [
    runHeading(r),
    '',
    `Measured ${r.date.slice(0, 16).replace('T', ' ')} UTC with \`node --import tsx bench/run.ts --files ${r.files}${r.server === 'rgw' ? '' : ' --server s3rver'}${r.bigMb !== 2048 ? ` --big-mb ${r.bigMb}` : ''}${r.repeat !== 3 ? ` --repeat ${r.repeat}` : ''}\` (${Math.round(r.durationS / 60)} min):`,
    `${int(r.files)} files in ${int(r.dirs)} directories, ${int(r.mb)} MB; ${r.serverVersion}.`,
    `Machine: ${m.nproc} CPUs (\`nproc\`), ${m.cpu}, ${m.ramGiB} GiB RAM, ${m.os}, Node ${m.node}; ${m.rclone} (flags: \`${r.rcloneFlags}\`)${m.rsync ? `, ${m.rsync}` : ''}; fedsync ${m.fedsync}.`,
    `Load average (1/5/15 min) at the start ${r.load.start.join(' / ')}, at the end ${r.load.end.join(' / ')}.`,
    '',
    ...table(r),
    '',
    `Settling rounds (A, B, A, B before the idle case): ${settle.map((x) => `${x.counts.total}`).join(', ')} requests.`,
    '',
    ...(r.failures?.length ? ['**Failures in this run:**', '', ...r.failures.map((f) => `- ${f}`), ''] : []),
    '| goal | measured | |',
    '|---|---|---|',
    ...g.map((x) => `| ${x.goal} | ${x.measured} | ${x.met === null ? '—' : x.met ? '**met**' : '**not met**'} |`),
    '',
    `<!-- bench-result ${JSON.stringify(r)} -->`,
    '',
  ];
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Scale notes

function monthly(r: BenchResult, peers: number): { fedsync: { leader: number; other: number; counts: string }; rclone: { total: number; counts: string } } | null {
  const idle = find(r, 'idle', 'fedsync', 'A');
  const rc = find(r, 'idle', 'rclone');
  if (!idle || !rc) return null;
  const hkLeader = r.housekeeping.find((h) => h.leader)?.counts;
  const hkOther = r.housekeeping.find((h) => !h.leader)?.counts;
  const base = cost(idle.counts) * CYCLES_PER_MONTH + HEARTBEATS_PER_MONTH * (PRICE_CLASS_A + peers * PRICE_CLASS_B);
  return {
    fedsync: {
      leader: base + (hkLeader ? cost(hkLeader) * HOUSEKEEPING_PER_MONTH : 0),
      other: base + (hkOther ? cost(hkOther) * HOUSEKEEPING_PER_MONTH : 0),
      counts: `${int(idle.counts.total * CYCLES_PER_MONTH)} LIST + ${int(HEARTBEATS_PER_MONTH)} head PUTs + ${int(HEARTBEATS_PER_MONTH * peers)} peer-head GETs + housekeeping ${int(HOUSEKEEPING_PER_MONTH)} × (${hkLeader ? hkLeader.total : '?'} leader / ${hkOther ? hkOther.total : '?'} other)`,
    },
    rclone: {
      total: cost(rc.counts) * CYCLES_PER_MONTH,
      counts: `${int(CYCLES_PER_MONTH)} × (${int(rc.counts.list)} LIST + ${int(rc.counts.head)} HEAD + ${int(rc.counts.get + rc.counts.put + rc.counts.other)} other)`,
    },
  };
}

function perChange(r: BenchResult, c: string, tool: Row['tool'], n: number): number | null {
  const x = find(r, c, tool);
  const idle = tool === 'fedsync' ? find(r, 'idle', 'fedsync', 'A') : find(r, 'idle', 'rclone');
  if (!x || !idle || n <= 0) return null;
  return (x.counts.total - idle.counts.total) / n;
}

function scaleNotes(runs: BenchResult[]): string {
  const out = ['### Scale notes', ''];
  if (runs.length === 0) return out.join('\n');
  out.push(
    'Rebuilt by every run from the results of all the runs above. Prices assumed: AWS S3 Standard list',
    'prices, $0.005 per 1,000 PUT, COPY, POST and LIST requests and $0.0004 per 1,000 GET and HEAD',
    'requests (DELETE free; data transfer and storage not counted: both tools store the same bytes).',
    'A month is 43,200 one-minute cron cycles.',
    '',
    '**Files.** Per run (wall seconds; RSS is the peak of one process):',
    '',
    '| files | server | idle fedsync | idle rsync -an | idle find | idle rclone | idle requests fedsync / rclone | publish / rclone | bootstrap / rclone download | peak RSS fedsync (idle, max) | rclone peak RSS (max) |',
    '|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  );
  for (const r of runs) {
    const idle = worst(r, 'idle', 'fedsync');
    const rs = find(r, 'idle', 'rsync -an');
    const fi = find(r, 'idle', 'find');
    const rc = find(r, 'idle', 'rclone');
    const up = find(r, 'upload', 'fedsync');
    const upRc = find(r, 'upload', 'rclone');
    const boot = find(r, 'download', 'fedsync');
    const dl = find(r, 'download', 'rclone');
    const fedMax = Math.max(...r.rows.filter((x) => x.tool === 'fedsync').map((x) => x.rssKB));
    const rcMax = Math.max(...r.rows.filter((x) => x.tool === 'rclone').map((x) => x.rssKB));
    out.push(
      `| ${int(r.files)} | ${r.server} | ${idle ? s(idle.wallMs) : '—'} | ${rs ? s(rs.wallMs) : '—'} | ${fi ? s(fi.wallMs) : '—'} | ${rc ? s(rc.wallMs) : '—'} | ${idle ? idle.counts.total : '—'} / ${rc ? int(rc.counts.total) : '—'} | ${up && upRc ? ratio(up.wallMs, upRc.wallMs) : '—'} | ${boot && dl ? ratio(boot.wallMs, dl.wallMs) : '—'} | ${idle ? mb(idle.rssKB) : '—'}, ${mb(fedMax)} | ${mb(rcMax)} |`,
    );
  }
  // Memory per file between the smallest and the largest run of a server.
  const byServer = new Map<string, BenchResult[]>();
  for (const r of runs) byServer.set(r.server, [...(byServer.get(r.server) ?? []), r]);
  out.push('');
  for (const [server, rs] of byServer) {
    const sorted = [...rs].sort((a, b) => a.files - b.files);
    if (sorted.length < 2) continue;
    const pts = sorted.map((r) => ({ files: r.files, idle: find(r, 'idle', 'fedsync', 'A')?.rssKB ?? 0, boot: find(r, 'download', 'fedsync')?.rssKB ?? 0 }));
    const slopes: string[] = [];
    for (let i = 1; i < pts.length; i++) {
      const p = pts[i - 1]!;
      const q = pts[i]!;
      const per = (k: 'idle' | 'boot') => ((q[k] - p[k]) * 1024) / (q.files - p.files);
      slopes.push(`${int(p.files)} → ${int(q.files)} files: idle cycle +${per('idle').toFixed(0)} bytes per file, bootstrap +${per('boot').toFixed(0)} bytes per file`);
    }
    out.push(
      `Peak RSS on ${server}, marginal cost: ${slopes.join('; ')}. ` +
        (pts.length < 3
          ? 'Two sizes fit any line, so they cannot show growth faster than linear; a third size (300,000 files) is needed for that check.'
          : 'Growth is linear when the marginal cost per file does not rise from one step to the next.'),
      '',
    );
  }
  out.push(
    'fedsync\'s idle cycle costs one LIST whatever the number of files; its wall time is the stat walk of the tree plus',
    'loading the manifest (one SQLite row per path) and Node\'s start-up. rclone\'s idle sync lists every directory',
    'and, because S3 listings do not carry its modification-time metadata, HEADs every file: its requests and time',
    'grow with the number of files.',
    '',
  );

  const nodes = runs.flatMap((r) => r.nodes.map((n) => ({ ...n, run: r })));
  if (nodes.length) {
    out.push('**Nodes.** Idle requests per node per cycle on a small tree (measured, every node after settling):', '', '| nodes | files | requests per node per idle cycle | wall per cycle | requests seen | run |', '|--:|--:|--:|--:|---|---|');
    for (const n of nodes) out.push(`| ${n.nodes} | ${n.files} | ${n.requestsPerNodeCycle.toFixed(2)} | ${s(n.wallMs)} s | ${n.kinds.join(', ')} | ${int(n.run.files)} files on ${n.run.server} |`);
    out.push(
      '',
      'An idle cycle stays one LIST of `heads/` per node with any number of nodes (the listing grows by one small',
      'key per node). On top of that, each node rewrites its head every `heartbeat` (10 min), and every other node',
      'then GETs that head once: per node per month 4,320 PUTs and 4,320 × (nodes − 1) GETs. Housekeeping runs at',
      'most hourly: a non-leader reads the heads; the leader also lists snapshots, journals, blobs (one LIST per',
      '1,000 blobs, so it grows with the number of distinct contents) and bundles.',
      '',
    );
  }

  out.push('**Change rate.** Requests per changed file above an idle cycle, from the 1% churn case:', '', '| files | server | fedsync publish | fedsync receive (per node) | rclone upload sync | rclone download sync |', '|--:|---|--:|--:|--:|--:|');
  for (const r of runs) {
    const f = (c: string, t: Row['tool']) => {
      const v = perChange(r, c, t, r.churnFiles);
      return v === null ? '—' : v.toFixed(2);
    };
    out.push(`| ${int(r.files)} | ${r.server} | ${f('churn-up', 'fedsync')} | ${f('churn-down', 'fedsync')} | ${f('churn-up', 'rclone')} | ${f('churn-down', 'rclone')} |`);
  }
  out.push(
    '',
    'fedsync pays about one PUT per changed file to publish (the blob; segments hold 10,000 records each) and one',
    'GET per changed file per receiving node; a deletion costs no blob at all. rclone pays its whole idle cost',
    '(listing + a HEAD per file) on every sync, plus the transfers.',
    '',
    '**S3 request bill per node per month**, cron every minute, nothing changing (changes add the per-file costs above):',
    '',
    '| files | server | fedsync, non-leader node | fedsync, leader node | fedsync requests | rclone sync | rclone requests |',
    '|--:|---|--:|--:|---|--:|---|',
  );
  for (const r of runs) {
    const m = monthly(r, 1);
    if (!m) continue;
    out.push(`| ${int(r.files)} | ${r.server} | ${usd(m.fedsync.other)} | ${usd(m.fedsync.leader)} | ${m.fedsync.counts} | ${usd(m.rclone.total)} | ${m.rclone.counts} |`);
  }
  out.push('', 'Two nodes assumed for the peer-head GETs; each further node adds 4,320 GETs ($0.0017) per node per month.', '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The document

const HEADING = '## Heavyweight sync against rclone';
const INTRO = `${HEADING}

\`bench/run.ts\` (\`npm run bench -- --files N\`): fedsync and rclone (the anchor) on the same machine, in
the same run, against one S3 server on loopback (Ceph RGW when installed, s3rver otherwise) behind
the counting proxy of \`test/support/proxy.ts\`, so every request either tool makes is counted by kind.
The tree is a deterministic WordPress-uploads-like tree (\`uploads/<year>/<month>/\`, then
\`uploads/sites/<n>/<year>/<month>/\`, 100–150 files per directory, lognormal sizes with a mean of
8.3 KB, AES-CTR content), generated once per size and seed and cached. fedsync runs as cron runs
it: one \`node bin/fedsync run\` process per cycle, \`settle = "0s"\`. rclone runs with its defaults.
Wall time is measured around the process, peak RSS by GNU time (\`%M\`). Every case runs once,
except the idle ones (median of three); the page cache is warm throughout.

Cases: **upload** \`rclone sync\` of the tree vs the first \`fedsync run\` of node A; **download**
\`rclone sync\` into an empty directory vs the first run of an empty node B, after
\`fedsync housekeep\` on A (a snapshot with bundles exists); **idle** \`rclone sync\` with nothing
changed vs \`fedsync run\` after two settling rounds, with \`rsync -an\` over A's and B's trees and a
\`find -printf\` stat walk as floors; **one file changed** and **1% churn** (half rewritten, a quarter
deleted, a quarter new), each as an upload sync vs A's publishing run and a download sync vs B's
receiving run; **big file** \`rclone copyto\` both ways vs A's publishing run and B's receiving run.
`;

function parseRuns(doc: string): BenchResult[] {
  const runs: BenchResult[] = [];
  for (const m of doc.matchAll(/<!-- bench-result (\{.*\}) -->/g)) {
    try {
      runs.push(JSON.parse(m[1]!) as BenchResult);
    } catch {
      // a hand-edited comment; skip it
    }
  }
  return runs;
}

/** Splits a `## ` section into its intro and `### ` subsections (heading line → text). */
function subsections(body: string): { intro: string; subs: [string, string][] } {
  const parts = body.split(/\n(?=### )/);
  const intro = parts[0]!.startsWith('### ') ? '' : parts.shift()!;
  return { intro, subs: parts.map((p) => [p.split('\n')[0]!, p.replace(/\s+$/, '') + '\n']) };
}

export function writeDoc(file: string, r: BenchResult): void {
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  let start = doc.indexOf(`${HEADING}\n`);
  if (start < 0) {
    // Before any other section (the lightweight propagation benchmark keeps its own).
    const firstSection = doc.indexOf('\n## ');
    const at = firstSection < 0 ? doc.length : firstSection + 1;
    doc = `${doc.slice(0, at).trimEnd()}\n\n${INTRO}\n${doc.slice(at)}`;
    start = doc.indexOf(`${HEADING}\n`);
  }
  const next = doc.indexOf('\n## ', start + HEADING.length);
  const end = next < 0 ? doc.length : next + 1;
  const { intro, subs } = subsections(doc.slice(start, end));
  const runHeadingKey = runHeading(r);
  const others = subs.filter(([h]) => !h.startsWith('### ') || (h !== runHeadingKey && h !== '### Scale notes' && !/^### [\d,]+ files on /.test(h)));
  const runSubs = subs.filter(([h]) => /^### [\d,]+ files on /.test(h) && h !== runHeadingKey);
  const runs = [...parseRuns(runSubs.map(([, t]) => t).join('\n')), r].sort((x, y) => (x.server === y.server ? y.files - x.files : x.server < y.server ? -1 : 1));
  const body = [
    intro.trimEnd(),
    ...runs.map((x) => (x === r ? section(r) : runSubs.find(([h]) => h === runHeading(x))![1])),
    scaleNotes([...runs].sort((x, y) => (x.server === y.server ? x.files - y.files : x.server < y.server ? -1 : 1))),
    ...others.map(([, t]) => t),
  ]
    .map((t) => t.replace(/\s+$/, ''))
    .join('\n\n');
  doc = doc.slice(0, start) + body + '\n' + (end < doc.length ? `\n${doc.slice(end).replace(/^\n+/, '')}` : '');
  writeFileSync(file, doc);
}

/** Prints the run's table and goals, and writes the document unless `file` is null. */
export function report(r: BenchResult, file: string | null): void {
  console.log(`\n${section(r).replace(/\n<!-- bench-result .* -->\n/, '\n')}`);
  console.log(scaleNotes([r]));
  if (file) {
    writeDoc(file, r);
    console.log(`written to ${file}`);
  }
}
