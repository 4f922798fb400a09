import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../fsutil/hash.js';
import { CHUNK } from './keys.js';

const SEALED = Buffer.from('FSE1');
// FSB2: each blob is encrypted under its own key (see blobStreamKey); FSB1 used the contents
// key directly and is not read.
const STREAM = Buffer.from('FSB2');
const TAG = 16;
const PREFIX = 7;

/**
 * A whole object (head, segment, snapshot, bundle): AES-256-GCM with a random nonce, the
 * object's key as associated data, so a sealed object moved to another key does not open.
 */
export function seal(key: Buffer, aad: string, plain: Buffer): Buffer {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.from(aad));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([SEALED, nonce, body, c.getAuthTag()]);
}

export function unseal(key: Buffer, aad: string, sealed: Buffer): Buffer {
  if (sealed.length < SEALED.length + 12 + TAG || !sealed.subarray(0, 4).equals(SEALED)) throw new IntegrityError(`${aad} is not an encrypted fedsync object`);
  const nonce = sealed.subarray(4, 16);
  const d = createDecipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.from(aad));
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  try {
    return Buffer.concat([d.update(sealed.subarray(16, sealed.length - TAG)), d.final()]);
  } catch {
    throw new IntegrityError(`${aad} failed authentication (tampered with, or written with another key)`);
  }
}

/** Bytes an encrypted blob of `size` plaintext bytes takes in the store. */
export function sealedStreamSize(size: number): number {
  const chunks = Math.max(1, Math.ceil(size / CHUNK));
  return STREAM.length + PREFIX + size + chunks * TAG;
}

/**
 * The key one blob's chunks are encrypted with: HKDF of the contents key, salted with the
 * blob's random prefix and bound to its name. A single AES-GCM key shared by every blob would
 * leave only the 56 random bits of the prefix to keep nonces unique across blobs, and two
 * blobs drawing the same prefix (a birthday collision: likely within a few hundred million
 * blobs, and above the usual 2^-32 risk bound after a few thousand) would reuse keystream and
 * expose the GHASH key. With a key per (name, prefix), distinct contents (distinct names:
 * an HMAC of the digest) never share a key, and the same content under the same name and
 * prefix encrypts to the same bytes, which reveals nothing.
 */
function blobStreamKey(key: Buffer, prefix: Buffer, aad: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, prefix, Buffer.concat([Buffer.from('fedsync blob v2\0'), aad]), 32));
}

/**
 * Chunk i's nonce: the blob's random prefix, the chunk counter, and a final-chunk flag. The
 * counter makes chunks unreorderable, the flag makes truncation at a chunk boundary fail.
 */
function chunkNonce(prefix: Buffer, i: number, final: boolean): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0);
  n.writeUInt32BE(i, PREFIX);
  n[11] = final ? 1 : 0;
  return n;
}

function encryptChunk(key: Buffer, aad: Buffer, prefix: Buffer, i: number, final: boolean, plain: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, chunkNonce(prefix, i, final)).setAAD(aad);
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

/** Streams a blob body into its encrypted form (chunked AES-256-GCM). */
export class EncryptStream extends Transform {
  private readonly prefix = randomBytes(PREFIX);
  private readonly aad: Buffer;
  private readonly key: Buffer;
  private pending = Buffer.alloc(0);
  private i = 0;
  private started = false;

  constructor(key: Buffer, aad: string) {
    super();
    this.aad = Buffer.from(aad);
    this.key = blobStreamKey(key, this.prefix, this.aad);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.header();
    this.pending = Buffer.concat([this.pending, chunk]);
    // A chunk is sealed only once more data follows it: the last one carries the final flag.
    while (this.pending.length > CHUNK) {
      this.push(encryptChunk(this.key, this.aad, this.prefix, this.i++, false, this.pending.subarray(0, CHUNK)));
      this.pending = this.pending.subarray(CHUNK);
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.header();
    this.push(encryptChunk(this.key, this.aad, this.prefix, this.i++, true, this.pending));
    cb();
  }

  private header(): void {
    if (this.started) return;
    this.started = true;
    this.push(Buffer.concat([STREAM, this.prefix]));
  }
}

/** The inverse of EncryptStream; any tampering, reordering or truncation is an error. */
export class DecryptStream extends Transform {
  private readonly aad: Buffer;
  private prefix: Buffer | null = null;
  /** This blob's key, once its prefix is read. */
  private blobKey: Buffer | null = null;
  private pending = Buffer.alloc(0);
  private i = 0;

  constructor(
    private readonly key: Buffer,
    private readonly what: string,
  ) {
    super();
    this.aad = Buffer.from(what);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    try {
      if (!this.prefix) {
        if (this.pending.length < STREAM.length + PREFIX) return cb();
        if (!this.pending.subarray(0, 4).equals(STREAM)) throw new IntegrityError(`${this.what} is not an encrypted fedsync blob`);
        this.prefix = Buffer.from(this.pending.subarray(4, 4 + PREFIX));
        this.blobKey = blobStreamKey(this.key, this.prefix, this.aad);
        this.pending = this.pending.subarray(4 + PREFIX);
      }
      while (this.pending.length > CHUNK + TAG) {
        this.push(this.open(this.pending.subarray(0, CHUNK + TAG), false));
        this.pending = this.pending.subarray(CHUNK + TAG);
      }
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (!this.prefix || this.pending.length < TAG) throw new IntegrityError(`${this.what} is truncated`);
      this.push(this.open(this.pending, true));
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  private open(sealed: Buffer, final: boolean): Buffer {
    const d = createDecipheriv('aes-256-gcm', this.blobKey!, chunkNonce(this.prefix!, this.i++, final)).setAAD(this.aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG));
    try {
      return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG)), d.final()]);
    } catch {
      throw new IntegrityError(`${this.what} failed authentication (tampered with, truncated, or written with another key)`);
    }
  }
}
