import { Readable } from 'node:stream';
import { backoff, isTransient, type RetryPolicy } from './retry.js';

/**
 * A GET body that survives a connection dropped mid-way: on a transient failure it asks for
 * the rest (`reopen(offset)`, a ranged GET pinned to the same ETag) and carries on, so a
 * large blob download does not start over, and a reader never sees the hiccup.
 */
export function resumingBody(
  first: Readable,
  size: number | undefined,
  reopen: (offset: number) => Promise<Readable>,
  policy: RetryPolicy,
): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    let body = first;
    let got = 0;
    try {
      for (let attempt = 1; ; ) {
        try {
          for await (const chunk of body) {
            got += (chunk as Buffer).length;
            yield chunk as Buffer;
          }
          if (size === undefined || got === size) return;
          throw Object.assign(new Error(`response body cut short at ${got} of ${size} bytes`), { code: 'ECONNRESET' });
        } catch (err) {
          body.destroy();
          if (!isTransient(err) || attempt >= policy.attempts) throw err;
          await backoff(policy, attempt++);
          body = await reopen(got);
        }
      }
    } finally {
      body.destroy();
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}
