import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { conflictPath } from './conflict.js';

const AT = new Date('2026-03-04T05:06:07.890Z');
const free = () => false;

describe('conflictPath', () => {
  it('puts the marker before the extension', () => {
    assert.equal(conflictPath('index.html', 'web1', AT, free), 'index.sync-conflict-20260304-050607-web1.html');
    assert.equal(conflictPath('a/b/photo.JPG', 'web1', AT, free), 'a/b/photo.sync-conflict-20260304-050607-web1.JPG');
  });

  it('takes only the last extension', () => {
    assert.equal(conflictPath('backup.tar.gz', 'n', AT, free), 'backup.tar.sync-conflict-20260304-050607-n.gz');
  });

  it('appends to names without an extension, and to dotfiles', () => {
    assert.equal(conflictPath('README', 'n', AT, free), 'README.sync-conflict-20260304-050607-n');
    assert.equal(conflictPath('dir.d/Makefile', 'n', AT, free), 'dir.d/Makefile.sync-conflict-20260304-050607-n');
    assert.equal(conflictPath('.htaccess', 'n', AT, free), '.htaccess.sync-conflict-20260304-050607-n');
    assert.equal(conflictPath('x/.env.local', 'n', AT, free), 'x/.env.sync-conflict-20260304-050607-n.local');
  });

  it('uses UTC and zero-pads every field', () => {
    assert.equal(conflictPath('f', 'n', new Date('2027-01-09T00:00:09Z'), free), 'f.sync-conflict-20270109-000009-n');
  });

  it('makes the node name safe for a file name', () => {
    assert.equal(conflictPath('f.txt', 'web 1/ü', AT, free), 'f.sync-conflict-20260304-050607-web_1__.txt');
    assert.equal(conflictPath('f.txt', '', AT, free), 'f.sync-conflict-20260304-050607-node.txt');
  });

  it('counts up from -2 while a candidate is taken', () => {
    const taken = new Set(['d/f.sync-conflict-20260304-050607-n.txt', 'd/f.sync-conflict-20260304-050607-n-2.txt']);
    assert.equal(conflictPath('d/f.txt', 'n', AT, (p) => taken.has(p)), 'd/f.sync-conflict-20260304-050607-n-3.txt');
    assert.equal(conflictPath('d/f.txt', 'n', AT, (p) => p === 'd/f.sync-conflict-20260304-050607-n.txt'), 'd/f.sync-conflict-20260304-050607-n-2.txt');
  });

  it('keeps the name within 255 bytes, however long the original', () => {
    for (const base of ['x'.repeat(255), `${'é'.repeat(120)}.html`, `a.${'e'.repeat(250)}`, `${'y'.repeat(250)}.txt`]) {
      const p = conflictPath(`dir/${base}`, 'n'.repeat(64), AT, (c) => !c.endsWith('-3') && !/-3\./.test(c));
      const name = p.slice(4);
      assert.ok(p.startsWith('dir/'));
      assert.ok(Buffer.byteLength(name) <= 255, `${Buffer.byteLength(name)} bytes: ${name}`);
      assert.ok(name.includes('.sync-conflict-20260304-050607-'), name);
      assert.ok(Buffer.from(name).toString() === name, 'no split UTF-8 sequence');
    }
  });
});
