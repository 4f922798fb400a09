import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { FileStore } from '../../store/index.js';
import { newCycleStats, type SetContext } from '../context.js';
import { bundleKey, stageFromBundles } from './bundles.js';
import type { BundleItem } from './snapshot.js';

const dir = mkdtempSync(join(tmpdir(), 'fedsync-bundles-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A bundle of `contents` in a file store, and its listing. */
async function bundleOf(store: FileStore, name: string, contents: Buffer[]): Promise<BundleItem[]> {
  let offset = 0;
  const items = contents.map((c) => {
    const item = { bundle: name, digest: sha(c), offset, length: c.length };
    offset += c.length;
    return item;
  });
  await store.put(bundleKey(name), Buffer.concat(contents));
  return items;
}

function context(store: FileStore): SetContext {
  // Staging uses only the store, the log and the stats.
  return { store, log: pino({ level: 'silent' }), stats: newCycleStats() } as unknown as SetContext;
}

describe('stageFromBundles', () => {
  it('cuts the needed items out of a streamed bundle into verified temp files', async () => {
    const store = new FileStore(join(dir, 'store1'));
    const tmp = join(dir, 'tmp1');
    mkdirSync(tmp);
    // Sizes around a stream chunk (64 KiB) so items straddle chunk boundaries.
    const contents = Array.from({ length: 40 }, (_, i) => Buffer.alloc(1000 + i * 7919, i + 1));
    const items = await bundleOf(store, 's/0', contents);
    const needed = new Set(items.filter((_, i) => i % 3 !== 0).map((i) => i.digest));
    const ctx = context(store);
    const staged = await stageFromBundles(ctx, items, needed, tmp);
    assert.equal(staged.size, needed.size);
    for (const [digest, file] of staged) {
      assert.ok(needed.has(digest));
      assert.equal(sha(readFileSync(file)), digest);
    }
    assert.equal(readdirSync(tmp).length, needed.size, 'nothing staged beyond what is needed');
    assert.equal(ctx.stats.bytesDown, contents.reduce((n, c) => n + c.length, 0));
  });

  it('leaves out items that do not verify, overlap, lie past the end, or sit in a missing bundle', async () => {
    const store = new FileStore(join(dir, 'store2'));
    const tmp = join(dir, 'tmp2');
    mkdirSync(tmp);
    const contents = Array.from({ length: 12 }, (_, i) => Buffer.alloc(5000, i + 1));
    const items = await bundleOf(store, 's/0', contents);
    const size = 12 * 5000;
    const liar = { ...items[2]!, digest: sha(Buffer.from('something else')) };
    const overlapping = { ...items[4]!, digest: sha(Buffer.from('overlap')), offset: items[4]!.offset - 10 };
    const pastEnd = { bundle: 's/0', digest: sha(Buffer.from('beyond')), offset: size - 100, length: 5000 };
    const missing = Array.from({ length: 10 }, (_, i) => ({ bundle: 's/gone', digest: sha(Buffer.from(`gone ${i}`)), offset: i * 10, length: 10 }));
    const listing = [...items.filter((_, i) => i !== 2), liar, overlapping, pastEnd, ...missing];
    const needed = new Set(listing.map((i) => i.digest));
    const staged = await stageFromBundles(context(store), listing, needed, tmp);
    const expected = items.filter((_, i) => i !== 2).map((i) => i.digest);
    assert.deepEqual([...staged.keys()].sort(), [...expected].sort());
    for (const [digest, file] of staged) assert.equal(sha(readFileSync(file)), digest);
  });
});
