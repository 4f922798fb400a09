import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../fsutil/hash.js';
import { CHUNK } from './keys.js';

const SEALED = Buffer.from('FSE1');
const STREAM = Buffer.from('FSB1');
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
 * Chunk i's nonce: a random prefix per blob, the chunk counter, and a final-chunk flag. The
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
  private pending = Buffer.alloc(0);
  private i = 0;
  private started = false;

  constructor(
    private readonly key: Buffer,
    aad: string,
  ) {
    super();
    this.aad = Buffer.from(aad);
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
    const d = createDecipheriv('aes-256-gcm', this.key, chunkNonce(this.prefix!, this.i++, final)).setAAD(this.aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG));
    try {
      return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG)), d.final()]);
    } catch {
      throw new IntegrityError(`${this.what} failed authentication (tampered with, truncated, or written with another key)`);
    }
  }
}
