import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collapse } from './scan.js';

describe('collapse', () => {
  it('drops paths below another dirty path, not siblings that share a prefix', () => {
    assert.deepEqual(collapse(['a/c', 'a b', 'a', 'b/d', 'b/d/e', 'a-x/y', 'a']), ['a', 'a b', 'a-x/y', 'b/d']);
    assert.deepEqual(collapse(['x', '', 'y/z']), ['']);
    assert.deepEqual(collapse([]), []);
  });
});
