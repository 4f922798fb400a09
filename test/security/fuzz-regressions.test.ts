// The bugs the fuzz suite found in a node (fuzz-nodes.test.ts), each as one deterministic case
// that asserts the right behaviour, through the same checks as the random cases (fuzz-case.ts,
// runNodeCase) or its own (docs/security.md, "Issues found and fixed", B1–B8). These cases are
// fixed: FEDSYNC_FUZZ_SEED and FEDSYNC_FUZZ_RUNS do not change them. FEDSYNC_FUZZ_AVOID_KNOWN=1
// keeps the random cases away from them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { headKey, segmentKey } from '../../src/sync/layout.js';
import { LONG_PATH, LOOP_PATH, runNodeCase, useTemplates, type NodeCase, type NodeRec } from './fuzz-case.js';
import { checkNothingEscaped, sha } from './fuzz-gen.js';
import {
  copyTemplate, cycles, EVIL, fileRecord, gz, headBody, HONEST_FILES, invariantProblems, isRecordRejection, isStreamRejection,
  observeBefore, peerRow, putRaw, rm, SET, sha256File, type CaseDir, type Template,
} from './fuzz-node.js';

describe('fuzz regressions (hostile input found to break a node)', () => {
  const templates = useTemplates();

  const rec = (path: string, over: Record<string, unknown>, n: number) => ({ ...fileRecord(path, 'evil content 1', EVIL, n), digest: undefined, size: 0, ...over });
  /** A case in which E publishes one segment of these generated records, nothing else hostile. */
  const oneSegment = (records: object[]): NodeCase => ({ segments: [{ kind: 'records', records: records as unknown as NodeRec[] }], head: 'ok', headAfter: 'same', writer: 'peer', tamperHonest: 'none', snapshot: 'none' });
  /** Runs `fn` on a copy of the template, removed afterwards. */
  async function inCopy(t: Template, fn: (cd: CaseDir) => unknown): Promise<void> {
    const cd = copyTemplate(t);
    try {
      await fn(cd);
    } finally {
      rm(cd.dir);
    }
  }
  /** E publishes `recs` as its first segment, the main node cycles once: what the checks find. */
  async function evilSegmentProblems(cd: CaseDir, recs: object[], allowed: Set<string>): Promise<string[]> {
    putRaw(cd.storeDir, segmentKey(EVIL, 1), gz([JSON.stringify({ fedsync: 'segment', v: 1, node: EVIL, seq: 1, count: recs.length }), ...recs.map((r) => JSON.stringify(r))].join('\n') + '\n'));
    putRaw(cd.storeDir, headKey(EVIL), headBody(EVIL, 1));
    const before = observeBefore(cd.dir, cd.main);
    const out = await cycles(cd.main, 1);
    return invariantProblems({ node: cd.main, before, caseDir: cd.dir, allowed, outcomes: out });
  }

  it('B1: with encryption, a head or segment that fails authentication pauses that peer only (src/sync/pull.ts)', async () => {
    for (const what of ['head', 'segment'] as const) {
      await runNodeCase(templates.encrypted!, { segments: [{ kind: 'raw', variant: 'garbage' }], head: what === 'head' ? 'garbage' : 'ok', headAfter: 'same', writer: 'bucket', tamperHonest: 'none', snapshot: 'none' });
    }
  });

  it('B2: a head announcing an absurd seq neither hangs nor exhausts memory (src/sync/pull.ts)', async () => {
    const t = templates.plain!;
    await inCopy(t, async (cd) => {
    putRaw(cd.storeDir, headKey(EVIL), headBody(EVIL, Number.MAX_SAFE_INTEGER));
    // In a child with a small heap and a deadline: the bug takes the process down or hangs it.
    const script = `import { runCycle } from ${JSON.stringify(new URL('../../src/sync/cycle.ts', import.meta.url).href)};
import { parseConfig } from ${JSON.stringify(new URL('../../src/config/load.ts', import.meta.url).href)};
import { createLogger } from ${JSON.stringify(new URL('../../src/log/logger.ts', import.meta.url).href)};
const config = parseConfig(process.env.CONFIG_TEXT, 'fuzz.toml');
const r = await runCycle(config, config.sets[0], createLogger({ level: 'silent' }));
console.log(JSON.stringify({ ok: r.ok, error: r.error?.message ?? null }));`;
    const file = join(cd.dir, 'child.mts');
    writeFileSync(file, script);
    const configText = [`node = "main"`, `state_dir = "${join(cd.dir, 'main-state')}"`, '[store]', `url = "file://${join(cd.dir, 'store')}"`, '[[sync]]', `name = "${SET}"`, `path = "${cd.main.root}"`, 'settle = "0s"', ''].join('\n');
    const started = Date.now();
    const r = spawnSync(process.execPath, ['--max-old-space-size=256', '--import', 'tsx', file], { cwd: process.cwd(), env: { ...process.env, CONFIG_TEXT: configText }, timeout: 30_000, encoding: 'utf8' });
    const ms = Date.now() - started;
    assert.ok(r.status === 0 && !r.signal, `the cycle did not complete within 30 s on a 256 MB heap (exit ${r.status}, signal ${r.signal}, ${ms} ms): ${r.stderr.slice(-600)}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; error: string | null };
    assert.ok(res.ok, `cycle failed: ${res.error}`);
    for (const [p, body] of Object.entries(HONEST_FILES)) assert.equal(sha256File(join(cd.main.root, p)), sha(body), `the honest peer's ${p} must still arrive`);
    assert.ok((peerRow(cd.main, EVIL)?.cursor ?? 0) < 1000, 'the hostile peer\'s cursor jumped');
    });
  });

  it('B3: a symlink target that is lexically inside but leads out through another symlink is not written (src/sync/record.ts targetProblem)', async () => {
    const t = templates.plain!;
    await inCopy(t, async (cd) => {
    const recs = [
      rec('d', { kind: 'dir', mode: 0o755, mtime: 0 }, 1),
      rec('d/up', { kind: 'symlink', target: '..', mode: 0o777 }, 2),
      rec('esc', { kind: 'symlink', target: 'd/up/../outside', mode: 0o777 }, 3),
      rec('passwd', { kind: 'symlink', target: 'd/up/d/up/d/up/d/up/d/up/d/up/d/up/d/up/../../../../../../../../etc/passwd', mode: 0o777 }, 4),
    ];
    assert.deepEqual(await evilSegmentProblems(cd, recs, t.honestDigests), []);
    });
  });

  it('B4: a malformed or unauthentic newest snapshot does not stop a new node from joining (src/sync/bootstrap.ts, housekeep/snapshot.ts)', async () => {
    for (const [t, snapshot, writer] of [
      [templates.plain!, 'garbage', 'peer'],
      [templates.plain!, 'bad-entry', 'peer'],
      [templates.encrypted!, 'tampered', 'peer'],
      [templates.encrypted!, 'garbage', 'bucket'],
    ] as const) {
      await runNodeCase(t, { segments: [], head: 'none', headAfter: 'same', writer, tamperHonest: 'none', snapshot });
    }
  });

  it('B6: a record cannot write through a parent that another record of the same batch turns into a symlink meanwhile (src/sync/apply.ts)', async () => {
    // `d/sub/evil.txt` passes the parent check (d is created as a directory), then downloads;
    // meanwhile `d` becomes a symlink to the local `link -> ../outside`, and the final rename
    // follows it. Leaves are applied eight at a time, so the check and the rename are far apart.
    const t = templates.plain!;
    for (let attempt = 0; attempt < 3; attempt++) {
      await inCopy(t, async (cd) => {
      const big = 'y'.repeat(2_000_000); // a slower download widens the window
      await cd.w.keyed.put(cd.w.blobKey(sha(big)), Buffer.from(big));
      const recs = [
        { ...fileRecord('d/sub/evil.txt', big, EVIL, 1) },
        rec('d', { kind: 'symlink', target: 'link', mode: 0o777 }, 2),
      ];
      // The link `d -> link` itself is B3's business; here, nothing may be written through it.
      const problems = (await evilSegmentProblems(cd, recs, new Set([...t.honestDigests, sha(big)]))).filter((p) => !p.startsWith('symlink "d" -> "link" resolves outside'));
      assert.deepEqual(problems, [], `attempt ${attempt + 1}`);
      assert.ok(!existsSync(join(cd.main.outside, 'sub', 'evil.txt')), 'written outside the root');
      });
    }
  });

  it('B7: a bad peer is reported once per cycle, also when another peer sends the node to a snapshot (src/sync/receive.ts)', async () => {
    // E's head does not parse; G announces segments it does not have, which reads as pruned
    // history: the node catches up from the snapshot and fetches every peer again.
    const t = templates.plain!;
    await inCopy(t, async (cd) => {
    const G = 'g'.repeat(26);
    putRaw(cd.storeDir, headKey(EVIL), Buffer.from('{"fedsync":"head",'));
    putRaw(cd.storeDir, headKey(G), headBody(G, 2));
    const [o] = await cycles(cd.main, 1);
    const evilLines = o!.logs.filter((l) => isStreamRejection(l) && l.peer === EVIL);
    assert.equal(evilLines.length, 1, `E reported ${evilLines.length} times in one cycle`);
    assert.equal(o!.result?.record?.stats.rejected, o!.logs.filter((l) => isStreamRejection(l) || isRecordRejection(l)).length);
    });
  });

  // As root, permissions do not apply: the case is then run again in a child process as
  // `nobody` (setpriv, util-linux), which is how a web server's fedsync usually runs.
  const nonRoot = process.getuid?.() !== 0;
  const setpriv = spawnSync('/bin/sh', ['-c', 'command -v setpriv']).status === 0;
  it('B8: a read-only directory from a peer does not stop a node that runs as a normal user (src/sync/apply.ts)', { skip: nonRoot || setpriv ? false : 'as root without setpriv: cannot run as a normal user' }, async (t) => {
    if (!nonRoot) {
      const file = new URL(import.meta.url).pathname;
      const asNobody = ['--reuid=nobody', '--regid=nogroup', '--clear-groups'];
      if (spawnSync('setpriv', [...asNobody, '/bin/sh', '-c', 'test -r "$1"', 'sh', file]).status !== 0) {
        t.skip('the checkout is not readable by nobody, so the case cannot run as a normal user here');
        return;
      }
      // Without the parent runner's context, the child reports in plain TAP on its stdout.
      const { NODE_TEST_CONTEXT: _, ...env } = process.env;
      const r = spawnSync(
        'setpriv',
        [...asNobody, process.execPath, '--import', 'tsx', '--test', '--test-name-pattern=^B8', file],
        { encoding: 'utf8', env: { ...env, HOME: '/tmp', TMPDIR: '/tmp', FEDSYNC_FUZZ_RUNS: '1' }, cwd: join(new URL('../..', import.meta.url).pathname), timeout: 240_000 },
      );
      assert.equal(r.status, 0, `B8 as nobody:\n${r.stdout.slice(-3000)}${r.stderr.slice(-1000)}`);
      assert.match(r.stdout, /^# pass 1$/m, 'the case ran as nobody');
      return;
    }
    // A directory published with mode 0o555, then a file inside it: without root, the write
    // failed with EACCES, which was retried forever and held every peer's cursor back.
    await runNodeCase(
      templates.plain!,
      oneSegment([
        { path: 'locked', kind: 'dir', target: '', content: '', blob: 'good', mode: 0o555, hlcKind: 'now', vvKind: 'own', valid: true },
        { path: 'locked/inside.txt', kind: 'file', target: '', content: 'evil1', blob: 'good', mode: 0o644, hlcKind: 'now', vvKind: 'own', valid: true },
      ]),
    );
  });

  it('B5: a record whose path is valid text but unusable on this disk (too long under the root, a symlink loop) is rejected, not retried forever (src/sync/disk.ts)', async () => {
    const failures: string[] = [];
    for (const [what, path] of [
      ['too long under the root', LONG_PATH],
      ['through a symlink loop', LOOP_PATH],
    ] as const) {
      const t = templates.plain!;
      await runNodeCase(
        t,
        oneSegment([
          { path: 'd', kind: 'dir', target: '', content: '', blob: 'good', mode: 0o755, hlcKind: 'now', vvKind: 'own', valid: true },
          { path: 'd/up', kind: 'symlink', target: '..', content: '', blob: 'good', mode: 0o777, hlcKind: 'now', vvKind: 'own', valid: true },
          { path, kind: 'file', target: '', content: 'evil1', blob: 'good', mode: 0o644, hlcKind: 'now', vvKind: 'own', valid: true },
        ]),
      ).catch((err: Error) => failures.push(`${what}: ${err.message.split('\ncase:')[0]}`));
    }
    assert.deepEqual(failures, []);
  });
});

checkNothingEscaped();
