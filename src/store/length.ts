import { Transform, type Readable, type TransformCallback } from 'node:stream';

/** The body a `putStream` source gave was not `size` bytes long. */
export class LengthMismatchError extends Error {
  constructor(readonly expected: number, readonly got: number, more: boolean) {
    super(`body is ${more ? 'longer than' : `${got} bytes, not`} the announced ${expected} bytes`);
    this.name = 'LengthMismatchError';
  }
}

/**
 * Passes exactly `size` bytes through, or fails. S3 is told the length up front, so a body
 * that turns out shorter or longer (a file changed under us) must fail the upload rather
 * than hang it or store a truncated object.
 */
export class ExactLength extends Transform {
  private seen = 0;
  constructor(private readonly size: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.size) cb(new LengthMismatchError(this.size, this.seen, true));
    else cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    cb(this.seen === this.size ? null : new LengthMismatchError(this.size, this.seen, false));
  }
}

/** One attempt's body for a putStream; see openBody. */
export interface Body {
  stream: Readable;
  /** The body's own error (the caller's stream failed, or the length was wrong), if any. */
  failure(): unknown;
  /** Releases the source (its file descriptor) once the attempt is over, whatever happened. */
  dispose(): void;
}

/**
 * Opens a putStream source for one attempt and remembers whether the failure, if any, came
 * from the body rather than from the store: those are never retried and reach the caller
 * unwrapped (a verifying stream's own error type survives).
 */
export function openBody(open: () => Readable, size: number): Body {
  let failure: unknown;
  const checked = new ExactLength(size);
  let src: Readable;
  try {
    src = open();
  } catch (err) {
    failure = err ?? new Error('open() threw');
    checked.on('error', () => {}); // read later through failure(); must not be "unhandled"
    checked.destroy(failure as Error);
    return { stream: checked, failure: () => failure, dispose: () => {} };
  }
  src.on('error', (err) => {
    failure ??= err;
    checked.destroy(err);
  });
  checked.on('error', (err) => {
    failure ??= err;
    src.destroy();
  });
  src.pipe(checked);
  return {
    stream: checked,
    failure: () => failure,
    dispose: () => {
      src.destroy();
      if (!checked.destroyed) checked.destroy();
    },
  };
}
