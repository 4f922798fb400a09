// The behaviour every Store backend must share, as one suite registered per backend. The sync
// layer is written against src/store/store.ts alone, so anything it may rely on is pinned here.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { PreconditionFailedError } from '../../src/store/errors.js';
import type { ObjectInfo, Store } from '../../src/store/store.js';

export interface StoreFactoryOptions {
  /** putStream bodies above this go multipart (S3 backends; others ignore it). */
  multipartThreshold?: number;
}

/** Makes a fresh, empty store. The suite closes every store it makes. */
export type StoreFactory = (opts?: StoreFactoryOptions) => Promise<Store>;

/**
 * Known defects of a test server (not of our code) that the suite tolerates for it, so the
 * rest of the suite still runs there. Real servers (RGW, AWS) run with none.
 */
export interface ServerQuirks {
  /** Lists by walking directories: "a/x" comes before "a-b" (s3rver). */
  listsDirectoryOrder?: boolean;
  /** An aborted PUT truncates the existing object in place instead of leaving it (s3rver). */
  abortedPutTruncates?: boolean;
  /** Ignores If-None-Match and If-Match on PUT and writes anyway (s3rver). */
  ignoresConditions?: boolean;
}

const MiB = 1024 * 1024;

export function storeConformance(name: string, make: StoreFactory, quirks: ServerQuirks = {}): void {
  describe(`Store conformance: ${name}`, { concurrency: false }, () => {
    const withStore = (opts: StoreFactoryOptions | undefined, fn: (s: Store) => Promise<void>) => async () => {
      const store = await make(opts);
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    };

    test('a missing key reads as null everywhere', withStore(undefined, async (s) => {
      assert.equal(await s.get('nope'), null);
      assert.equal(await s.get('no/such/dir/key'), null);
      assert.equal(await s.getStream('nope'), null);
      assert.equal(await s.stat('nope'), null);
      assert.deepEqual(await keys(s, ''), []);
    }));

    test('a put returns the ETag that stat and listing report for the object', withStore(undefined, async (s) => {
      const first = await s.put('heads/a.json', Buffer.from('one'));
      const second = await s.put('heads/a.json', Buffer.from('two!'));
      assert.notEqual(first.etag, second.etag);
      assert.equal((await s.stat('heads/a.json'))?.etag, second.etag);
      assert.deepEqual((await collect(s, "heads/")).map((o) => o.etag), [second.etag]);
    }));

    test('conditional writes: honoured exactly, or ignored as a whole (never half)', withStore(undefined, async (s) => {
      const created = await s.put('journal/n/1', Buffer.from('first'), { ifNoneMatch: true });
      let refused: unknown = null;
      try {
        await s.put('journal/n/1', Buffer.from('second'), { ifNoneMatch: true });
      } catch (err) {
        refused = err;
      }
      if (quirks.ignoresConditions) {
        assert.equal(refused, null);
        assert.equal((await s.get('journal/n/1'))?.toString(), 'second');
        return;
      }
      assert.ok(refused instanceof PreconditionFailedError, `an existing key refuses a create: ${String(refused)}`);
      assert.equal((await s.get('journal/n/1'))?.toString(), 'first');
      // If-Match: the right ETag replaces, a stale one is refused and changes nothing.
      const replaced = await s.put('journal/n/1', Buffer.from('third'), { ifMatch: created.etag });
      await assert.rejects(s.put('journal/n/1', Buffer.from('stale'), { ifMatch: created.etag }), PreconditionFailedError);
      assert.equal((await s.get('journal/n/1'))?.toString(), 'third');
      assert.equal((await s.stat('journal/n/1'))?.etag, replaced.etag);
      await assert.rejects(s.put('journal/n/none', Buffer.from('x'), { ifMatch: created.etag }), PreconditionFailedError);
      assert.equal(await s.get('journal/n/none'), null);
    }));

    test('put then get returns the same bytes, empty body included', withStore(undefined, async (s) => {
      const bin = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await s.put('heads/node.json', Buffer.from('{"seq":1}'));
      await s.put('empty', Buffer.alloc(0));
      await s.put('bin', bin);
      assert.equal((await s.get('heads/node.json'))?.toString(), '{"seq":1}');
      assert.deepEqual(await s.get('empty'), Buffer.alloc(0));
      assert.deepEqual(await s.get('bin'), bin);
      assert.equal((await s.stat('empty'))?.size, 0);
      // A "directory" is not an object.
      assert.equal(await s.get('heads'), null);
      assert.equal(await s.stat('heads'), null);
    }));

    test('overwrite replaces the content and changes the etag', withStore(undefined, async (s) => {
      await s.put('k', Buffer.from('one'));
      const a = await s.stat('k');
      await s.put('k', Buffer.from('two'));
      const b = await s.stat('k');
      assert.equal((await s.get('k'))?.toString(), 'two');
      assert.ok(a && b);
      assert.notEqual(a.etag, b.etag);
      // Same size and same content again: a rewrite must still look like a change or like
      // nothing changed, never like the first version's etag coming back with new content.
      await s.put('k', Buffer.from('one'));
      assert.equal((await s.get('k'))?.toString(), 'one');
    }));

    test('stat agrees with list and with what was written', withStore(undefined, async (s) => {
      const before = Date.now();
      await s.put('dir/obj', Buffer.from('hello world'));
      const st = await s.stat('dir/obj');
      assert.ok(st);
      assert.equal(st.key, 'dir/obj');
      assert.equal(st.size, 11);
      assert.ok(st.etag.length > 0 && !st.etag.includes('"'), `etag ${st.etag}`);
      assert.ok(Math.abs(st.lastModified.getTime() - before) < 60_000, 'lastModified is about now');
      const [listed] = await collect(s, 'dir/');
      assert.equal(listed.key, 'dir/obj');
      assert.equal(listed.size, 11);
      assert.equal(listed.etag, st.etag);
    }));

    test('list is recursive, in byte order, and filters by prefix', withStore(undefined, async (s) => {
      const all = [
        'a-c', 'a/a/z', 'a/b', 'ab', 'b', 'heads/n1.json', 'heads/n2.json', 'journal/n1/000000000001',
        'with space/x y.txt', 'é/ü', '\uff21', '\u{1f600}',
      ];
      await Promise.all(all.map((k) => s.put(k, Buffer.from(k))));
      // S3 orders by UTF-8 bytes: "-" < "/" < "b", and U+FF21 before U+1F600 (JS `<` disagrees).
      const sorted = [...all].sort(byteOrder);
      const ordered = async (prefix: string) =>
        quirks.listsDirectoryOrder ? (await keys(s, prefix)).sort(byteOrder) : keys(s, prefix);
      assert.deepEqual(await ordered(''), sorted);
      assert.deepEqual(await keys(s, 'a/'), ['a/a/z', 'a/b']);
      assert.deepEqual(await ordered('a'), ['a-c', 'a/a/z', 'a/b', 'ab']);
      assert.deepEqual(await keys(s, 'heads/'), ['heads/n1.json', 'heads/n2.json']);
      assert.deepEqual(await keys(s, 'heads/n2'), ['heads/n2.json']);
      assert.deepEqual(await keys(s, 'journal/n1/0000'), ['journal/n1/000000000001']);
      assert.deepEqual(await keys(s, 'nothing/'), []);
      assert.deepEqual(await keys(s, 'with space/'), ['with space/x y.txt']);
      for (const k of all) assert.equal((await s.get(k))?.toString(), k, k);
    }));

    test('keys with spaces and unicode round-trip through every call', withStore(undefined, async (s) => {
      const k = 'blobs/ä ö/файл 名前 \u{1f600}.txt';
      await s.put(k, Buffer.from('x'));
      assert.equal((await s.get(k))?.toString(), 'x');
      assert.equal((await s.stat(k))?.key, k);
      assert.deepEqual(await keys(s, 'blobs/'), [k]);
      await s.delete([k]);
      assert.equal(await s.get(k), null);
    }));

    test('bad keys are refused', withStore(undefined, async (s) => {
      for (const bad of ['', '/abs', 'a//b', 'a/../b', '..', './x', 'a/.', 'nul\0byte', 'back\\slash', 'x/']) {
        await assert.rejects(s.put(bad, Buffer.from('x')), /invalid key/, `put ${JSON.stringify(bad)}`);
        await assert.rejects(s.get(bad), /invalid key/, `get ${JSON.stringify(bad)}`);
      }
      await assert.rejects(async () => {
        for await (const _ of s.list('../')) void _;
      }, /invalid list prefix/);
    }));

    test('more than 1000 keys: listing pages through all, delete removes them all', withStore(undefined, async (s) => {
      const n = 1100;
      const ks = Array.from({ length: n }, (_, i) => `blobs/${(i % 16).toString(16).padStart(2, '0')}/k${String(i).padStart(5, '0')}`);
      await pool(ks, 32, async (k) => void (await s.put(k, Buffer.from(k))));
      const lists = s.requests.list;
      const listed = await keys(s, 'blobs/');
      assert.equal(listed.length, n);
      assert.deepEqual(listed, [...ks].sort());
      assert.ok(s.requests.list > lists, 'listing counted');
      // Missing keys mixed in are not an error.
      const deletes = s.requests.delete;
      await s.delete([...ks, 'blobs/missing-1', 'never/was']);
      assert.ok(s.requests.delete >= deletes + 2, `deletes counted in batches of 1000: ${s.requests.delete - deletes}`);
      assert.deepEqual(await keys(s, ''), []);
      await s.delete([]);
      await s.delete(['still/missing']);
    }));

    test('getStream streams the object', withStore(undefined, async (s) => {
      const body = Buffer.alloc(300_000, 'z');
      await s.put('big', body);
      const stream = await s.getStream('big');
      assert.ok(stream);
      assert.equal(await text(stream), body.toString());
    }));

    test('putStream stores small bodies, empty included', withStore(undefined, async (s) => {
      await s.putStream('small', () => Readable.from([Buffer.from('abc'), Buffer.from('def')]), 6);
      await s.putStream('zero', () => Readable.from([]), 0);
      assert.equal((await s.get('small'))?.toString(), 'abcdef');
      assert.equal((await s.get('zero'))?.length, 0);
    }));

    test('putStream above the multipart threshold', withStore({ multipartThreshold: 1024 }, async (s) => {
      const body = pattern(200_000);
      let opened = 0;
      await s.putStream('mp', () => (opened++, chunked(body, 16_384)), body.length);
      assert.equal(opened, 1);
      assert.ok((await s.get('mp'))?.equals(body));
    }));

    test('putStream of a real multipart body (3 parts of 5 MiB)', withStore({ multipartThreshold: 1024 }, async (s) => {
      const size = 11 * MiB;
      const body = pattern(size);
      const puts = s.requests.put;
      await s.putStream('blobs/large', () => chunked(body, 256 * 1024), size);
      assert.ok(s.requests.put > puts);
      const st = await s.stat('blobs/large');
      assert.equal(st?.size, size);
      const back = await s.getStream('blobs/large');
      assert.ok(back);
      assert.equal(await sha256(back), createHash('sha256').update(body).digest('hex'));
      assert.deepEqual(await keys(s, 'blobs/'), ['blobs/large']);
    }));

    for (const [label, threshold, size] of [
      ['single request', undefined, 100_000],
      ['multipart', 1024, 11 * MiB],
    ] as const) {
      test(`putStream whose stream fails stores nothing (${label})`, withStore({ multipartThreshold: threshold }, async (s) => {
        const boom = new Error('digest mismatch');
        await assert.rejects(
          s.putStream('blobs/bad', () => failing(size, Math.floor(size * 0.6), boom), size),
          (err) => err === boom,
        );
        assert.equal(await s.get('blobs/bad'), null);
        assert.equal(await s.stat('blobs/bad'), null);
        assert.deepEqual(await keys(s, ''), []);
        // And a failed rewrite leaves the previous object as it was.
        await s.put('blobs/bad', Buffer.from('old'));
        await assert.rejects(s.putStream('blobs/bad', () => failing(size, 10, boom), size), (err) => err === boom);
        if (!quirks.abortedPutTruncates || label === 'multipart') {
          assert.equal((await s.get('blobs/bad'))?.toString(), 'old');
        }
        assert.deepEqual(await keys(s, ''), ['blobs/bad']);
      }));
    }

    test('putStream passes on the error of an open() that throws', withStore({ multipartThreshold: 1024 }, async (s) => {
      const boom = new Error('ENOENT: the file went away');
      for (const size of [10, 6 * MiB]) {
        await assert.rejects(s.putStream('gone', () => { throw boom; }, size), (err) => err === boom);
      }
      assert.deepEqual(await keys(s, ''), []);
    }));

    test('putStream refuses a body shorter or longer than announced', withStore(undefined, async (s) => {
      await assert.rejects(s.putStream('short', () => Readable.from([Buffer.from('abc')]), 10), /LengthMismatch|bytes/);
      await assert.rejects(s.putStream('long', () => Readable.from([Buffer.from('abcdef')]), 3), /LengthMismatch|bytes/);
      assert.deepEqual(await keys(s, ''), []);
    }));

    test('existsLocally is null, or agrees with stat and makes no request', withStore(undefined, async (s) => {
      await s.put('heads/x.json', Buffer.from('x'));
      const before = JSON.stringify(s.requests);
      const here = s.existsLocally('heads/x.json');
      const gone = s.existsLocally('heads/y.json');
      assert.equal(JSON.stringify(s.requests), before, 'no request counted');
      if (here === null) assert.equal(gone, null, 'a backend that cannot tell says so for every key');
      else assert.deepEqual([here, gone], [true, false]);
    }));

    test('request counters move with each kind of call', withStore(undefined, async (s) => {
      const before = { ...s.requests };
      await s.put('c', Buffer.from('1'));
      await s.get('c');
      await s.get('missing');
      await s.stat('c');
      await keys(s, '');
      await s.delete(['c']);
      const d = (k: keyof typeof before) => s.requests[k] - before[k];
      assert.ok(d('put') >= 1 && d('get') >= 2 && d('head') >= 1 && d('list') >= 1 && d('delete') >= 1, JSON.stringify(s.requests));
      assert.ok(s.location.length > 0);
    }));
  });
}

function byteOrder(x: string, y: string): number {
  return Buffer.compare(Buffer.from(x), Buffer.from(y));
}

async function collect(s: Store, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of s.list(prefix)) out.push(o);
  return out;
}

async function keys(s: Store, prefix: string): Promise<string[]> {
  return (await collect(s, prefix)).map((o) => o.key);
}

/** Deterministic, non-repeating-looking bytes (so a misplaced part shows). */
function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = 2463534242;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function chunked(body: Buffer, chunk: number): Readable {
  let off = 0;
  return new Readable({
    read() {
      if (off >= body.length) return void this.push(null);
      this.push(body.subarray(off, off + chunk));
      off += chunk;
    },
  });
}

/** A `size`-byte stream that fails with `err` after `after` bytes. */
function failing(size: number, after: number, err: Error): Readable {
  let off = 0;
  return new Readable({
    read() {
      if (off >= after) return void this.destroy(err);
      const n = Math.min(64 * 1024, after - off, size - off);
      this.push(Buffer.alloc(n, 1));
      off += n;
    },
  });
}

async function sha256(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of stream) h.update(c as Buffer);
  return h.digest('hex');
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]);
  }));
}
