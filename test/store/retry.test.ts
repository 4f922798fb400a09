import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isTransient, withRetry } from '../../src/store/s3/retry.js';

const policy = { attempts: 4, baseMs: 1 };
const err = (props: object) => Object.assign(new Error('x'), props);

describe('withRetry', () => {
  test('retries transient failures until success', async () => {
    let calls = 0;
    const got = await withRetry(policy, async (n) => {
      calls++;
      if (n < 3) throw err({ code: 'ECONNRESET' });
      return 'ok';
    });
    assert.equal(got, 'ok');
    assert.equal(calls, 3);
  });

  test('gives up after the last attempt with the last error', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(policy, async (n) => {
        calls++;
        throw err({ name: 'SlowDown', attempt: n, $metadata: { httpStatusCode: 503 } });
      }),
      (e: { attempt: number }) => e.attempt === 4,
    );
    assert.equal(calls, 4);
  });

  test('does not retry what is not transient, or what the caller vetoes', async () => {
    let calls = 0;
    await assert.rejects(withRetry(policy, async () => { calls++; throw err({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }); }));
    assert.equal(calls, 1);
    calls = 0;
    await assert.rejects(withRetry(policy, async () => { calls++; throw err({ code: 'ECONNRESET' }); }, () => false));
    assert.equal(calls, 1);
  });

  test('isTransient classifies S3 and network errors', () => {
    for (const e of [
      err({ $metadata: { httpStatusCode: 500 } }), err({ $metadata: { httpStatusCode: 503 } }), err({ name: 'SlowDown' }),
      err({ code: 'EPIPE' }), err({ code: 'ETIMEDOUT' }), err({ $retryable: {} }), new Error('aborted'),
    ]) assert.ok(isTransient(e), String((e as Error).name));
    for (const e of [err({ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }), err({ name: 'InvalidAccessKeyId' }), new Error('digest mismatch'), null]) {
      assert.ok(!isTransient(e));
    }
  });
});
