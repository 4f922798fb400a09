// Fuzzing the encrypting store (DESIGN.md rule 4, "remote input is untrusted"), with
// fast-check: ciphertexts tampered with, moved to another key, replayed, forged without the
// key or sealed by another federation. The store must return only what was sealed under that
// very key, else an IntegrityError. The backend is a Store in memory, so a case can read and
// rewrite the raw objects under the encrypting store.
//
// 1,000 of the default 10,000 decode-level cases, a few seconds (the split is in fuzz-gen.ts).
// Reproducible: the seed is printed (`# fuzz seed`); FEDSYNC_FUZZ_SEED=<seed> replays the run;
// FEDSYNC_FUZZ_RUNS=<n> scales the whole suite, this file included.
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { newEncryption } from '../../src/crypto/keys.js';
import { IntegrityError } from '../../src/fsutil/hash.js';
import { EncryptedStore } from '../../src/store/encrypted/encrypted.js';
import { newRequestCounts, type ObjectInfo, type PutResult, type Store } from '../../src/store/store.js';
import { snapshotKey } from '../../src/sync/housekeep/snapshot.js';
import { headKey, segmentKey } from '../../src/sync/layout.js';
import { announce, arbMutation, checkNothingEscaped, fcParams, mutate, runs, sha, show, TOTAL_RUNS } from './fuzz-gen.js';
import { EVIL, HONEST } from './fuzz-node.js';

announce(`${runs(1000)} of ${TOTAL_RUNS} decode-level cases: the encrypting store`);

describe('fuzz: the encrypting store on hostile ciphertexts (decode level)', () => {
  it(`the encrypting store returns only what was sealed under that very key, else IntegrityError (${runs(1000)} cases)`, async () => {
    const keys = newEncryption('fuzz').keys;
    const otherKeys = newEncryption('fuzz').keys; // another federation (another salt)
    const KEYS = [headKey(EVIL), headKey(HONEST), segmentKey(EVIL, 1), segmentKey(EVIL, 2), snapshotKey(`1763700000000-000001-${EVIL}`), `blobs/ab/ab${'1'.repeat(62)}`, `blobs/cd/cd${'2'.repeat(62)}`, `bundles/1763700000000-000001-${EVIL}/0`];
    const ATTACKS = ['none', 'mutate', 'move', 'replay-older', 'plain', 'other-federation', 'garbage-with-magic'] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...KEYS),
        fc.constantFrom(...KEYS),
        fc.uint8Array({ maxLength: 3000 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom(...ATTACKS),
        arbMutation,
        async (key, from, p1, p2, attack, m) => {
          const inner = new MemoryStore();
          const store = new EncryptedStore(inner, keys);
          const older = Buffer.from(p2);
          const plain = Buffer.from(p1);
          // What was ever sealed under each key: a replay of an older copy is authentic.
          await store.put(key, older);
          const olderSealed = inner.raw(key)!;
          await store.put(key, plain);
          const sealedUnder = new Map<string, Buffer[]>([[key, [older, plain]]]);
          if (from !== key) {
            await store.put(from, Buffer.from('another object'));
            sealedUnder.set(from, [Buffer.from('another object')]);
          }
          switch (attack) {
            case 'mutate':
              inner.setRaw(key, mutate(inner.raw(key)!, m));
              break;
            case 'move':
              inner.setRaw(key, inner.raw(from)!);
              break;
            case 'replay-older':
              inner.setRaw(key, olderSealed);
              break;
            case 'plain':
              inner.setRaw(key, plain);
              break;
            case 'other-federation': {
              const other = new EncryptedStore(inner, otherKeys);
              await other.put(key, plain);
              break;
            }
            case 'garbage-with-magic':
              inner.setRaw(key, Buffer.concat([Buffer.from(key.startsWith('blobs/') ? 'FSB2' : 'FSE1'), Buffer.from(m.op === 'garbage' ? m.bytes : p2)]));
              break;
          }
          let got: Buffer | null = null;
          let err: unknown = null;
          try {
            got = await store.get(key);
          } catch (e) {
            err = e;
          }
          if (got === null) {
            assert.ok(err instanceof IntegrityError, `${attack}: expected IntegrityError, got ${String(err)}`);
            if (attack === 'none' || attack === 'replay-older' || (attack === 'move' && from === key)) assert.fail(`${attack}: an authentic object failed: ${String(err)}`);
            return;
          }
          // Authentic: exactly something sealed under this key before (never another key's, never forged).
          assert.ok((sealedUnder.get(key) ?? []).some((b) => b.equals(got!)), `${attack} (${show(m)}): returned bytes never sealed under ${key}`);
          if (attack === 'mutate' || attack === 'plain' || attack === 'other-federation' || attack === 'garbage-with-magic') assert.fail(`${attack}: a forged object was accepted`);
          if (attack === 'replay-older') assert.ok(got.equals(older));
        },
      ),
      fcParams(7, runs(1000)),
    );
  });
});

/** A Store in memory: the backend under the encrypting store in the ciphertext fuzz. */
class MemoryStore implements Store {
  readonly location = 'memory://';
  readonly requests = newRequestCounts();
  private readonly objects = new Map<string, Buffer>();
  raw(key: string): Buffer | undefined {
    return this.objects.get(key);
  }
  setRaw(key: string, body: Buffer): void {
    this.objects.set(key, Buffer.from(body));
  }
  async get(key: string): Promise<Buffer | null> {
    return this.objects.get(key) ?? null;
  }
  async getStream(key: string): Promise<Readable | null> {
    const b = this.objects.get(key);
    return b ? Readable.from([b]) : null;
  }
  async put(key: string, body: Buffer): Promise<PutResult> {
    this.objects.set(key, Buffer.from(body));
    return { etag: sha(body) };
  }
  async putStream(key: string, open: () => Readable, size: number): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of open()) parts.push(c as Buffer);
    const body = Buffer.concat(parts);
    if (body.length !== size) throw new Error(`putStream: ${body.length} bytes, announced ${size}`);
    this.objects.set(key, body);
  }
  async stat(key: string): Promise<ObjectInfo | null> {
    const b = this.objects.get(key);
    return b ? { key, size: b.length, etag: sha(b), lastModified: new Date() } : null;
  }
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const k of [...this.objects.keys()].sort()) if (k.startsWith(prefix)) yield (await this.stat(k))!;
  }
  existsLocally(key: string): boolean {
    return this.objects.has(key);
  }
  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.objects.delete(k);
  }
  async close(): Promise<void> {}
}

checkNothingEscaped();
