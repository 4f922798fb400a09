import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countDeletions } from './rail.js';

const file = (digest: string) => ({ kind: 'file' as const, digest, target: null });
const link = (target: string) => ({ kind: 'symlink' as const, digest: null, target });
const dir = { kind: 'dir' as const, digest: null, target: null };

describe('countDeletions (the max-delete rail)', () => {
  it('counts files and symlinks, not directories', () => {
    assert.equal(countDeletions([file('a'), file('b'), link('x'), dir, dir, undefined], []), 3);
  });

  it('a deleted file or symlink whose content is written at another path is a move', () => {
    assert.equal(countDeletions([file('a'), file('b'), link('x')], [file('a'), link('x'), file('c'), dir]), 1);
  });

  it('matches moves one to one', () => {
    assert.equal(countDeletions([file('a'), file('a'), file('a')], [file('a')]), 2);
    assert.equal(countDeletions([file('a')], [file('a'), file('a')]), 0);
  });

  it('a symlink target is not a file digest', () => {
    assert.equal(countDeletions([file('x')], [link('x')]), 1);
  });
});
