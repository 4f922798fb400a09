import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { LocalEntry } from '../manifest/manifest.js';
import { Clock, formatHlc, ZERO_HLC } from './hlc.js';
import { beatenBy, byPath, decide, wins, withoutBeaten, type Decision } from './plan.js';
import { sameContent, type Entry } from './record.js';
import { bumpVV, compareVV, mergeVV, type VersionVector } from './vv.js';

const [A, B, C, D] = ['a', 'b', 'c', 'd'].map((c) => c.repeat(26)) as [string, string, string, string];
const D1 = '11'.repeat(32);
const D2 = '22'.repeat(32);

function file(vv: VersionVector, author: string, wall: number, over: Partial<Entry> = {}): Entry {
  return { path: 'p', kind: 'file', digest: D1, size: 1, mode: 0o644, mtime: 1000, target: null, vv, hlc: formatHlc(wall, 0), author, ...over };
}
const gone = (vv: VersionVector, author: string, wall: number): Entry => file(vv, author, wall, { kind: 'deleted', digest: null, size: 0, mode: 0, mtime: 0 });
const local = (e: Entry, stat: string | null = 'st'): LocalEntry => ({ ...e, stat });
/** Feeds a decision back as the new local state, as apply does. */
const after = (d: Decision | null, before: LocalEntry | undefined): LocalEntry | undefined => (d ? { ...d.final, stat: null } : before);

describe('wins', () => {
  it('a modification beats a deletion, then the higher HLC, then the higher node id', () => {
    assert.ok(wins(file({ [A]: 1 }, A, 1), gone({ [B]: 1 }, B, 9)));
    assert.ok(!wins(gone({ [B]: 1 }, B, 9), file({ [A]: 1 }, A, 1)));
    assert.ok(wins(file({ [A]: 1 }, A, 2), file({ [B]: 1 }, B, 1)));
    assert.ok(wins(file({ [B]: 1 }, B, 1), file({ [A]: 1 }, A, 1)));
    assert.ok(!wins(file({ [A]: 1 }, A, 1), file({ [B]: 1 }, B, 1)));
    assert.ok(wins(gone({ [A]: 1 }, A, 2), gone({ [B]: 1 }, B, 1)));
  });
});

describe('decide: DESIGN rule 3', () => {
  it('a new path takes the record', () => {
    const r = file({ [A]: 1 }, A, 1);
    const d = decide('p', undefined, [r], C)!;
    assert.equal(d.op, 'write');
    assert.deepEqual(d.final, r);
    assert.equal(d.keepLocal, false);
    assert.equal(decide('p', undefined, [gone({ [A]: 1 }, A, 1)], C)!.op, 'record', 'a tombstone for an unknown path is only recorded');
  });

  it('an older or equal record changes nothing', () => {
    const l = local(file({ [A]: 2, [B]: 1 }, A, 5));
    assert.equal(decide('p', l, [file({ [A]: 1 }, A, 1)], C), null);
    assert.equal(decide('p', l, [file({ [A]: 2, [B]: 1 }, A, 5)], C), null);
    assert.equal(decide('p', l, [gone({ [A]: 1, [B]: 1 }, B, 3)], C), null);
    assert.equal(decide('p', l, [], C), null);
  });

  it('a newer record is applied: new content is written', () => {
    const l = local(file({ [A]: 1 }, A, 1));
    const r = file({ [A]: 1, [B]: 1 }, B, 2, { digest: D2 });
    const d = decide('p', l, [r], A)!;
    assert.equal(d.op, 'write');
    assert.deepEqual({ ...d.final }, r);
    assert.equal(d.keepLocal, false, 'a newer version made after seeing ours is no conflict');
  });

  it('a newer record with the same content only sets metadata, or only records', () => {
    const l = local(file({ [A]: 1 }, A, 1));
    assert.equal(decide('p', l, [file({ [A]: 1, [B]: 1 }, B, 2, { mode: 0o600 })], A)!.op, 'meta');
    assert.equal(decide('p', l, [file({ [A]: 1, [B]: 1 }, B, 2, { mtime: 5 })], A)!.op, 'meta');
    assert.equal(decide('p', l, [file({ [A]: 1, [B]: 1 }, B, 2)], A)!.op, 'record');
  });

  it('a newer deletion deletes; on a deleted path it is only recorded', () => {
    assert.equal(decide('p', local(file({ [A]: 1 }, A, 1)), [gone({ [A]: 1, [B]: 1 }, B, 2)], A)!.op, 'delete');
    assert.equal(decide('p', local(gone({ [A]: 2 }, A, 1), null), [gone({ [A]: 2, [B]: 1 }, B, 2)], A)!.op, 'record');
  });

  it('a newer record of another kind replaces (file -> directory, directory -> symlink)', () => {
    const dir = decide('p', local(file({ [A]: 1 }, A, 1)), [file({ [A]: 2 }, A, 2, { kind: 'dir', digest: null, mode: 0o755, mtime: 0 })], B)!;
    assert.equal(dir.op, 'write');
    assert.equal(dir.final.kind, 'dir');
    const link = decide('p', local(dir.final, 'dir'), [file({ [A]: 3 }, A, 3, { kind: 'symlink', digest: null, target: 'x', mode: 0o777 })], B)!;
    assert.equal(link.op, 'write');
    assert.equal(link.final.target, 'x');
  });

  it('concurrent: a remote modification beats a local deletion', () => {
    const d = decide('p', local(gone({ [A]: 2 }, A, 9), null), [file({ [A]: 1, [B]: 1 }, B, 2, { digest: D2 })], A)!;
    assert.equal(d.op, 'write');
    assert.equal(d.final.digest, D2);
    assert.deepEqual(d.final.vv, { [A]: 2, [B]: 1 });
  });

  it('concurrent: a local modification beats a remote deletion; only the vectors merge', () => {
    const l = local(file({ [A]: 2 }, A, 1));
    const d = decide('p', l, [gone({ [A]: 1, [B]: 1 }, B, 9)], A)!;
    assert.equal(d.op, 'record');
    assert.equal(d.keepLocal, false);
    assert.equal(d.final.digest, D1);
    assert.equal(d.final.author, A);
    assert.deepEqual(d.final.vv, { [A]: 2, [B]: 1 });
  });

  it('concurrent modifications: the higher HLC wins, and our losing version is kept aside', () => {
    const l = local(file({ [A]: 1 }, A, 1));
    const r = file({ [B]: 1 }, B, 2, { digest: D2 });
    const d = decide('p', l, [r], A)!;
    assert.equal(d.op, 'write');
    assert.equal(d.keepLocal, true);
    assert.equal(d.final.digest, D2);
    assert.deepEqual(d.final.vv, { [A]: 1, [B]: 1 });
    assert.equal(d.final.hlc, r.hlc);
  });

  it('concurrent modifications with equal HLCs: the higher node id wins', () => {
    const d = decide('p', local(file({ [B]: 1 }, B, 5)), [file({ [A]: 1 }, A, 5, { digest: D2 })], B)!;
    assert.equal(d.op, 'record', 'b > a: the local version stays');
    assert.equal(d.keepLocal, false);
    const e = decide('p', local(file({ [A]: 1 }, A, 5)), [file({ [B]: 1 }, B, 5, { digest: D2 })], A)!;
    assert.equal(e.final.author, B);
    assert.equal(e.keepLocal, true);
  });

  it('a losing version that is not ours is replaced without a copy (its author keeps it)', () => {
    const d = decide('p', local(file({ [A]: 1 }, A, 1)), [file({ [B]: 1 }, B, 2, { digest: D2 })], C)!;
    assert.equal(d.op, 'write');
    assert.equal(d.keepLocal, false);
  });

  it('a losing version with the same content needs no conflict copy', () => {
    const l = local(file({ [A]: 1 }, A, 1));
    const same = decide('p', l, [file({ [B]: 1 }, B, 2)], A)!;
    assert.equal(same.keepLocal, false);
    assert.equal(same.op, 'record');
    const chmod = decide('p', l, [file({ [B]: 1 }, B, 2, { mode: 0o600 })], A)!;
    assert.equal(chmod.op, 'meta');
    assert.equal(chmod.keepLocal, false);
  });

  it('our version is kept aside even when a descendant of the winner arrives first', () => {
    const mine = local(file({ [A]: 1 }, A, 1));
    const r1 = file({ [B]: 1 }, B, 2, { digest: D2 });
    // c saw both, kept r1 (the winner) and edited it: its vector dominates ours too.
    const r2 = file({ [A]: 1, [B]: 1, [C]: 1 }, C, 3, { digest: '33'.repeat(32) });
    for (const order of [[r1, r2], [r2, r1]]) {
      const d = decide('p', mine, order, A)!;
      assert.equal(d.final.author, C);
      assert.equal(d.keepLocal, true, `order ${order.map((r) => r.author[0]).join('')}`);
    }
  });

  it('a deletion that superseded the winner meets the losing modification it never saw', () => {
    // a writes X; b writes Y (later HLC, wins) and then deletes it without having seen X.
    const x = file({ [A]: 1 }, A, 1);
    const y = file({ [B]: 1 }, B, 2, { digest: D2 });
    const z = gone({ [B]: 2 }, B, 3);
    const results = new Set<string>();
    for (const order of [[x, y, z], [x, z, y], [y, x, z], [y, z, x], [z, x, y], [z, y, x]]) {
      let s: LocalEntry | undefined;
      for (const r of order) s = after(decide('p', s, [r], C), s);
      results.add(JSON.stringify([s!.kind, s!.digest, s!.vv]));
      const once = decide('p', undefined, order, C)!;
      assert.equal(once.final.digest, D1);
    }
    assert.deepEqual([...results], [JSON.stringify(['file', D1, { [A]: 1, [B]: 2 }])]);
  });

  it('keeps the concurrent versions while they matter, and drops them once superseded', () => {
    const d = decide('p', local(file({ [A]: 1 }, A, 1)), [file({ [B]: 1 }, B, 2, { digest: D2 })], C)!;
    assert.deepEqual(d.final.versions?.map((v) => v.author).sort(), [A, B]);
    const next = decide('p', after(d, undefined), [file({ [A]: 1, [B]: 1, [C]: 1 }, C, 3)], D)!;
    assert.equal(next.final.versions, undefined);
    const plain = decide('p', undefined, [file({ [A]: 1 }, A, 1)], C)!;
    assert.equal(plain.final.versions, undefined, 'a single version with its own vector is the entry itself');
    const lostDeletion = decide('p', local(file({ [A]: 1 }, A, 1)), [gone({ [B]: 1 }, B, 2)], A)!;
    assert.deepEqual(lostDeletion.final.versions?.map((v) => v.vv), [{ [A]: 1 }], 'the winner keeps its own vector');
  });
});

describe('byPath', () => {
  it('groups by path in journal order', () => {
    const rs = [file({ [A]: 1 }, A, 1, { path: 'x' }), file({ [A]: 1 }, A, 2, { path: 'y' }), file({ [A]: 2 }, A, 3, { path: 'x' })];
    const m = byPath(rs);
    assert.deepEqual([...m.keys()], ['x', 'y']);
    assert.deepEqual(m.get('x')!.map((r) => r.hlc), [rs[0]!.hlc, rs[2]!.hlc]);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: histories of one path across 2-4 nodes, made the way nodes make them (local edits
// bump the vector, HLCs tick with skewed clocks, received records go through decide).

type Act = { edit: number; del: boolean; content: number; dt: number } | { recv: number; pick: number };
const act: fc.Arbitrary<Act> = fc.oneof(
  { arbitrary: fc.record({ edit: fc.nat(3), del: fc.boolean(), content: fc.nat(5), dt: fc.nat(3) }), weight: 2 },
  { arbitrary: fc.record({ recv: fc.nat(3), pick: fc.nat(100) }), weight: 3 },
);
const IDS = [A, B, C, D];
/** What an edit leaves at the path: three file contents, a directory, two symlinks. */
const CONTENT: Partial<Entry>[] = [
  ...['11', '22', '33'].map((c) => ({ digest: c.repeat(32) })),
  { kind: 'dir', digest: null, size: 0, mode: 0o755, mtime: 0 },
  ...['t1', 't2'].map((target) => ({ kind: 'symlink' as const, digest: null, size: 0, mode: 0o777, target })),
];

interface World {
  records: Entry[];
  /** Every node's state at the end of the history. */
  states: { id: string; state: LocalEntry | undefined }[];
}

function simulate(n: number, acts: Act[]): World {
  let t = 1_000_000;
  const skew = [0, 7, -5, 2];
  const nodes = IDS.slice(0, n).map((id, i) => ({ id, clock: new Clock(ZERO_HLC, () => t + skew[i]!), state: undefined as LocalEntry | undefined }));
  const records: Entry[] = [];
  for (const a of acts) {
    if ('edit' in a) {
      t += a.dt;
      const node = nodes[a.edit % n]!;
      const del = a.del && node.state !== undefined && node.state.kind !== 'deleted';
      const vv = bumpVV(node.state?.vv ?? {}, node.id);
      const e = del ? gone(vv, node.id, 0) : file(vv, node.id, 0, CONTENT[a.content]!);
      e.hlc = node.clock.tick();
      node.state = local(e, null);
      records.push(e);
    } else if (records.length > 0) {
      const node = nodes[a.recv % n]!;
      const r = records[a.pick % records.length]!;
      node.clock.observe(r.hlc);
      node.state = after(decide('p', node.state, [r], node.id), node.state);
    }
  }
  return { records, states: nodes.map((x) => ({ id: x.id, state: x.state })) };
}

const content = (e: Entry | undefined) => (e ? { kind: e.kind, digest: e.digest, target: e.target, vv: e.vv } : undefined);

/** Feeds `records` in the given batches, each batch one decide call, from `start`. */
function fold(start: LocalEntry | undefined, batches: Entry[][], me: string): LocalEntry | undefined {
  let s = start;
  for (const b of batches) s = after(decide('p', s, b, me), s);
  return s;
}

function shuffle<T>(xs: T[], keys: number[]): T[] {
  return xs.map((x, i) => ({ x, k: keys[i % Math.max(1, keys.length)]! + i / 1e6 })).sort((a, b) => a.k - b.k).map((e) => e.x);
}

function split<T>(xs: T[], cuts: number[]): T[][] {
  const out: T[][] = [];
  let rest = xs;
  for (const c of cuts) {
    if (rest.length === 0) break;
    const k = 1 + (c % rest.length);
    out.push(rest.slice(0, k));
    rest = rest.slice(k);
  }
  if (rest.length) out.push(rest);
  return out;
}

describe('decide: properties', () => {
  const history = fc.tuple(fc.integer({ min: 2, max: 4 }), fc.array(act, { minLength: 1, maxLength: 30 }));
  const order = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 30 });
  const cuts = fc.array(fc.nat(30), { maxLength: 10 });

  it('any order of the same records, in any batches, from the same start: same content and vector', () => {
    fc.assert(
      fc.property(history, order, order, cuts, fc.nat(4), ([n, acts], o1, o2, c, who) => {
        const { records, states } = simulate(n, acts);
        // Start from nothing (a new node) or from one node's own end state.
        const start = who < n ? states[who]! : { id: D, state: undefined };
        const ref = content(fold(start.state, [records], start.id));
        const once = content(fold(start.state, [shuffle(records, o1)], start.id));
        const oneByOne = content(fold(start.state, shuffle(records, o2).map((r) => [r]), start.id));
        const batched = content(fold(start.state, split(shuffle(records, o2), c), start.id));
        assert.deepEqual(once, ref);
        assert.deepEqual(oneByOne, ref);
        assert.deepEqual(batched, ref);
        if (ref) {
          const all = records.reduce<VersionVector>((v, r) => mergeVV(v, r.vv), start.state?.vv ?? {});
          assert.deepEqual(ref.vv, all, 'the vectors of everything seen are merged');
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('every node converges once it has received every record', () => {
    fc.assert(
      fc.property(history, order, ([n, acts], o) => {
        const { records, states } = simulate(n, acts);
        const ends = states.map((s) => content(fold(s.state, [shuffle(records, o)], s.id)));
        for (const e of ends) assert.deepEqual(e, ends[0]);
      }),
      { numRuns: 2000 },
    );
  });

  it('a node keeps its own live version aside when one it never saw beats it, whatever the order', () => {
    fc.assert(
      fc.property(history, order, order, ([n, acts], o1, o2) => {
        const { records, states } = simulate(n, acts);
        for (const { id, state } of states) {
          if (!state || state.author !== id || state.kind === 'deleted') continue;
          const d1 = decide('p', state, shuffle(records, o1), id);
          const d2 = decide('p', state, shuffle(records, o2), id);
          assert.equal(d1?.keepLocal ?? false, d2?.keepLocal ?? false);
          if (!d1 || sameContent(d1.final, state)) continue;
          const mine = (state.versions ?? [state]).find((v) => v.author === id && v.hlc === state.hlc)!;
          const beaten = records.some((r) => compareVV(r.vv, mine.vv) === 'concurrent' && wins(r, mine));
          assert.equal(d1.keepLocal, beaten);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

// DESIGN rule 3 merges the counters of the versions a winner beat, on the promise that the
// winner's record tells their nodes they lost. A winner dropped unpublished takes that merge
// back: what the node records next on the path is made from the winner's own vector, stays
// concurrent with the versions it beat, and every node ranks them again.
describe('a winner dropped unpublished', () => {
  const w = file({ [A]: 1 }, A, 5); // A's winner, dropped
  const c1 = file({ [C]: 1 }, C, 3, { digest: D2 }); // C's version, which it beat
  const merged = mergeVV(w.vv, c1.vv);

  it('beat exactly the concurrent versions ranked below it', () => {
    assert.deepEqual(beatenBy(w, [w, c1]), [c1]);
    assert.deepEqual(beatenBy(w, [file({ [C]: 2 }, C, 9)]), [], 'a later version beat it');
    assert.deepEqual(beatenBy(w, [gone({ [C]: 2 }, C, 9)]), [gone({ [C]: 2 }, C, 9)], 'a modification beats a deletion');
    assert.deepEqual(beatenBy(file({ [A]: 2, [C]: 1 }, A, 6), [c1]), [], 'one it had seen is no conflict');
  });

  it('takes back only the counters the beaten versions brought', () => {
    const seenB = { [A]: 1, [B]: 3 };
    assert.deepEqual(withoutBeaten(bumpVV(merged, A), w.vv, [c1], A), { [A]: 2 });
    assert.deepEqual(withoutBeaten(bumpVV(mergeVV(seenB, c1.vv), A), seenB, [c1], A), { [A]: 2, [B]: 3 }, 'what the winner had seen stays');
    assert.deepEqual(withoutBeaten({ [A]: 3, [C]: 2 }, w.vv, [c1], A), { [A]: 3, [C]: 2 }, "a later version of C's, seen since, stays");
    assert.deepEqual(withoutBeaten({ [A]: 2, [C]: 1 }, { [A]: 1, [C]: 1 }, [c1], A), { [A]: 2, [C]: 1 }, 'a counter it had seen itself stays');
  });

  it("with the merge kept, the next change would overwrite the beaten version with no conflict copy", () => {
    const edit = file(bumpVV(merged, A), A, 7, { digest: '33'.repeat(32) });
    const d = decide('p', local(c1), [edit], C)!;
    assert.equal(d.op, 'write');
    assert.equal(d.keepLocal, false, 'the loss the rule repairs');
    assert.equal(decide('p', local(c1), [gone(bumpVV(merged, A), A, 7)], C)!.op, 'delete');
  });

  it('the next edit, made from the own vector, wins everywhere and the beaten version is kept as a copy', () => {
    const edit = file(bumpVV(withoutBeaten(merged, w.vv, [c1], A), A), A, 7, { digest: '33'.repeat(32) });
    const onC = decide('p', local(c1), [edit], C)!;
    assert.equal(onC.final.digest, edit.digest);
    assert.equal(onC.keepLocal, true);
    // A ranks the version again against its own edit: the edit stays, the vectors merge.
    const onA = decide('p', local(edit), [c1], A)!;
    assert.equal(onA.op, 'record');
    assert.deepEqual(onA.final.vv, mergeVV(edit.vv, c1.vv));
    assert.deepEqual(onC.final.vv, onA.final.vv);
  });

  it("the next deletion, made from the own vector, loses to the beaten modification everywhere", () => {
    const del = gone(bumpVV(withoutBeaten(merged, w.vv, [c1], A), A), A, 7);
    const onC = decide('p', local(c1), [del], C)!;
    assert.equal(onC.op, 'record');
    assert.equal(onC.final.digest, D2);
    // A deleted the file; ranked again, C's version comes back to its disk.
    const onA = decide('p', local(del, null), [c1], A)!;
    assert.equal(onA.op, 'write');
    assert.equal(onA.final.digest, D2);
    assert.deepEqual(onC.final.vv, onA.final.vv);
  });

  it('whatever the clocks and the next change, both nodes end with the same state and keep every version', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 50 }), fc.boolean(), fc.integer({ min: 1, max: 50 }), (cAt, wGap, deletes, nextGap) => {
        const cv = file({ [C]: 1 }, C, cAt, { digest: D2 });
        const wv = file({ [A]: 1 }, A, cAt + wGap); // A's version, scanned before C's arrived
        if (!wins(wv, cv)) return;
        const own = withoutBeaten(mergeVV(wv.vv, cv.vv), wv.vv, beatenBy(wv, [cv]), A);
        // A's clock has seen C's record: its next change is later than both.
        const at = cAt + wGap + nextGap;
        const next = deletes ? gone(bumpVV(own, A), A, at) : file(bumpVV(own, A), A, at, { digest: '33'.repeat(32) });
        const onC = decide('p', local(cv), [next], C);
        const onA = decide('p', local(next, deletes ? null : 'st'), [cv], A)!;
        const endC = onC ? onC.final : cv;
        assert.deepEqual([endC.kind, endC.digest, endC.vv], [onA.final.kind, onA.final.digest, onA.final.vv]);
        // C's version survives: as the file, or as C's conflict copy.
        assert.ok(endC.digest === D2 || onC?.keepLocal === true);
      }),
      { numRuns: 500 },
    );
  });
});
