import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { FileStore } from '../../src/store/file/file.js';
import { TEMP_DIR } from '../../src/store/keys.js';
import { storeConformance } from './conformance.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'fedsync-filestore-'));
  dirs.push(d);
  return d;
}

storeConformance('file', async () => new FileStore(join(await freshDir(), 'store', 'set')));

describe('FileStore specifics', () => {
  test('keys are files under the root; the temp dir is never listed', async () => {
    const root = await freshDir();
    const s = new FileStore(root);
    await s.put('heads/n1.json', Buffer.from('{}'));
    assert.equal((await stat(join(root, 'heads', 'n1.json'))).size, 2);
    assert.deepEqual(await readdir(join(root, TEMP_DIR)), [], 'no temp file left behind');
    assert.deepEqual((await collectKeys(s, '')), ['heads/n1.json']);
    assert.equal(s.location, `file://${root}`);
  });

  test('a failed putStream removes its temp file', async () => {
    const root = await freshDir();
    const s = new FileStore(root);
    const src = () => new Readable({ read() { this.destroy(new Error('boom')); } });
    await assert.rejects(s.putStream('x', src, 10), /boom/);
    assert.deepEqual(await readdir(join(root, TEMP_DIR)), []);
  });

  test('delete prunes directories it emptied, never the root', async () => {
    const root = await freshDir();
    const s = new FileStore(root);
    await s.put('journal/n1/000000000001', Buffer.from('a'));
    await s.put('journal/n2/000000000001', Buffer.from('b'));
    await s.delete(['journal/n1/000000000001']);
    assert.deepEqual(await readdir(join(root, 'journal')), ['n2']);
    await s.delete(['journal/n2/000000000001']);
    assert.deepEqual((await readdir(root)).filter((n) => n !== TEMP_DIR), []);
    await stat(root);
  });

  test('put and delete racing on one directory never lose the put', async () => {
    const s = new FileStore(await freshDir());
    for (let round = 0; round < 20; round++) {
      await s.put('d/a', Buffer.from('a'));
      await Promise.all([s.delete(['d/a']), s.put('d/b', Buffer.from('b'))]);
      assert.equal((await s.get('d/b'))?.toString(), 'b', `round ${round}`);
      await s.delete(['d/b']);
    }
  });

  test('a rewrite within one clock tick still changes the etag (mtime kept rising)', async () => {
    const root = await freshDir();
    const s = new FileStore(root);
    await s.put('h', Buffer.from('aa'));
    // The current version's mtime is ahead of the clock, as a same-tick rewrite would be.
    await utimes(join(root, 'h'), 2_000_000_000, 2_000_000_000);
    const etags = [(await s.stat('h'))!.etag];
    for (const body of ['bb', 'aa', 'bb']) {
      await s.put('h', Buffer.from(body));
      etags.push((await s.stat('h'))!.etag);
    }
    assert.equal(new Set(etags).size, etags.length, etags.join(' '));
  });

  test('a rewrite changes the etag even with the same size', async () => {
    const s = new FileStore(await freshDir());
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      await s.put('h', Buffer.from(i % 2 ? 'aa' : 'bb'));
      const st = await s.stat('h');
      assert.ok(st && !seen.has(st.etag), `etag repeated at rewrite ${i}`);
      seen.add(st.etag);
    }
  });
});

async function collectKeys(s: FileStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of s.list(prefix)) out.push(o.key);
  return out;
}
