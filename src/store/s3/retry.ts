import { errorCode } from '../errors.js';

/**
 * The SDK retries each request it can replay. These helpers cover what it cannot: a streamed
 * upload (the body must be reopened) and a GET whose body breaks after the headers arrived.
 */

const TRANSIENT_CODES = new Set([
  'SlowDown', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'TooManyRequests',
  'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'ServiceUnavailable',
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE', 'TimeoutError', 'RequestAbortedError',
]);

/** Worth another attempt: throttling, a 5xx, or the connection failing under us. */
export function isTransient(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { $retryable?: unknown; $metadata?: { httpStatusCode?: number }; message?: string };
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  const code = errorCode(err);
  if (code && TRANSIENT_CODES.has(code)) return true;
  // Node reports a response cut short as a bare Error('aborted') on some paths.
  return e.message === 'aborted' || e.message === 'socket hang up';
}

export interface RetryPolicy {
  attempts: number;
  /** First backoff; doubles each attempt, with full jitter, capped at 20 s. */
  baseMs: number;
}

export function backoff(policy: RetryPolicy, attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(20_000, policy.baseMs * 2 ** (attempt - 1));
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs `attempt(n)` until it succeeds, it throws something not transient, or the attempts
 * run out. `canRetry` lets the caller veto (the body's own error is never retried).
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  attempt: (n: number) => Promise<T>,
  canRetry: (err: unknown) => boolean = isTransient,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n >= policy.attempts || !canRetry(err)) throw err;
      await backoff(policy, n);
    }
  }
}
