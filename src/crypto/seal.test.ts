import fc from 'fast-check';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { IntegrityError } from '../fsutil/hash.js';
import { CHUNK } from './keys.js';
import { DecryptStream, EncryptStream, seal, sealedStreamSize, unseal } from './seal.js';

const KEY = randomBytes(32);
const OTHER = randomBytes(32);
const AAD = 'heads/aaaaaaaaaaaaaaaaaaaaaaaaaa.json';
const BLOB = 'blobs/3f/3f' + '0'.repeat(62);
const TAG = 16;
const HEADER = 4 + 7;
/** Seeded: FEDSYNC_FUZZ_SEED replays a failure; the seed is in fast-check's failure report. */
const fcOpts = (numRuns: number) => ({ numRuns, ...(process.env.FEDSYNC_FUZZ_SEED ? { seed: Number(process.env.FEDSYNC_FUZZ_SEED) } : {}) });

function assertIntegrity(fn: () => unknown, what: string): void {
  assert.throws(fn, (err: unknown) => err instanceof IntegrityError, what);
}

async function collect(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Feeds `input` in pieces of the given sizes (cycled), so chunk boundaries fall anywhere. */
function pieces(input: Buffer, sizes: number[] = [input.length || 1]): Readable {
  const out: Buffer[] = [];
  let i = 0;
  for (let k = 0; i < input.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length]!);
    out.push(input.subarray(i, i + n));
    i += n;
  }
  return Readable.from(out);
}

async function encrypt(plain: Buffer, key = KEY, aad = BLOB, sizes?: number[]): Promise<Buffer> {
  const out = new EncryptStream(key, aad);
  const done = collect(out);
  await pipeline(pieces(plain, sizes), out).catch(() => {});
  return done;
}

async function decrypt(sealed: Buffer, key = KEY, aad = BLOB, sizes?: number[]): Promise<Buffer> {
  const out = new DecryptStream(key, aad);
  const done = collect(out);
  await Promise.all([pipeline(pieces(sealed, sizes), out), done]);
  return done;
}

async function rejectsIntegrity(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof IntegrityError, what);
}

/** Where each chunk of an encrypted blob starts and ends (ciphertext plus tag). */
function chunkBounds(size: number): { start: number; end: number }[] {
  const n = Math.max(1, Math.ceil(size / CHUNK));
  return Array.from({ length: n }, (_, i) => {
    const start = HEADER + i * (CHUNK + TAG);
    const plain = i < n - 1 ? CHUNK : size - (n - 1) * CHUNK;
    return { start, end: start + plain + TAG };
  });
}

function flip(b: Buffer, i: number, bit = 1): Buffer {
  const c = Buffer.from(b);
  c[i]! ^= bit;
  return c;
}

describe('sealed objects (heads, segments, snapshots)', () => {
  it('round-trip any content and key name', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.string({ maxLength: 200 }), (plain, aad) => {
        const body = Buffer.from(plain);
        const sealed = seal(KEY, aad, body);
        assert.deepEqual(unseal(KEY, aad, sealed), body);
        assert.equal(sealed.length, body.length + 4 + 12 + TAG);
      }),
      fcOpts(300),
    );
  });

  it('are not deterministic (random nonce) and do not contain the plaintext', () => {
    const plain = Buffer.from('{"fedsync":"head","name":"web1-distinctive-name"}');
    const a = seal(KEY, AAD, plain);
    const b = seal(KEY, AAD, plain);
    assert.notDeepEqual(a, b);
    assert.equal(a.indexOf('distinctive'), -1);
  });

  it('fail with IntegrityError under another key or another key name (moved objects)', () => {
    const sealed = seal(KEY, AAD, Buffer.from('head body'));
    assertIntegrity(() => unseal(OTHER, AAD, sealed), 'wrong key');
    assertIntegrity(() => unseal(KEY, 'heads/bbbbbbbbbbbbbbbbbbbbbbbbbb.json', sealed), 'wrong aad');
    assertIntegrity(() => unseal(KEY, '', sealed), 'empty aad');
  });

  it('fail with IntegrityError when any single byte is flipped (every position, several bits)', () => {
    for (const size of [0, 1, 37, 300]) {
      const sealed = seal(KEY, AAD, randomBytes(size));
      for (let i = 0; i < sealed.length; i++) {
        for (const bit of [0x01, 0x80, 0xff]) assertIntegrity(() => unseal(KEY, AAD, flip(sealed, i, bit)), `size ${size}: byte ${i} ^ ${bit}`);
      }
    }
  });

  it('fail with IntegrityError when truncated, extended, empty or not sealed at all', () => {
    const sealed = seal(KEY, AAD, randomBytes(100));
    for (let n = 0; n < sealed.length; n++) assertIntegrity(() => unseal(KEY, AAD, sealed.subarray(0, n)), `truncated to ${n}`);
    assertIntegrity(() => unseal(KEY, AAD, Buffer.concat([sealed, Buffer.from([0])])), 'one byte appended');
    assertIntegrity(() => unseal(KEY, AAD, Buffer.from('{"fedsync":"head"}')), 'plain JSON (a downgrade)');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (garbage) => {
        assertIntegrity(() => unseal(KEY, AAD, Buffer.from(garbage)), 'garbage');
        assertIntegrity(() => unseal(KEY, AAD, Buffer.concat([Buffer.from('FSE1'), Buffer.from(garbage)])), 'garbage with the magic');
      }),
      fcOpts(300),
    );
  });
});

describe('encrypted blob streams', () => {
  const SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK, 3 * CHUNK + 17];

  it('round-trip at chunk-boundary sizes, and sealedStreamSize is the exact stored size', async () => {
    for (const size of SIZES) {
      const plain = randomBytes(size);
      const sealed = await encrypt(plain);
      assert.equal(sealed.length, sealedStreamSize(size), `size ${size}`);
      assert.deepEqual(await decrypt(sealed), plain, `size ${size}`);
    }
  });

  it('round-trip random sizes fed in random pieces (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4 * CHUNK + 100 }),
        fc.array(fc.integer({ min: 1, max: CHUNK + 50 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: CHUNK + 50 }), { minLength: 1, maxLength: 6 }),
        async (size, inSizes, outSizes) => {
          const plain = randomBytes(size);
          const sealed = await encrypt(plain, KEY, BLOB, inSizes);
          assert.equal(sealed.length, sealedStreamSize(size));
          assert.deepEqual(await decrypt(sealed, KEY, BLOB, outSizes), plain);
        },
      ),
      fcOpts(60),
    );
  });

  it('never contain the plaintext, and the same content encrypts differently each time', async () => {
    const plain = Buffer.from('Distinctive-Plaintext-Marker '.repeat(5000));
    const a = await encrypt(plain);
    const b = await encrypt(plain);
    assert.equal(a.indexOf('Distinctive'), -1);
    assert.notDeepEqual(a, b);
  });

  it('fail with IntegrityError under another key or another blob name', async () => {
    const sealed = await encrypt(randomBytes(CHUNK + 10));
    await rejectsIntegrity(decrypt(sealed, OTHER), 'wrong key');
    await rejectsIntegrity(decrypt(sealed, KEY, 'blobs/00/00' + '1'.repeat(62)), 'moved to another name');
  });

  it('fail when truncated at every chunk boundary and inside every chunk', async () => {
    for (const size of [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17]) {
      const sealed = await encrypt(randomBytes(size));
      const cuts = new Set<number>([0, 1, 4, HEADER - 1, HEADER]);
      for (const { start, end } of chunkBounds(size)) {
        for (const c of [start, start + 1, start + TAG - 1, Math.floor((start + end) / 2), end - TAG, end - 1]) if (c < sealed.length) cuts.add(c);
        if (end < sealed.length) cuts.add(end); // a whole chunk boundary
      }
      for (const cut of cuts) {
        assert.ok(cut < sealed.length);
        await rejectsIntegrity(decrypt(sealed.subarray(0, cut)), `size ${size} truncated to ${cut} of ${sealed.length}`);
      }
    }
  });

  it('fail when bytes are appended, or a whole chunk is dropped, duplicated or moved', async () => {
    const size = 3 * CHUNK + 17;
    const sealed = await encrypt(randomBytes(size));
    const [c0, c1, c2, c3] = chunkBounds(size).map(({ start, end }) => sealed.subarray(start, end));
    const head = sealed.subarray(0, HEADER);
    const variants: Record<string, Buffer> = {
      'byte appended': Buffer.concat([sealed, Buffer.from([0])]),
      'tag appended': Buffer.concat([sealed, randomBytes(TAG)]),
      'chunks 0 and 1 swapped': Buffer.concat([head, c1!, c0!, c2!, c3!]),
      'chunks 1 and 2 swapped': Buffer.concat([head, c0!, c2!, c1!, c3!]),
      'chunk 1 dropped': Buffer.concat([head, c0!, c2!, c3!]),
      'chunk 0 repeated': Buffer.concat([head, c0!, c0!, c1!, c2!, c3!]),
      'last chunk dropped (boundary truncation)': Buffer.concat([head, c0!, c1!, c2!]),
      'last chunk moved first': Buffer.concat([head, c3!, c0!, c1!, c2!]),
    };
    for (const [what, body] of Object.entries(variants)) await rejectsIntegrity(decrypt(body), what);
    // Chunks of another blob of the same name (a re-upload) do not splice in either.
    const again = await encrypt(randomBytes(size));
    const spliced = Buffer.concat([sealed.subarray(0, chunkBounds(size)[1]!.start), again.subarray(chunkBounds(size)[1]!.start)]);
    await rejectsIntegrity(decrypt(spliced), 'chunks of two uploads spliced');
  });

  it('fail when any byte is flipped: every byte of small blobs, and the header, tags and chunk edges of large ones', async () => {
    for (const size of [0, 1, 200]) {
      const sealed = await encrypt(randomBytes(size));
      for (let i = 0; i < sealed.length; i++) await rejectsIntegrity(decrypt(flip(sealed, i)), `size ${size}: byte ${i}`);
    }
    const size = 3 * CHUNK + 17;
    const sealed = await encrypt(randomBytes(size));
    const positions = new Set<number>();
    for (let i = 0; i < HEADER; i++) positions.add(i);
    for (const { start, end } of chunkBounds(size)) {
      for (let i = 0; i < 8; i++) positions.add(start + i);
      for (let i = end - TAG - 8; i < end; i++) positions.add(i);
    }
    for (const i of positions) await rejectsIntegrity(decrypt(flip(sealed, i, 0x40)), `byte ${i}`);
  });

  it('fail when a random byte anywhere is flipped (fast-check)', async () => {
    const size = 2 * CHUNK + 999;
    const sealed = await encrypt(randomBytes(size));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: sealed.length - 1 }), fc.integer({ min: 1, max: 255 }), async (i, bit) => {
        await rejectsIntegrity(decrypt(flip(sealed, i, bit)), `byte ${i} ^ ${bit}`);
      }),
      fcOpts(150),
    );
  });

  it('fail on garbage, on a plain (unencrypted) blob, and on an empty object', async () => {
    await rejectsIntegrity(decrypt(Buffer.alloc(0)), 'empty');
    await rejectsIntegrity(decrypt(Buffer.from('hello, plain blob')), 'plain');
    await rejectsIntegrity(decrypt(Buffer.concat([Buffer.from('FSB2'), randomBytes(7)])), 'header only');
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), async (g) => {
        await rejectsIntegrity(decrypt(Buffer.concat([Buffer.from('FSB2'), Buffer.from(g)])), 'garbage after the magic');
      }),
      fcOpts(100),
    );
  });

  it('give every blob its own key: two contents that draw the same random prefix share no keystream', async () => {
    // Force the 7-byte prefix both encryptions draw to be the same (a birthday collision).
    const require = createRequire(import.meta.url);
    const crypto = require('node:crypto') as typeof import('node:crypto');
    const original = crypto.randomBytes;
    const fixed = Buffer.from('prefix!');
    let a: Buffer;
    let b: Buffer;
    const p1 = randomBytes(1000);
    const p2 = randomBytes(1000);
    (crypto as { randomBytes: unknown }).randomBytes = (n: number) => (n === 7 ? Buffer.from(fixed) : original(n));
    syncBuiltinESMExports();
    try {
      a = await encrypt(p1, KEY, 'blobs/11/11' + '1'.repeat(62));
      b = await encrypt(p2, KEY, 'blobs/22/22' + '2'.repeat(62));
    } finally {
      (crypto as { randomBytes: unknown }).randomBytes = original;
      syncBuiltinESMExports();
    }
    assert.deepEqual(a.subarray(4, HEADER), fixed, 'the test did not control the prefix');
    assert.deepEqual(b.subarray(4, HEADER), fixed, 'the test did not control the prefix');
    const xor = (x: Buffer, y: Buffer) => Buffer.from(x.map((v, i) => v ^ y[i]!));
    // Under one key and nonce, ciphertext XOR would equal plaintext XOR (the keystream cancels).
    assert.notDeepEqual(xor(a.subarray(HEADER, HEADER + 1000), b.subarray(HEADER, HEADER + 1000)), xor(p1, p2));
    assert.deepEqual(await decrypt(a, KEY, 'blobs/11/11' + '1'.repeat(62)), p1);
    assert.deepEqual(await decrypt(b, KEY, 'blobs/22/22' + '2'.repeat(62)), p2);
  });
});
