// Acceptance tests of lightweight mode: `fedsync watch` daemons, one process per node of the
// built binary (bin/fedsync → dist/; build first with `npx tsc -p tsconfig.json`), each with
// its own root, state directory, log and config, against s3rver, Ceph RGW (when
// test/support/rgw.sh's exports are set; FEDSYNC_REQUIRE_RGW=1 makes it mandatory) and a
// file:// store. Trees are compared entry by entry: kind, permission bits, and for files the
// sha256 of the content, the size and the mtime in ms (`.fedsync/` is skipped).
//
// Knobs: FEDSYNC_E2E_BURST_REPS repetitions of the 3,000-file burst (default 5; 1 on file://);
// FEDSYNC_E2E_BACKENDS=s3rver,file,rgw to choose the stores (default: rgw or s3rver, and file); FEDSYNC_KEEP_E2E=1 keeps the
// nodes' directories (logs, manifests) for a look after the run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startProxy, type Proxy } from '../support/proxy.js';
import {
  backendsFromEnv,
  converge,
  counts,
  explainDivergence,
  Federation,
  REPO,
  rng,
  sha256,
  snapshot,
  treeDiff,
  waitFor,
  type Node,
  type NodeOptions,
  type StoreBackend,
  type Tree,
} from './watch-harness.js';

/** The burst is the acceptance on S3 stores; on file:// once is enough unless asked for more. */
const burstReps = (store: string) => Number(process.env.FEDSYNC_E2E_BURST_REPS ?? (store === 'file' ? 1 : 5));
// By default one S3 server (RGW where configured, else s3rver) and file://: the daemon's logic
// does not depend on which S3 server answers, and the burst is long.
const ONLY = process.env.FEDSYNC_E2E_BACKENDS?.split(',').map((s) => s.trim()) ?? (process.env.FEDSYNC_TEST_RGW_ENDPOINT ? ['rgw', 'file'] : ['s3rver', 'file']);
/** Lightweight timings: quick reaction, quick polls, a short settle. */
const LIGHT = { delay: '200ms', poll: '500ms', settle: '1s' };
const PROBE = '_probe';

// ---------------------------------------------------------------------------------------------
// What the test wrote: the expected tree of files (path → sha256), and every content it ever
// wrote anywhere (a file with any other content is a partial or foreign file).

class Model {
  readonly files = new Map<string, string>();
  readonly written = new Set<string>();

  constructor(readonly root: string) {}

  write(rel: string, content: string | Buffer, mode?: number): void {
    const abs = join(this.root, rel);
    mkdirSync(join(abs, '..'), { recursive: true });
    writeFileSync(abs, content);
    if (mode !== undefined) chmodSync(abs, mode);
    this.wrote(rel, content);
  }

  /** Notes a file that appeared by other means (a copy, sed) with this content. */
  wrote(rel: string, content: string | Buffer): void {
    const h = sha256(content);
    this.files.set(rel, h);
    this.written.add(h);
  }

  remove(rel: string): void {
    rmSync(join(this.root, rel));
    this.files.delete(rel);
  }

  /** Renames a directory (or file) and everything under it. */
  rename(from: string, to: string): void {
    renameSync(join(this.root, from), join(this.root, to));
    for (const [p, h] of [...this.files]) {
      if (p === from || p.startsWith(`${from}/`)) {
        this.files.delete(p);
        this.files.set(to + p.slice(from.length), h);
      }
    }
  }

  /** Copies a prepared source tree in one go (fs.cpSync), and notes its files. */
  copyIn(src: Source, to: string): void {
    cpSync(src.dir, join(this.root, to), { recursive: true });
    for (const [p, c] of src.files) this.wrote(`${to}/${p}`, c);
  }

  filePaths(): string[] {
    return [...this.files.keys()];
  }

  /** The tree has exactly the model's files, with the model's content (probes aside). */
  check(tree: Tree, where: string): void {
    const problems: string[] = [];
    for (const [p, h] of this.files) {
      const e = tree.get(p);
      if (!e || e.kind !== 'file') problems.push(`missing ${p}`);
      else if (e.content !== h) problems.push(`wrong content in ${p}${this.written.has(e.content!) ? '' : ' (content the test never wrote: a partial file)'}`);
    }
    for (const [p, e] of tree) {
      if (e.kind !== 'dir' && !this.files.has(p) && !p.startsWith(PROBE)) problems.push(`unexpected ${e.kind} ${p}`);
    }
    assert.ok(problems.length === 0, `${where}: ${problems.length} problem(s): ${problems.slice(0, 15).join('; ')}`);
  }

  /** Every file of the tree holds content the test wrote: nothing partial, nothing foreign. */
  checkContents(tree: Tree, where: string): void {
    const bad = [...tree].filter(([p, e]) => e.kind === 'file' && !p.startsWith(PROBE) && !this.written.has(e.content!)).map(([p]) => p);
    assert.deepEqual(bad, [], `${where}: files with content the test never wrote`);
  }
}

/** A prepared tree outside any root, to be copied in one go: `dirs` directories of `perDir` files. */
interface Source {
  dir: string;
  files: Map<string, string>;
}

function makeSource(tag: string, topDirs: number, subDirs: number, perDir: number, rand: () => number): Source {
  const base = mkdtempSync(join(tmpdir(), 'fedsync-watch-src-'));
  const dir = join(base, 'tree');
  const files = new Map<string, string>();
  for (let i = 0; i < topDirs; i++) {
    for (let j = 0; j < subDirs; j++) {
      const d = j === 0 ? `d${i}` : `d${i}/s${j}`;
      mkdirSync(join(dir, d), { recursive: true });
      for (let k = 0; k < perDir; k++) {
        const p = `${d}/f${k}.conf`;
        const content = `${tag} ${p} ${randomBytes(8).toString('hex')}\n${'x'.repeat(Math.floor(rand() * 4000))}`;
        writeFileSync(join(dir, p), content);
        files.set(p, content);
      }
    }
  }
  return { dir, files };
}

function dropSource(src: Source): void {
  rmSync(join(src.dir, '..'), { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Nodes

function nodeOptions(extra: Partial<NodeOptions> = {}): NodeOptions {
  return { sets: [{ name: 'conf' }], defaults: LIGHT, ...extra };
}

/**
 * Waits until `from`'s daemon publishes what is written into its root: a probe file is
 * rewritten until it reaches `to` (a watcher that is still setting up may miss one write).
 */
async function probe(from: Node, to: Node, set?: string, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  const file = `${PROBE}-${from.name}`;
  for (let n = 0; ; n++) {
    const content = `probe ${n} ${Date.now()}`;
    writeFileSync(join(from.root(set), file), content);
    const got = await waitFor(
      () => {
        try {
          return readFileSync(join(to.root(set), file), 'utf8') === content;
        } catch {
          return false;
        }
      },
      3000,
      'probe',
      50,
    ).catch(() => false);
    if (got) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${from.name}'s daemon did not publish a probe to ${to.name} within ${timeoutMs} ms`);
  }
}

/**
 * Starts the daemons of `nodes` and waits until each one's first full cycle is done (a
 * restart with thousands of changes to publish or apply takes a while on a loaded machine).
 */
async function startAll(nodes: Node[], args: string[] = [], timeoutMs = 180_000): Promise<void> {
  const marks = nodes.map((n) => n.logLines().length);
  for (const n of nodes) n.start(args);
  await Promise.all(
    nodes.map((n, i) =>
      waitFor(
        () => {
          if (!n.daemon!.running) throw new Error(`${n.name}'s daemon exited: ${n.daemon!.stderr}`);
          return n.logLines().slice(marks[i]).some((l) => l.msg === 'cycle done' || l.msg === 'cycle failed');
        },
        timeoutMs,
        `${n.name}'s first cycle`,
      ),
    ),
  );
}

/** Two nodes A and B with their daemons running and A's watcher known to be live. */
async function pair(backend: StoreBackend, opts: NodeOptions = nodeOptions()): Promise<{ fed: Federation; a: Node; b: Node }> {
  const fed = new Federation(backend);
  try {
    const a = await fed.add('a', opts);
    const b = await fed.add('b', opts);
    await startAll([a, b]);
    await probe(a, b);
    return { fed, a, b };
  } catch (err) {
    (err as Error).message += `\n${fed.diagnostics()}`;
    await fed.close();
    throw err;
  }
}

/**
 * Waits until B's tree (of `set`) equals A's; on a timeout the error says, path by path,
 * whether A's daemon missed a local change or B has not applied what A published.
 */
async function convergeAB(a: Node, b: Node, timeoutMs: number, what: string, set?: string): Promise<number> {
  try {
    return await converge(a.root(set), [b.root(set)], timeoutMs, what);
  } catch (err) {
    (err as Error).message += `\n${explainDivergence(a, b, set)}`;
    throw err;
  }
}

/** Runs `body`; on failure adds the nodes' stderr and log tails to the error. Always closes. */
async function withFed<T>(fed: Federation, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    (err as Error).message += `\n${fed.diagnostics()}`;
    throw err;
  } finally {
    await fed.close();
  }
}

function tmpEmpty(n: Node, set?: string): void {
  const tmp = join(n.root(set), '.fedsync', 'tmp');
  const left = existsSync(tmp) ? readdirSync(tmp) : [];
  assert.deepEqual(left, [], `${n.name}: temp files left in .fedsync/tmp`);
}

function checkBuilt(): void {
  if (process.env.FEDSYNC_E2E_BIN) return; // another build of fedsync, by request
  const main = join(REPO, 'dist', 'cli', 'main.js');
  assert.ok(existsSync(main), 'dist/ is missing: build first with `npx tsc -p tsconfig.json`');
  const built = statSync(main).mtimeMs;
  const newer: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && statSync(p).mtimeMs > built) newer.push(p);
    }
  };
  walk(join(REPO, 'src'));
  if (newer.length > 0) process.stderr.write(`warning: ${newer.length} file(s) in src/ are newer than dist/ (e.g. ${newer[0]}); the tests run dist/\n`);
}

// ---------------------------------------------------------------------------------------------
// The tests, once per store

function suite(name: string, start: () => Promise<StoreBackend>): void {
  describe(`fedsync watch, ${name} store`, { concurrency: false }, () => {
    let backend: StoreBackend;
    before(async () => {
      checkBuilt();
      backend = await start();
    });
    after(async () => {
      await backend?.stop();
    });

    const BURST_REPS = burstReps(name);
    it(`a burst of 3,000 files in 300 directories, 1,000 deletions and directory renames reaches B within 60 s (${BURST_REPS} times)`, { timeout: 90_000 * (BURST_REPS + 2) }, async (t) => {
      const { fed, a, b } = await pair(backend);
      await withFed(fed, async () => {
        const model = new Model(a.root());
        const rand = rng(1000 + BURST_REPS);
        const took: number[] = [];
        for (let rep = 1; rep <= BURST_REPS; rep++) {
          // 30 top directories with 9 subdirectories each: 300 directories of 10 files.
          const src = makeSource(`rep${rep}`, 30, 10, 10, rand);
          const t0 = Date.now();
          model.copyIn(src, `burst${rep}`);
          const paths = model.filePaths().filter((p) => !p.startsWith(PROBE));
          for (let n = 0; n < 1000; n++) {
            const i = Math.floor(rand() * paths.length);
            model.remove(paths[i]!);
            paths.splice(i, 1);
          }
          model.rename(`burst${rep}/d3`, `burst${rep}/d3-renamed`);
          // A directory B already has: a rename of synced content.
          if (rep > 1) model.rename(`burst${rep - 1}/d4`, `burst${rep - 1}/d4-renamed`);
          const changed = Date.now() - t0;
          let ms: number;
          try {
            await convergeAB(a, b, 60_000, `burst ${rep}`);
            ms = Date.now() - t0;
          } finally {
            dropSource(src);
          }
          took.push(ms - changed);
          const treeA = snapshot(a.root());
          model.check(treeA, `A after burst ${rep}`);
          const treeB = snapshot(b.root());
          assert.equal(treeDiff(treeA, treeB), '');
          model.checkContents(treeB, `B after burst ${rep}`);
          const c = counts(treeB);
          t.diagnostic(`burst ${rep}: changes made in ${changed} ms, B equal to A ${ms - changed} ms later (${ms} ms after the copy began; ${c.files} files, ${c.dirs} dirs)`);
        }
        t.diagnostic(`burst convergence after the changes (ms): ${took.join(', ')}; max ${Math.max(...took)}`);
        tmpEmpty(b);
      });
    });

    it('changes made while the daemon was stopped (SIGTERM, exit 0) are published at its next start', { timeout: 120_000 }, async (t) => {
      const { fed, a, b } = await pair(backend);
      await withFed(fed, async () => {
        const model = new Model(a.root());
        for (let i = 0; i < 20; i++) model.write(`etc/app${i}.conf`, `v1 ${i}\n`);
        model.write('etc/keep.conf', 'keep\n');
        model.write('etc/perm.conf', 'perm\n');
        for (let i = 0; i < 5; i++) model.write(`etc/moved/m${i}.conf`, `m ${i}\n`);
        await convergeAB(a, b, 20_000, 'before the stop');

        const stopped = await a.daemon!.stop('SIGTERM', 5000);
        assert.deepEqual([stopped.code, stopped.signal], [0, null], `exit after SIGTERM: ${a.daemon!.stderr}`);
        assert.ok(stopped.ms < 5000, `took ${stopped.ms} ms to stop`);
        t.diagnostic(`A stopped ${stopped.ms} ms after SIGTERM`);
        assert.ok(a.logLines().some((l) => l.msg === 'stopped'), 'A logged that it stopped');

        // While A is down: edits, additions, deletions, a chmod, a directory rename.
        for (let i = 0; i < 5; i++) model.write(`etc/app${i}.conf`, `v2 ${i}\n`);
        for (let i = 5; i < 10; i++) model.remove(`etc/app${i}.conf`);
        model.write('new/dir/added.conf', 'added while stopped\n');
        chmodSync(join(a.root(), 'etc/perm.conf'), 0o600);
        model.rename('etc/moved', 'etc/moved-renamed');
        await sleep(1500); // past `settle`: nothing is left for a later cycle
        // B must not have any of it yet.
        assert.ok(existsSync(join(b.root(), 'etc/app5.conf')), 'B did not change while A was down');

        await startAll([a]);
        const ms = await convergeAB(a, b, 20_000, 'after the restart');
        t.diagnostic(`B equal to A ${ms} ms after A's first cycle`);
        model.check(snapshot(a.root()), 'A');
        assert.equal(snapshot(b.root()).get('etc/perm.conf')?.mode, 0o600);

        // SIGINT too, on B this time.
        const b2 = await b.daemon!.stop('SIGINT', 5000);
        assert.deepEqual([b2.code, b2.signal], [0, null], `exit after SIGINT: ${b.daemon!.stderr}`);
      });
    });

    it('kill -9 mid-burst: after a restart nothing is lost, no partial file and no temp file anywhere', { timeout: 480_000 }, async (t) => {
      // On S3 the daemons talk through a proxy, so A can be killed at its 300th blob upload
      // and B at its 300th blob download; on file:// the blobs directory and B's tree tell.
      let proxy: Proxy | null = null;
      let trap: { kind: 'put' | 'get'; left: number; fire: () => void } | null = null;
      let be = backend;
      if (backend.s3 && backend.withEndpoint) {
        proxy = await startProxy({
          upstream: backend.s3.endpoint,
          fault: (r) => {
            if (trap && r.kind === trap.kind && r.key?.includes('/blobs/') && --trap.left === 0) {
              trap.fire();
              trap = null;
            }
            return undefined;
          },
        });
        be = backend.withEndpoint(proxy.endpoint);
      }
      /** Resolves once `node`'s daemon was killed at its `n`th blob upload (put) or download (get). */
      const killAt = (node: Node, kind: 'put' | 'get', n: number, fileTrigger: () => boolean): Promise<void> => {
        const killed = proxy
          ? new Promise<void>((resolve) => {
              trap = { kind, left: n, fire: () => (node.daemon!.child.kill('SIGKILL'), resolve()) };
            })
          : waitFor(fileTrigger, 60_000, `${node.name} at its ${n}th blob`, 5).then(() => void node.daemon!.child.kill('SIGKILL'));
        return Promise.race([
          killed.then(() => node.daemon!.kill()),
          sleep(90_000).then(() => Promise.reject(new Error(`${node.name} never reached its ${n}th blob ${kind}`))),
        ]);
      };
      try {
        const { fed, a, b } = await pair(be);
        await withFed(fed, async () => {
          const model = new Model(a.root());
          const rand = rng(7);
          // Something B already has, to be edited and deleted while A is down.
          for (let i = 0; i < 200; i++) model.write(`base/f${i}.conf`, `base ${i}\n`);
          await convergeAB(a, b, 30_000, 'the base tree');

          const src = makeSource('kill', 30, 10, 10, rand);
          const blobsBefore = proxy ? 0 : countBlobs(fed);
          const killedA = killAt(a, 'put', 300, () => countBlobs(fed) >= blobsBefore + 300);
          try {
            model.copyIn(src, 'burst');
            await killedA;
          } finally {
            dropSource(src);
          }
          const onB = counts(snapshot(b.root())).files;
          t.diagnostic(`A killed mid-publish; B had ${onB} files then`);
          assert.ok(onB < 200 + 3000, 'A was killed before B had the whole burst');

          // While A is down: edits, deletions, additions.
          const burst = model.filePaths().filter((p) => p.startsWith('burst/'));
          for (let i = 0; i < 100; i++) model.write(burst[i * 7]!, `edited while A was dead ${i}\n`);
          for (let i = 0; i < 50; i++) model.remove(`base/f${i}.conf`);
          for (let i = 50; i < 100; i++) model.write(`base/f${i}.conf`, `base ${i} v2\n`);
          for (let i = 0; i < 20; i++) model.write(`later/n${i}.conf`, `later ${i}\n`);

          // A restarts; B is killed in the middle of downloading what A publishes, then restarts.
          await sleep(1100); // the edits above are past `settle`
          const filesOnB = counts(snapshot(b.root())).files;
          const killedB = killAt(b, 'get', 300, () => counts(snapshot(b.root())).files >= filesOnB + 300);
          await startAll([a]);
          await killedB;
          const partial = snapshot(b.root());
          t.diagnostic(`B killed mid-apply with ${counts(partial).files} files`);
          model.checkContents(partial, 'B right after kill -9 (outside .fedsync/)');
          await startAll([b]);

          const ms = await convergeAB(a, b, 90_000, 'after the kills');
          t.diagnostic(`B equal to A ${ms} ms after B's restart`);
          model.check(snapshot(a.root()), 'A');
          model.check(snapshot(b.root()), 'B');
          tmpEmpty(a);
          tmpEmpty(b);
        });
      } finally {
        await proxy?.stop();
      }
    });

    it('an editor-style atomic save (temp file renamed over) and sed -i are propagated', { timeout: 120_000 }, async () => {
      const { fed, a, b } = await pair(backend);
      await withFed(fed, async () => {
        const model = new Model(a.root());
        model.write('site/app.ini', 'name = one\nport = 80\n');
        model.write('site/other.ini', 'x = 1\n');
        await convergeAB(a, b, 20_000, 'the first version');

        // An editor's save: the new content goes to a temp file beside the original, which
        // is renamed over it (here with other permission bits, as a fresh file would have).
        const tmp = join(a.root(), 'site/app.ini.tmp~');
        writeFileSync(tmp, 'name = two\nport = 8080\n');
        chmodSync(tmp, 0o640);
        renameSync(tmp, join(a.root(), 'site/app.ini'));
        model.wrote('site/app.ini', 'name = two\nport = 8080\n');
        await convergeAB(a, b, 20_000, 'the atomic save');
        assert.equal(readFileSync(join(b.root(), 'site/app.ini'), 'utf8'), 'name = two\nport = 8080\n');
        assert.equal(snapshot(b.root()).get('site/app.ini')?.mode, 0o640);

        // sed -i writes ./sedXXXXXX beside the file and renames it over.
        const sed = spawnSync('sed', ['-i', 's/8080/9090/', join(a.root(), 'site/app.ini')], { encoding: 'utf8' });
        assert.equal(sed.status, 0, sed.stderr);
        model.wrote('site/app.ini', 'name = two\nport = 9090\n');
        await convergeAB(a, b, 20_000, 'sed -i');
        assert.equal(readFileSync(join(b.root(), 'site/app.ini'), 'utf8'), 'name = two\nport = 9090\n');

        // vim's default: the original is renamed to a backup, the new file written, the backup removed.
        renameSync(join(a.root(), 'site/other.ini'), join(a.root(), 'site/other.ini~'));
        writeFileSync(join(a.root(), 'site/other.ini'), 'x = 2\n');
        rmSync(join(a.root(), 'site/other.ini~'));
        model.wrote('site/other.ini', 'x = 2\n');

        // Several saves inside one `delay`: the last one wins.
        for (let i = 0; i < 5; i++) {
          const t2 = join(a.root(), `site/.app.ini.${i}.swp`);
          writeFileSync(t2, `name = quick ${i}\n`);
          renameSync(t2, join(a.root(), 'site/app.ini'));
        }
        model.wrote('site/app.ini', 'name = quick 4\n');
        await convergeAB(a, b, 20_000, 'quick saves');
        model.check(snapshot(a.root()), 'A');
        model.check(snapshot(b.root()), 'B');
      });
    });

    it('SIGHUP reopens the log: after a rename, new lines go to a new file at the configured path', { timeout: 60_000 }, async () => {
      const fed = new Federation(backend);
      const a = await fed.add('a', nodeOptions());
      await withFed(fed, async () => {
        await startAll([a]);
        const rotated = `${a.logFile}.1`;
        renameSync(a.logFile, rotated);
        const before = readFileSync(rotated, 'utf8');
        a.daemon!.child.kill('SIGHUP');
        await sleep(300);
        assert.ok(a.daemon!.running, 'the daemon survives SIGHUP');
        const published = () => a.logLines().find((l) => l.msg === 'cycle done' && (l.published as number) > 0);
        let line;
        for (let n = 0; n < 5 && !line; n++) {
          writeFileSync(join(a.root(), 'after-hup.conf'), `x ${n}\n`);
          line = await waitFor(published, 3000, 'a cycle line in the new log file').catch(() => undefined);
        }
        assert.ok(line, 'the new file has the cycle that published the change');
        assert.equal(readFileSync(rotated, 'utf8'), before, 'nothing more was written to the rotated file');
        assert.ok(before.includes('"watching"'), 'the rotated file kept the lines from before');
        const stopped = await a.daemon!.stop('SIGTERM', 5000);
        assert.equal(stopped.code, 0);
        assert.ok(a.logLines().some((l) => l.msg === 'stopped'), 'the stop is logged to the new file');
      });
    });

    it('`fedsync run --set <lightweight set>` works as a one-shot while no daemon runs', { timeout: 120_000 }, async () => {
      const fed = new Federation(backend);
      const a = await fed.add('a', nodeOptions());
      const b = await fed.add('b', nodeOptions());
      await withFed(fed, async () => {
        const model = new Model(a.root());
        for (let i = 0; i < 30; i++) model.write(`d${i % 3}/f${i}.conf`, `one-shot ${i}\n`);
        await sleep(1100); // past `settle`

        const plain = await a.fedsync(['run']);
        assert.equal(plain.code, 2, 'without --set, `run` has no heavyweight set to sync');
        assert.match(plain.stderr, /--set/);

        const ra = await a.fedsync(['run', '--set', 'conf']);
        assert.equal(ra.code, 0, ra.stderr);
        const rb = await b.fedsync(['run', '--set', 'conf']);
        assert.equal(rb.code, 0, rb.stderr);
        assert.equal(treeDiff(snapshot(a.root()), snapshot(b.root())), '');
        model.check(snapshot(b.root()), 'B');

        // And back: a change on B, one-shot on B then A.
        writeFileSync(join(b.root(), 'd0/from-b.conf'), 'from b\n');
        model.wrote('d0/from-b.conf', 'from b\n');
        await sleep(1100);
        assert.equal((await b.fedsync(['run', '--set', 'conf'])).code, 0);
        assert.equal((await a.fedsync(['run', '--set', 'conf'])).code, 0);
        model.check(snapshot(a.root()), 'A');

        // The daemons take over from there without republishing anything.
        const mark = a.logLines().length;
        await startAll([a, b]);
        await probe(a, b);
        model.write('d1/daemon.conf', 'daemon\n');
        await convergeAB(a, b, 20_000, 'daemons after one-shots');
        const published = a
          .logLines()
          .slice(mark)
          .filter((l) => l.msg === 'cycle done')
          .reduce((n, l) => n + ((l.published as number) ?? 0), 0);
        // Only the probe (written again if a watcher was not ready yet) and the last file.
        assert.ok(published <= 4, `the daemon republished what the one-shot had published (${published} records)`);
      });
    });

    it('one daemon serves two lightweight sets', { timeout: 120_000 }, async () => {
      const opts = nodeOptions({ sets: [{ name: 'conf' }, { name: 'certs', keys: { delay: '300ms' } }] });
      const fed = new Federation(backend);
      const a = await fed.add('a', opts);
      const b = await fed.add('b', opts);
      await withFed(fed, async () => {
        await startAll([a, b]);
        assert.deepEqual(a.logLines().find((l) => l.msg === 'watching')?.sets, ['conf', 'certs']);
        await probe(a, b, 'conf');
        await probe(a, b, 'certs');
        await probe(b, a, 'certs');
        const conf = new Model(a.root('conf'));
        const certs = new Model(a.root('certs'));
        for (let i = 0; i < 10; i++) conf.write(`nginx/site${i}.conf`, `server ${i}\n`);
        for (let i = 0; i < 10; i++) certs.write(`live/site${i}.pem`, `cert ${i}\n`, 0o600);
        // And one the other way, in the second set.
        writeFileSync(join(b.root('certs'), 'from-b.pem'), 'from b\n');
        certs.wrote('from-b.pem', 'from b\n');
        await convergeAB(a, b, 20_000, 'set conf', 'conf');
        await convergeAB(a, b, 20_000, 'set certs', 'certs');
        conf.check(snapshot(b.root('conf')), 'B conf');
        certs.check(snapshot(b.root('certs')), 'B certs');
        certs.check(snapshot(a.root('certs')), 'A certs');
        assert.equal(snapshot(b.root('certs')).get('live/site0.pem')?.mode, 0o600);

        // A deletion in one set leaves the other alone.
        conf.remove('nginx/site0.conf');
        await convergeAB(a, b, 20_000, 'deletion in conf', 'conf');
        certs.check(snapshot(b.root('certs')), 'B certs after a deletion in conf');
        const stopped = await a.daemon!.stop('SIGTERM', 5000);
        assert.equal(stopped.code, 0);
      });
    });

    // The kernel's limit is lowered for the moment A starts (root only; the test files run one
    // at a time, and the limit is put back at once): A must say how to raise it, and keep the
    // set in sync by full scans every `poll` instead of watching.
    const LIMIT_FILE = '/proc/sys/fs/inotify/max_user_watches';
    const canLower = process.getuid?.() === 0 && (() => {
      try {
        writeFileSync(LIMIT_FILE, readFileSync(LIMIT_FILE, 'utf8'));
        return true;
      } catch {
        return false;
      }
    })();
    it('short of inotify watches: one warning with the sysctl, and the set kept in sync by polling scans', { timeout: 120_000, skip: canLower ? false : `needs root and a writable ${LIMIT_FILE}` }, async () => {
      const fed = new Federation(backend);
      const a = await fed.add('a', nodeOptions());
      const b = await fed.add('b', nodeOptions());
      await withFed(fed, async () => {
        const model = new Model(a.root());
        for (let i = 0; i < 300; i++) model.write(`site${i % 30}/f${i}.conf`, `${i}\n`);
        const saved = readFileSync(LIMIT_FILE, 'utf8');
        try {
          writeFileSync(LIMIT_FILE, '100');
          await startAll([a]);
        } finally {
          writeFileSync(LIMIT_FILE, saved);
        }
        const advice = a.logLines().filter((l) => /inotify watches .* but the limit is 100: raise it with `sysctl fs\.inotify\.max_user_watches=\d+`/.test(String(l.msg)));
        assert.equal(advice.length, 1, `one warning with the sysctl; A logged: ${a.logLines().map((l) => l.msg).join(' | ')}`);
        await startAll([b]);
        await convergeAB(a, b, 30_000, 'the files A had at start');
        // Changes after the start reach B too: A finds them by scanning every `poll`.
        model.write('site1/new.conf', 'new\n');
        model.remove('site2/f2.conf');
        model.write('site3/f3.conf', 'changed\n');
        await convergeAB(a, b, 30_000, 'changes made while polling');
        model.check(snapshot(b.root()), 'B');
      });
    });

    it('changes made while the daemon starts up are published without waiting for the next rescan', { timeout: 120_000 }, async (t) => {
      // The window between the start-up full scan and a watcher that is set up on every
      // directory: a change there must not wait for `rescan` (10 minutes by default).
      const fed = new Federation(backend);
      const a = await fed.add('a', nodeOptions());
      const b = await fed.add('b', nodeOptions());
      await withFed(fed, async () => {
        const model = new Model(a.root());
        for (let i = 0; i < 1000; i++) model.write(`d${i}/f.conf`, `${i}\n`);
        await startAll([b]);
        a.start();
        // Writes at several moments of the start-up: as soon as the first full cycle is done
        // (the watcher is being set up), and then every 100 ms for two seconds.
        await waitFor(() => a.logLines().some((l) => l.msg === 'cycle done'), 60_000, "A's first cycle", 5);
        for (let n = 0; n < 20; n++) {
          model.write(`d${(n * 71) % 1000}/late${n}.conf`, `late ${n}\n`);
          await sleep(100);
        }
        // Far below `rescan` (10 minutes), and room for B applying 1,000 files on a busy machine.
        const ms = await convergeAB(a, b, 60_000, 'changes made during start-up');
        t.diagnostic(`B equal to A after ${ms} ms`);
        model.check(snapshot(b.root()), 'B');
      });
    });
  });
}

function countBlobs(fed: Federation): number {
  // file:// store: <dir>/<set>/blobs/<2 hex>/<digest>
  const url = readFileSync(fed.nodes[0]!.config, 'utf8').match(/^url = "file:\/\/(.*)"$/m)?.[1];
  if (!url) return 0;
  const blobs = join(url, 'conf', 'blobs');
  if (!existsSync(blobs)) return 0;
  let n = 0;
  for (const d of readdirSync(blobs)) n += readdirSync(join(blobs, d)).length;
  return n;
}

for (const b of backendsFromEnv()) {
  if (ONLY && !ONLY.includes(b.name)) continue;
  if (b.start) suite(b.name, b.start);
  else if (b.name === 'rgw' && process.env.FEDSYNC_REQUIRE_RGW === '1') {
    it('RGW is available', () => assert.fail('FEDSYNC_REQUIRE_RGW=1 but FEDSYNC_TEST_RGW_* are not set (see test/support/rgw.sh)'));
  } else it(`fedsync watch, ${b.name} store`, { skip: b.skip }, () => {});
}
