// Crash safety: `fedsync run` killed with SIGKILL at a random point while publishing (node A)
// or applying (node B), 20 seeded trials on one federation. Each trial: A changes a batch
// (small files, a few large ones, modifications, deletions, renames); A's run is killed after
// a random delay or when the proxy sees its K-th request; a normal run of A repairs; then the
// same for B while it applies. After each trial B's tree must equal A's, A's files must be
// exactly what the test wrote (fedsync never touches them), every file must hold a content the
// test wrote (no partial file), and no stray temp file may appear outside `.fedsync/`. At the
// end, no (path, vv) may appear twice in a journal, and B, which changed nothing, must have
// published nothing.
//
// The seed is printed; FEDSYNC_E2E_SEED=<n> replays a run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startProxy, type Proxy } from '../support/proxy.js';
import type { S3Target } from '../support/s3.js';
import {
  assertJournalClean,
  assertOk,
  assertTreesEqual,
  chooseSeed,
  describeResult,
  diffTrees,
  Federation,
  Rng,
  oneServer,
  sha256,
  sleep,
  type CommandResult,
  type FedNode,
  type JournalRecord,
  type Tree,
} from './harness.js';

const TRIALS = 20;
const MiB = 1024 * 1024;

interface Kill {
  how: string;
  result: CommandResult;
  /** The process was still running when the signal came. */
  hit: boolean;
}

/**
 * Runs `fedsync run` on `node` and kills it with SIGKILL either after `delayMs` or as the
 * proxy receives its `atRequest`-th request (the request still goes through, a little
 * delayed, so the store may or may not act on it before the process is gone).
 */
async function killedRun(proxy: Proxy, node: FedNode, plan: { delayMs?: number; atRequest?: number; passDelayMs?: number }): Promise<Kill> {
  proxy.reset();
  const running = node.spawn(['run']);
  let how: string;
  let timer: NodeJS.Timeout | undefined;
  if (plan.atRequest !== undefined) {
    let seen = 0;
    how = `at request #${plan.atRequest}`;
    proxy.setFault((r) => {
      if (++seen !== plan.atRequest) return undefined;
      how += ` (${r.method} ${r.kind} ${r.key ?? ''})`;
      running.kill('SIGKILL');
      return { action: 'pass', delayMs: plan.passDelayMs ?? 0 };
    });
  } else {
    how = `after ${plan.delayMs} ms`;
    timer = setTimeout(() => running.kill('SIGKILL'), plan.delayMs);
  }
  const result = await running.done;
  clearTimeout(timer);
  proxy.setFault(undefined);
  // Requests still in flight through the proxy when the process died: let them finish.
  await sleep(50);
  return { how, result, hit: result.signal === 'SIGKILL' };
}

class Trials {
  /** Every content the test ever wrote on A. */
  readonly written = new Set<string>();
  readonly log: string[] = [];
  private n = 0;

  constructor(
    readonly rng: Rng,
    readonly a: FedNode,
  ) {}

  private files(): string[] {
    const out: string[] = [];
    const walk = (rel: string) => {
      for (const e of readdirSync(this.a.abs(rel), { withFileTypes: true })) {
        if (rel === '' && e.name === '.fedsync') continue;
        const p = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(p);
        else out.push(p);
      }
    };
    walk('');
    return out;
  }

  private write(rel: string, size: number): void {
    const body = Buffer.concat([Buffer.from(`#${++this.n} ${rel}\n`), this.rng.bytes(size)]);
    this.written.add(sha256(body));
    writeFileSync(this.a.abs(rel), body);
  }

  /** One batch of changes on A. */
  batch(trial: number): { what: string; contents: number } {
    const before = this.written.size;
    const dir = `t${String(trial).padStart(2, '0')}`;
    mkdirSync(this.a.abs(`${dir}/sub`), { recursive: true });
    const existing = this.files();
    const small = this.rng.int(5, 25);
    for (let i = 0; i < small; i++) this.write(`${dir}/${this.rng.chance(0.3) ? 'sub/' : ''}f${i}.txt`, this.rng.int(0, 20_000));
    // Large files make publishing and applying take long enough to be interrupted in the
    // middle; now and then one is above 16 MiB, so it is streamed and goes multipart.
    const large = this.rng.int(1, 3);
    const sizes: number[] = [];
    for (let i = 0; i < large; i++) {
      const size = this.rng.chance(0.1) ? this.rng.int(17 * MiB, 18 * MiB) : this.rng.int(1 * MiB, 6 * MiB);
      sizes.push(size);
      this.write(`${dir}/large ${i}.bin`, size);
    }
    let modified = 0;
    let deleted = 0;
    let renamed = 0;
    for (const p of existing) {
      if (!existsSync(this.a.abs(p))) continue;
      const x = this.rng.next();
      if (x < 0.08) {
        this.write(p, this.rng.int(0, 5000));
        modified++;
      } else if (x < 0.12) {
        unlinkSync(this.a.abs(p));
        deleted++;
      } else if (x < 0.14) {
        renameSync(this.a.abs(p), this.a.abs(`${dir}/renamed ${renamed++}.txt`));
      }
    }
    const what = `${small} small, ${large} large (${sizes.map((s) => `${(s / MiB).toFixed(1)} MiB`).join(', ')}), ${modified} modified, ${deleted} deleted, ${renamed} renamed`;
    return { what, contents: this.written.size - before };
  }

  /** Every file holds a content the test wrote. */
  checkContents(tree: Tree, who: string): void {
    for (const [p, e] of tree) {
      // Only names the test makes: a temp file of fedsync's outside .fedsync/ would show here.
      assert.match(p, /^t\d\d(\/sub)?(\/(f\d+\.txt|large \d\.bin|renamed \d+\.txt))?$/, `${who}: a stray entry ${JSON.stringify(p)}`);
      if (e.kind === 'file') assert.ok(this.written.has(e.sha256!), `${who}: ${JSON.stringify(p)} holds content the test never wrote (${e.size} B): a partial or stray file`);
      else assert.equal(e.kind, 'dir', `${who}: ${p} is a ${e.kind}`);
    }
  }
}

/**
 * An LD_PRELOAD library that wraps rename(2): when the new path ends with
 * $FEDSYNC_TEST_KILL_AFTER_RENAME, the process gets SIGKILL right after the rename succeeded.
 * Built once per test process with the system C compiler (which building better-sqlite3
 * needs anyway); null when there is none.
 */
let shimPath: string | null | undefined;
function buildKillShim(): string | null {
  if (shimPath !== undefined) return shimPath;
  const dir = mkdtempSync(join(tmpdir(), 'fedsync-e2e-shim-'));
  const src = join(dir, 'kill-after-rename.c');
  writeFileSync(
    src,
    `#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
int rename(const char *from, const char *to) {
  static int (*real)(const char *, const char *);
  if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
  int r = real(from, to);
  const char *suffix = getenv("FEDSYNC_TEST_KILL_AFTER_RENAME");
  if (r == 0 && suffix && *suffix) {
    size_t n = strlen(to), m = strlen(suffix);
    if (n >= m && strcmp(to + n - m, suffix) == 0) raise(SIGKILL);
  }
  return r;
}
`,
  );
  const out = join(dir, 'kill-after-rename.so');
  const cc = spawnSync(process.env.CC ?? 'cc', ['-shared', '-fPIC', '-O2', '-o', out, src, '-ldl'], { encoding: 'utf8' });
  shimPath = cc.status === 0 ? out : null;
  if (!shimPath) console.log(`# cannot build the LD_PRELOAD shim: ${cc.error?.message ?? cc.stderr}`);
  return shimPath;
}

for (const server of oneServer('crash recovery')) {
  describe(`crash recovery on ${server.name}`, () => {
    let target: S3Target & { stop(): Promise<void> };
    let proxy: Proxy;
    before(async () => {
      target = await server.start();
      proxy = await startProxy({ upstream: target.endpoint });
    });
    after(async () => {
      await proxy?.stop();
      await target?.stop();
    });

    it(`${TRIALS} SIGKILLs during publish and during apply`, { timeout: 900_000 }, async (t) => {
      const seed = chooseSeed();
      console.log(`# crash recovery on ${server.name}: seed ${seed} (replay with FEDSYNC_E2E_SEED=${seed})`);
      t.diagnostic(`seed ${seed}`);
      const rng = new Rng(seed);
      const fed = await Federation.create(target, { nodes: ['A', 'B'], endpoint: proxy.endpoint, sync: { max_delete: '100%' } });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      const trials = new Trials(rng, a);
      let hits = 0;
      const echoes: string[] = [];
      try {
        for (let trial = 1; trial <= TRIALS; trial++) {
          const { what, contents } = trials.batch(trial);
          const before = a.snapshot();
          // A normal cycle makes about one request per new content plus the LIST, a head GET,
          // the segment and the head; aim request-count kills inside that.
          const requests = contents + 4;
          const plan = () =>
            rng.chance(0.5) ? { atRequest: rng.int(1, requests), passDelayMs: rng.int(0, 20) } : { delayMs: rng.int(0, 1500) };
          const ka = await killedRun(proxy, a, plan());
          assert.ok(ka.hit || ka.result.code === 0, `A's run ended on its own, and failed:\n${describeResult(ka.result)}`);
          proxy.reset();
          await a.run();
          const aAfter = a.snapshot();
          const d = diffTrees(before, aAfter, 'before', 'after');
          assert.deepEqual(d, [], `trial ${trial}: fedsync changed A's own files while publishing [seed ${seed}]`);

          const kb = await killedRun(proxy, b, plan());
          assert.ok(kb.hit || kb.result.code === 0, `B's run ended on its own, and failed:\n${describeResult(kb.result)}`);
          proxy.reset();
          assertOk(await b.fedsync(['run']), `trial ${trial}: B's run after the crash`);

          hits += Number(ka.hit) + Number(kb.hit);
          const line = `trial ${trial}: ${what}; A killed ${ka.how}${ka.hit ? '' : ' (had finished)'}; B killed ${kb.how}${kb.hit ? '' : ' (had finished)'}`;
          trials.log.push(line);
          t.diagnostic(line);

          const treeA = a.snapshot();
          const treeB = b.snapshot();
          trials.checkContents(treeA, `trial ${trial}, A`);
          trials.checkContents(treeB, `trial ${trial}, B`);
          assertTreesEqual(
            [
              { name: 'A', tree: treeA },
              { name: 'B', tree: treeB },
            ],
            `trial ${trial} [seed ${seed}]`,
          );
          // B changed nothing locally: it must publish nothing. An applied file taken for a
          // local change after a crash shows here; noted, and checked again at the end, so the
          // remaining trials still run.
          const bJournal = await fed.journal(b.id);
          const fresh = bJournal.flatMap((seg) => seg.records.map((r) => ({ seg: seg.seq, r }))).slice(echoes.length);
          if (fresh.length > 0) {
            const aJournal = await fed.journal(a.id);
            const show = (r: JournalRecord) => `${r.kind} ${r.digest?.slice(0, 10) ?? ''} mode ${r.mode.toString(8)} mtime ${r.mtime} vv ${JSON.stringify(r.vv)} hlc ${r.hlc}`;
            for (const { seg, r } of fresh) {
              const history = aJournal.flatMap((x) => x.records.filter((y) => y.path === r.path).map((y) => `A segment ${x.seq}: ${show(y)}`));
              echoes.push(`trial ${trial} (${line})\n    ${JSON.stringify(r.path)}: B segment ${seg}: ${show(r)}\n      ${history.join('\n      ')}`);
            }
          }
          // A picks up B's acks before the next batch.
          await a.run();
        }
        assert.ok(hits >= TRIALS, `only ${hits} of ${2 * TRIALS} kills landed while fedsync was running`);

        const aRecords = await assertJournalClean(fed, a);
        await assertJournalClean(fed, b);
        assert.deepEqual(
          echoes,
          [],
          `B changed nothing locally, yet published ${echoes.length} record(s): files it had applied, taken for local changes after a crash [seed ${seed}]:\n  ${echoes.join('\n  ')}`,
        );
        t.diagnostic(`${hits} of ${2 * TRIALS} kills hit a running process; A published ${aRecords} records`);
        const leftovers = existsSync(b.abs('.fedsync/tmp')) ? readdirSync(b.abs('.fedsync/tmp')) : [];
        t.diagnostic(`B's .fedsync/tmp holds ${leftovers.length} file(s) after the last run`);
      } finally {
        await fed.close();
      }
    });

    // The kill the random trials above keep hitting, made exact: B's run dies right after it
    // renames A's version 2 into place (an LD_PRELOAD shim raises SIGKILL once rename(2) has
    // returned for that path), before anything else it would do about it. Meanwhile A makes
    // version 3. B's next run must take the file for what it is, A's version 2, not for a
    // local edit of its own: otherwise that "edit" is concurrent with A's version 3, wins on
    // its later HLC, and A's latest edit ends up as a conflict copy everywhere.
    it('killed right after renaming a download into place: the file is not republished as a local change', { timeout: 300_000 }, async (t) => {
      const shim = buildKillShim();
      if (!shim) {
        t.skip('no C compiler to build the LD_PRELOAD shim');
        return;
      }
      const fed = await Federation.create(target, { nodes: ['A', 'B'], endpoint: proxy.endpoint });
      const [a, b] = fed.nodes as [FedNode, FedNode];
      try {
        writeFileSync(a.abs('page.html'), 'version 1\n');
        await a.run();
        await b.run();
        writeFileSync(a.abs('page.html'), 'version 2\n');
        await a.run();
        const killed = await b.fedsync(['run'], { env: { LD_PRELOAD: shim, FEDSYNC_TEST_KILL_AFTER_RENAME: '/root/page.html' } });
        assert.equal(killed.signal, 'SIGKILL', `the shim did not kill B's run:\n${describeResult(killed)}`);
        assert.equal(readFileSync(b.abs('page.html'), 'utf8'), 'version 2\n', 'B died after the rename');
        // A edits again before B recovers.
        writeFileSync(a.abs('page.html'), 'version 3\n');
        await a.run();
        await b.run();
        await a.run();
        await b.run();
        const bRecords = (await fed.journal(b.id)).flatMap((seg) => seg.records.map((r) => `${r.path} ${JSON.stringify(r.vv)}`));
        const listing = (n: FedNode) => [...n.snapshot()].map(([p, e]) => `${p}: ${e.kind === 'file' ? JSON.stringify(readFileSync(n.abs(p), 'utf8')) : e.kind}`).join(', ');
        assert.equal(
          readFileSync(a.abs('page.html'), 'utf8'),
          'version 3\n',
          `A's latest edit was replaced on A by the version B had applied; A holds ${listing(a)}; B published ${bRecords.join(', ')}`,
        );
        assert.equal(readFileSync(b.abs('page.html'), 'utf8'), 'version 3\n', `B does not hold A's latest edit: ${listing(b)}`);
        assert.deepEqual(bRecords, [], 'B republished the file it had applied as its own change');
        assertTreesEqual([
          { name: 'A', tree: a.snapshot() },
          { name: 'B', tree: b.snapshot() },
        ]);
      } finally {
        await fed.close();
      }
    });
  });
}
