import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Keys } from '../../crypto/keys.js';
import { DecryptStream, EncryptStream, seal, sealedStreamSize, unseal } from '../../crypto/seal.js';
import type { ObjectInfo, PutOptions, PutResult, RequestCounts, Store } from '../store.js';

/** The one object every node must read before it has keys. */
const PLAIN_KEYS = new Set(['format.json']);

/**
 * Encrypts on the way in and authenticates on the way out, in front of any backend: blob
 * bodies as chunked AES-256-GCM streams, every other object sealed whole, each bound to its
 * key. Keys and sizes stay visible to the store; names of blobs are already HMACs (the sync
 * layer asks for them through `blobName`). A body that fails authentication is an
 * IntegrityError, which the protocol treats exactly like a digest mismatch: never used.
 */
export class EncryptedStore implements Store {
  constructor(
    private readonly inner: Store,
    private readonly keys: Keys,
  ) {}

  /** Where the objects are: encryption does not move them. */
  get location(): string {
    return this.inner.location;
  }

  get requests(): RequestCounts {
    return this.inner.requests;
  }

  private static isBlob(key: string): boolean {
    return key.startsWith('blobs/');
  }

  async get(key: string): Promise<Buffer | null> {
    if (EncryptedStore.isBlob(key)) {
      const s = await this.getStream(key);
      if (!s) return null;
      const parts: Buffer[] = [];
      for await (const c of s) parts.push(c as Buffer);
      return Buffer.concat(parts);
    }
    const body = await this.inner.get(key);
    if (!body || PLAIN_KEYS.has(key)) return body;
    return unseal(this.keys.meta, key, body);
  }

  async getStream(key: string): Promise<Readable | null> {
    if (!EncryptedStore.isBlob(key)) {
      const body = await this.get(key);
      return body ? Readable.from([body]) : null;
    }
    const body = await this.inner.getStream(key);
    if (!body) return null;
    const out = new DecryptStream(this.keys.contents, key);
    pipeline(body, out).catch(() => {}); // errors reach `out` (destroyed with them) and its reader
    return out;
  }

  /** The ETag returned is the stored (sealed) object's, which is what listings report. */
  async put(key: string, body: Buffer, opts?: PutOptions): Promise<PutResult> {
    if (PLAIN_KEYS.has(key)) return this.inner.put(key, body, opts);
    if (!EncryptedStore.isBlob(key)) return this.inner.put(key, seal(this.keys.meta, key, body), opts);
    // Blob bodies are streamed; blobs are content-addressed and never written conditionally.
    if (opts?.ifNoneMatch || opts?.ifMatch) throw new Error(`conditional writes of blobs are not supported (${key})`);
    await this.putStream(key, () => Readable.from([body]), body.length);
    const st = await this.inner.stat(key);
    return { etag: st?.etag ?? '' };
  }

  async putStream(key: string, open: () => Readable, size: number): Promise<void> {
    const encrypt = () => {
      const out = new EncryptStream(this.keys.contents, key);
      pipeline(open(), out).catch(() => {}); // a failing source (a file that changed) fails `out`
      return out;
    };
    return this.inner.putStream(key, encrypt, sealedStreamSize(size));
  }

  stat(key: string): Promise<ObjectInfo | null> {
    return this.inner.stat(key);
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }

  existsLocally(key: string): boolean | null {
    return this.inner.existsLocally(key);
  }

  delete(keys: string[]): Promise<void> {
    return this.inner.delete(keys);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
