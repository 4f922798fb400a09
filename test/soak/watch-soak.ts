// The long-running soak of `fedsync watch`: two lightweight nodes, each daemon running for the
// whole soak, under continuous change (each node creates, rewrites and deletes files in its own
// subdirectory, a few per second) with store faults on. Every few seconds it samples each
// daemon's resident memory (/proc/PID/status VmRSS) and the age of its status.json. At the end
// (faults off, changes stopped) both trees must equal what the test wrote, memory must show no
// growth trend (median of the last quarter of samples at most 20% above the second quarter's),
// and status.json must never have gone stale (older than three polls plus a margin).
import { existsSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomFaults } from '../support/faults.js';
import { startProxy } from '../support/proxy.js';
import { rgwTargetFromEnv } from '../support/s3.js';
import { converge, Federation, rgwBackend, s3rverBackend, sha256, snapshot, type Node } from '../e2e/watch-harness.js';

const LIGHT = { delay: '300ms', poll: '1s', rescan: '30s', settle: '0s' };
const STALE_MS = 3 * 1000 + 10_000;
const SAMPLE_MS = 3000;

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
};

/** Whether memory grew: last quarter's median more than 20% above the second quarter's. */
export function rssGrows(samples: number[]): { grows: boolean; q2: number; q4: number } {
  const q = Math.floor(samples.length / 4);
  const q2 = median(samples.slice(q, 2 * q));
  const q4 = median(samples.slice(3 * q));
  return { grows: q4 > q2 * 1.2, q2, q4 };
}

export async function watchSoak(opts: { minutes: number; rgw: boolean; seed?: number; log: (s: string) => void }): Promise<boolean> {
  const seed = opts.seed ?? (Math.random() * 2 ** 31) >>> 0;
  const rgw = opts.rgw ? rgwTargetFromEnv() : null;
  if (opts.rgw && !rgw) throw new Error('RGW asked for, but FEDSYNC_TEST_RGW_* are not set');
  const backend = rgw ? await rgwBackend(rgw) : await s3rverBackend();
  const proxy = await startProxy({ upstream: backend.s3!.endpoint });
  const fed = new Federation(backend.withEndpoint!(proxy.endpoint), 'soak');
  const problems: string[] = [];
  const rss = new Map<string, number[]>();
  let ops = 0;
  const faults = randomFaults(seed, 0.05);
  try {
    const nodes = [await fed.add('A', { sets: [{ name: 'cfg' }], defaults: LIGHT }), await fed.add('B', { sets: [{ name: 'cfg' }], defaults: LIGHT })];
    const expected = new Map<string, string>(); // path -> sha256
    for (const n of nodes) mkdirSync(join(n.root(), n.name));
    proxy.setFault(faults.hook);
    for (const n of nodes) n.start();
    const statusFile = (n: Node) => join(n.stateDir, 'cfg', 'status.json');
    const deadline = Date.now() + opts.minutes * 60_000;
    let nextSample = Date.now() + SAMPLE_MS;
    let x = seed;
    const rand = (k: number) => {
      x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return x % k;
    };
    while (Date.now() < deadline) {
      const n = nodes[rand(2)]!;
      const rel = `${n.name}/f${rand(150)}.txt`;
      const abs = join(n.root(), rel);
      if (existsSync(abs) && rand(4) === 0) {
        unlinkSync(abs);
        expected.delete(rel);
      } else {
        const body = `${rel} #${++ops} ${'x'.repeat(rand(4000))}\n`;
        writeFileSync(abs, body);
        expected.set(rel, sha256(body));
      }
      await sleep(150);
      if (Date.now() < nextSample) continue;
      nextSample += SAMPLE_MS;
      for (const d of nodes) {
        if (!d.daemon?.running) {
          problems.push(`${d.name}: the daemon exited: ${d.daemon?.stderr}`);
          return false;
        }
        rss.set(d.name, [...(rss.get(d.name) ?? []), rssKb(d.daemon.pid)]);
        const age = existsSync(statusFile(d)) ? Date.now() - statSync(statusFile(d)).mtimeMs : Infinity;
        if (age > STALE_MS) problems.push(`${d.name}: status.json not updated for ${Math.round(age / 1000)} s (stuck?)`);
      }
    }
    proxy.setFault(undefined);
    await converge(nodes[0]!.root(), [nodes[1]!.root()], 120_000, 'the two roots after the soak');
    const tree = snapshot(nodes[0]!.root());
    for (const [p, h] of expected) if (tree.get(p)?.content !== h) problems.push(`lost or stale: ${p}`);
    for (const [p, e] of tree) if (e.kind === 'file' && !expected.has(p)) problems.push(`unexpected file: ${p}`);
    for (const [name, samples] of rss) {
      const g = rssGrows(samples);
      opts.log(`watch soak: ${name} RSS ${samples.length} samples, second-quarter median ${g.q2} kB, last-quarter median ${g.q4} kB`);
      if (g.grows) problems.push(`${name}: RSS grows: ${g.q2} kB -> ${g.q4} kB`);
    }
  } catch (err) {
    problems.push(`aborted: ${(err as Error).message}\n${fed.diagnostics()}`);
  } finally {
    proxy.setFault(undefined);
    await fed.close();
    await proxy.stop();
    await backend.stop();
  }
  opts.log(
    `watch soak: seed ${seed}, ${opts.minutes} min, ${ops} changes, ${faults.counts.total} faults injected; ${problems.length ? `FAILED:\n  ${problems.slice(0, 20).join('\n  ')}` : 'ok'}`,
  );
  return problems.length === 0;
}
