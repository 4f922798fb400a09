import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Adopt } from '../config/types.js';
import { formatHlc } from './hlc.js';
import { planReceive, type Facts } from './receive-plan.js';
import type { Entry } from './record.js';
import type { Change } from './scan.js';
import type { VersionVector } from './vv.js';

const [A, C] = ['a', 'c'].map((c) => c.repeat(26)) as [string, string];
const V1 = '11'.repeat(32);
const V2 = '22'.repeat(32);
const MINE = '33'.repeat(32);

function file(path: string, digest: string, vv: VersionVector, author: string, wall: number): Entry {
  return { path, kind: 'file', digest, size: 1, mode: 0o644, mtime: 1000, target: null, vv, hlc: formatHlc(wall, 0), author };
}

/** What a joining node C found on disk, never recorded: a change with its first vector. */
const found = (path: string, digest: string): Change => ({ entry: file(path, digest, { [C]: 5 }, C, 50), stat: `st-${path}` });

function facts(received: Entry[], changes: Change[], adopt: Adopt = 'keep-both'): Facts {
  const incoming = new Map<string, Entry[]>();
  for (const r of received) incoming.set(r.path, [...(incoming.get(r.path) ?? []), r]);
  const entries = new Map([...incoming.keys(), ...changes.map((c) => c.entry.path)].map((p) => [p, undefined]));
  return { me: C, fresh: true, adopt, incoming, excluded: new Map(), entries, scan: { changes, restat: [], settling: [], applied: [], skipped: [] } };
}

describe('planReceive: joining against the current state (DESIGN rule 9)', () => {
  // The snapshot has version 1; a journal after it has version 2.
  const received = [file('f', V1, { [A]: 1 }, A, 10), file('f', V2, { [A]: 2 }, A, 20)];

  it('a file equal to the current version is adopted: recorded with an empty vector, nothing written', () => {
    const plan = planReceive(facts(received, [found('f', V2)]));
    assert.deepEqual(plan.keepBoth, []);
    assert.deepEqual(plan.local, []);
    assert.equal(plan.adopted.length, 1);
    assert.deepEqual(plan.adopted[0]!.entry.vv, {});
    assert.equal(plan.decisions.length, 1);
    assert.equal(plan.decisions[0]!.op, 'record');
    assert.equal(plan.decisions[0]!.final.digest, V2);
  });

  it('a file equal to an older version (the snapshot\'s) is kept both ways, and the current one written', () => {
    const plan = planReceive(facts(received, [found('f', V1)]));
    assert.deepEqual(plan.keepBoth, ['f']);
    assert.deepEqual(plan.adopted, []);
    assert.equal(plan.decisions[0]!.op, 'write');
    assert.equal(plan.decisions[0]!.final.digest, V2);
  });

  it('adopt = "remote" replaces it, adopt = "local" publishes it over every received version', () => {
    const remote = planReceive(facts(received, [found('f', MINE)], 'remote'));
    assert.equal(remote.adopted.length, 1);
    assert.equal(remote.decisions[0]!.op, 'write');
    const local = planReceive(facts(received, [found('f', MINE)], 'local'));
    assert.equal(local.local.length, 1);
    assert.deepEqual(local.local[0]!.entry.vv, { [A]: 2, [C]: 6 });
    assert.equal(local.decisions.length, 0, 'its own version stands');
  });

  it('is pure: the facts are left as they were, and the same facts give the same plan', () => {
    const f = facts(received, [found('f', MINE), found('g', V1)], 'local');
    const before = JSON.stringify([...f.incoming, ...f.entries, f.scan]);
    const one = planReceive(f);
    assert.equal(JSON.stringify([...f.incoming, ...f.entries, f.scan]), before);
    assert.deepEqual(planReceive(f), one);
  });
});
