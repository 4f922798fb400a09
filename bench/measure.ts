// Running one measured command: wall time (monotonic clock around the child), peak RSS (from
// GNU time's %M, the child's maximum resident set), and the requests the counting proxy saw
// while it ran.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Counts, Proxy } from '../test/support/proxy.js';

const GNU_TIME = '/usr/bin/time';

export interface Sample {
  wallMs: number;
  /** Peak resident set of the child, KiB (0 when GNU time is missing). */
  rssKB: number;
  /** CPU time of the child, user + system, ms (0 when GNU time is missing). */
  cpuMs: number;
  counts: Counts;
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOpts {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The proxy whose counts belong to this command (reset before it starts). */
  proxy?: Proxy;
  /** Where GNU time writes its line. */
  scratch: string;
  /** Fail unless the command exits 0 (default true). */
  check?: boolean;
  timeoutMs?: number;
}

export function zeroCounts(): Counts {
  return { list: 0, get: 0, head: 0, put: 0, post: 0, delete: 0, other: 0, total: 0 };
}

let seq = 0;

/** Runs `cmd args` once under GNU time and the proxy's counter. */
export async function measure(cmd: string, args: string[], opts: RunOpts): Promise<Sample> {
  const timeFile = join(opts.scratch, `time-${process.pid}-${seq++}.txt`);
  const haveTime = existsSync(GNU_TIME);
  const [file, argv] = haveTime ? [GNU_TIME, ['-f', '%e %M %U %S', '-o', timeFile, cmd, ...args]] : [cmd, args];
  opts.proxy?.reset();
  const t0 = performance.now();
  const child = spawn(file, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-200_000)));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-200_000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 4 * 3600_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  clearTimeout(timer);
  const wallMs = performance.now() - t0;
  const counts = opts.proxy ? opts.proxy.counts() : zeroCounts();
  let rssKB = 0;
  let cpuMs = 0;
  if (haveTime && existsSync(timeFile)) {
    // The last line: GNU time prefixes "Command exited with non-zero status N" on failure.
    const f = (readFileSync(timeFile, 'utf8').trim().split('\n').at(-1) ?? '').split(' ').map(Number);
    rssKB = f[1] || 0;
    cpuMs = Math.round(((f[2] || 0) + (f[3] || 0)) * 1000);
    rmSync(timeFile, { force: true });
  }
  if ((opts.check ?? true) && code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${code}\n--- stdout\n${stdout.slice(-4000)}\n--- stderr\n${stderr.slice(-4000)}`);
  }
  return { wallMs, rssKB, cpuMs, counts, code, stdout, stderr };
}

/** Runs a measurement `n` times and keeps the one with the median wall time. */
export async function median(n: number, run: () => Promise<Sample>): Promise<Sample & { all: number[] }> {
  const xs: Sample[] = [];
  for (let i = 0; i < n; i++) xs.push(await run());
  const sorted = [...xs].sort((a, b) => a.wallMs - b.wallMs);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { ...mid, all: xs.map((x) => x.wallMs) };
}
