import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export const EMPTY_DIGEST = createHash('sha256').digest('hex');

/**
 * Read and write size for large files' streams: a third fewer CPU seconds than Node's 64 KiB
 * default on a 2 GiB file (and with writes, half the system time). Small files keep the
 * default: a read stream allocates a whole chunk per read, whatever the file's size.
 */
export const LARGE_CHUNK = 1024 * 1024;

/** Chunk size for a stream over a file of `size` bytes (unknown: the default). */
export function chunkFor(size: number | undefined): number | undefined {
  return size !== undefined && size > LARGE_CHUNK ? LARGE_CHUNK : undefined;
}

/** sha256 (hex) and byte count of a file, streamed (`sizeHint`: its size as last seen). */
export async function hashFile(path: string, sizeHint?: number): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await pipeline(createReadStream(path, { highWaterMark: chunkFor(sizeHint) }), async function* (src: AsyncIterable<Buffer>) {
    for await (const chunk of src) {
      h.update(chunk);
      size += chunk.length;
    }
  });
  return { digest: h.digest('hex'), size };
}

/**
 * Passes bytes through and fails at the end unless they hash to `digest` and number `size`.
 * Failing in flush() means the consumer sees an error instead of a clean end, so an upload
 * of a file that changed since it was hashed is aborted, and a download that does not
 * verify is never renamed into place.
 */
export class VerifyStream extends Transform {
  private readonly h = createHash('sha256');
  private n = 0;

  constructor(
    private readonly digest: string,
    private readonly size: number,
    private readonly what: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.h.update(chunk);
    this.n += chunk.length;
    if (this.n > this.size) {
      cb(new DigestMismatchError(`${this.what}: more than the expected ${this.size} bytes`));
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const got = this.h.digest('hex');
    if (this.n !== this.size) cb(new DigestMismatchError(`${this.what}: ${this.n} bytes, expected ${this.size}`));
    else if (got !== this.digest) cb(new DigestMismatchError(`${this.what}: digest ${got.slice(0, 12)}…, expected ${this.digest.slice(0, 12)}…`));
    else cb();
  }
}

/** Content that is not what it claims to be (bad digest, failed authentication): never used. */
export class IntegrityError extends Error {
  override name = 'IntegrityError';
}

export class DigestMismatchError extends IntegrityError {
  override name = 'DigestMismatchError';
}
