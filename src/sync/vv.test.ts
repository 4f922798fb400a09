import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bumpVV, compareVV, mergeVV, sortVV, type VersionVector } from './vv.js';

const A = 'a'.repeat(26);
const B = 'b'.repeat(26);
const C = 'c'.repeat(26);

describe('compareVV', () => {
  it('equal, before, after, concurrent', () => {
    assert.equal(compareVV({}, {}), 'equal');
    assert.equal(compareVV({ [A]: 1 }, { [A]: 1 }), 'equal');
    assert.equal(compareVV({ [A]: 1 }, { [A]: 2 }), 'before');
    assert.equal(compareVV({ [A]: 2 }, { [A]: 1 }), 'after');
    assert.equal(compareVV({ [A]: 1 }, { [A]: 1, [B]: 1 }), 'before');
    assert.equal(compareVV({}, { [A]: 1 }), 'before');
    assert.equal(compareVV({ [A]: 2, [B]: 1 }, { [A]: 1, [B]: 2 }), 'concurrent');
    assert.equal(compareVV({ [A]: 1 }, { [B]: 1 }), 'concurrent');
  });

  it('a missing key counts as 0, so key order and explicit zeros do not matter', () => {
    assert.equal(compareVV({ [A]: 1, [B]: 0 }, { [A]: 1 }), 'equal');
    assert.equal(compareVV({ [B]: 1, [A]: 2 }, { [A]: 2, [B]: 1 }), 'equal');
  });
});

describe('mergeVV and bumpVV', () => {
  it('merge takes the maximum per node and sorts the keys', () => {
    const m = mergeVV({ [C]: 1, [A]: 3 }, { [A]: 1, [B]: 2 });
    assert.deepEqual(m, { [A]: 3, [B]: 2, [C]: 1 });
    assert.deepEqual(Object.keys(m), [A, B, C]);
  });

  it('bump raises only the node and dominates the base', () => {
    const base = { [B]: 4, [A]: 1 };
    const v = bumpVV(base, A);
    assert.deepEqual(v, { [A]: 2, [B]: 4 });
    assert.deepEqual(Object.keys(v), [A, B]);
    assert.equal(compareVV(v, base), 'after');
    assert.deepEqual(bumpVV({}, C), { [C]: 1 });
    assert.deepEqual(base, { [B]: 4, [A]: 1 }, 'the base is not modified');
  });

  it('sortVV gives equal vectors equal JSON', () => {
    assert.equal(JSON.stringify(sortVV({ [B]: 1, [A]: 2 })), JSON.stringify(sortVV({ [A]: 2, [B]: 1 })));
  });
});

describe('version vector properties', () => {
  const node = fc.constantFrom(A, B, C, 'd'.repeat(26));
  const vv: fc.Arbitrary<VersionVector> = fc.dictionary(node, fc.integer({ min: 1, max: 5 }), { maxKeys: 4 });
  const flip = { equal: 'equal', before: 'after', after: 'before', concurrent: 'concurrent' } as const;

  it('compareVV is antisymmetric (and reflexive)', () => {
    fc.assert(
      fc.property(vv, vv, (a, b) => {
        assert.equal(compareVV(b, a), flip[compareVV(a, b)]);
        assert.equal(compareVV(a, a), 'equal');
      }),
    );
  });

  it('merge is commutative, associative and idempotent, and bounds both inputs', () => {
    fc.assert(
      fc.property(vv, vv, vv, (a, b, c) => {
        assert.deepEqual(mergeVV(a, b), mergeVV(b, a));
        assert.deepEqual(mergeVV(mergeVV(a, b), c), mergeVV(a, mergeVV(b, c)));
        assert.deepEqual(mergeVV(a, a), sortVV(a));
        const m = mergeVV(a, b);
        assert.ok(['after', 'equal'].includes(compareVV(m, a)));
        assert.ok(['after', 'equal'].includes(compareVV(m, b)));
      }),
    );
  });

  it('a bump is strictly after its base and concurrent with a sibling bump', () => {
    fc.assert(
      fc.property(vv, node, node, (base, x, y) => {
        assert.equal(compareVV(bumpVV(base, x), base), 'after');
        if (x !== y) assert.equal(compareVV(bumpVV(base, x), bumpVV(base, y)), 'concurrent');
      }),
    );
  });
});
