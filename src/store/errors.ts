/**
 * Every backend failure other than "not found" surfaces as a StoreError whose message fits on
 * one log line and says what was being done, to which key, why, and (when we can guess) what
 * to check. The original error stays reachable as `cause`.
 */
export class StoreError extends Error {
  constructor(
    readonly op: string,
    readonly key: string,
    cause: unknown,
  ) {
    super(`store: ${op}${key ? ` ${key}` : ''} failed: ${describe(cause)}`, { cause });
    this.name = 'StoreError';
  }

  /** The S3 error code or Node errno code of the cause, when there is one. */
  get code(): string | undefined {
    return errorCode(this.cause);
  }
}

/** A conditional write (`PutOptions`) whose condition did not hold: nothing was written. */
export class PreconditionFailedError extends StoreError {
  constructor(key: string, cause: unknown) {
    super('put', key, cause);
    this.name = 'PreconditionFailedError';
  }
}

/** The machine-readable code of an SDK or Node error (`NoSuchBucket`, `ECONNREFUSED`). */
export function errorCode(err: unknown): string | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; Code?: unknown; name?: unknown; errors?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (typeof e.Code === 'string') return e.Code;
  // Node 20 reports a failed connect to a multi-address host as an AggregateError whose
  // own message is empty; the useful code is on the members.
  if (Array.isArray(e.errors) && e.errors.length) return errorCode(e.errors[0]);
  if (typeof e.name === 'string' && e.name !== 'Error') return e.name;
  return undefined;
}

const HINTS: Record<string, string> = {
  AccessDenied: 'do the credentials have access to this bucket and prefix?',
  // A HEAD has no body, so a 403 there carries no S3 error code.
  Forbidden: 'check the credentials and their access to this bucket',
  InvalidAccessKeyId: 'check the access key (AWS_ACCESS_KEY_ID or the profile in use)',
  SignatureDoesNotMatch: 'check the secret key and the region',
  NoSuchBucket: 'does the bucket exist on this endpoint?',
  ECONNREFUSED: 'is the endpoint reachable?',
  ENOTFOUND: 'check the endpoint host name',
  EAI_AGAIN: 'check the endpoint host name and DNS',
  CredentialsProviderError: 'set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or an instance role',
  EACCES: 'check the permissions of the store directory',
  ENOSPC: 'the disk holding the store is full',
};

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = errorCode(err);
  let msg = err.message;
  if (!msg && err instanceof AggregateError) msg = err.errors.map((x) => (x as Error).message).join('; ');
  if (!msg) msg = code ?? err.name;
  // SDK service errors: "Access Denied" alone hides the code that the hint table and a
  // search engine both need.
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (code && !msg.includes(code) && status) msg = `${code}: ${msg}`;
  if (status && !msg.includes(String(status))) msg += ` (HTTP ${status})`;
  const hint = code ? HINTS[code] : undefined;
  return (hint ? `${msg} (${hint})` : msg).replace(/\s*\n\s*/g, ' ');
}
