import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import { PreconditionFailedError, StoreError, errorCode } from '../errors.js';
import { checkKey, checkPrefix } from '../keys.js';
import { openBody, type Body } from '../length.js';
import { newRequestCounts, type ObjectInfo, type PutOptions, type PutResult, type RequestCounts, type Store } from '../store.js';
import { makeClient } from './client.js';
import { resumingBody } from './resume.js';
import { isTransient, withRetry, type RetryPolicy } from './retry.js';

const MiB = 1024 * 1024;

export interface S3StoreConfig {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing `/`; '' for the whole bucket. */
  prefix: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
}

export interface S3StoreOptions {
  /** Explicit credentials (tests). Never read from the config file: the AWS chain is used. */
  credentials?: S3ClientConfig['credentials'];
  /** Attempts per operation, first included (default 6). */
  maxAttempts?: number;
  /** First retry backoff of our own retry loops (default 200 ms). */
  retryBaseMs?: number;
  /** putStream bodies above this many bytes go multipart (default 16 MiB). */
  multipartThreshold?: number;
  /** Multipart part size (default 8 MiB; S3 refuses parts under 5 MiB but the last). */
  partSize?: number;
  /** Parts uploaded at once (default 4). */
  queueSize?: number;
}

/** A store under one prefix of one bucket. */
export class S3Store implements Store {
  readonly requests: RequestCounts = newRequestCounts();
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly root: string;
  private readonly retry: RetryPolicy;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly endpoint: string;
  /**
   * Whether this endpoint has answered as an S3 server does (a parsed response, or S3's own
   * error body). Until it has, a HEAD's 404 (which has no body) proves nothing: a web server
   * that is not S3 answers 404 to everything.
   */
  private proven = false;

  constructor(target: S3StoreConfig, opts: S3StoreOptions = {}) {
    this.bucket = target.bucket;
    this.root = target.prefix.replace(/^\/+|\/+$/g, '');
    this.location = describeLocation(target.bucket, this.root, target.endpoint);
    this.endpoint = target.endpoint ?? 'the AWS S3 endpoint';
    this.retry = { attempts: opts.maxAttempts ?? 6, baseMs: opts.retryBaseMs ?? 200 };
    this.threshold = opts.multipartThreshold ?? 16 * MiB;
    this.partSize = Math.max(5 * MiB, opts.partSize ?? 8 * MiB);
    this.queueSize = opts.queueSize ?? 4;
    this.client = makeClient({
      endpoint: target.endpoint,
      region: target.region,
      forcePathStyle: target.forcePathStyle,
      credentials: opts.credentials,
      maxAttempts: this.retry.attempts,
      counts: this.requests,
    });
  }

  async get(key: string): Promise<Buffer | null> {
    const Key = this.full(key);
    // The SDK retries the request; a body that breaks mid-way needs the GET issued again.
    return withRetry(
      this.retry,
      async () => {
        const cmd = new GetObjectCommand({ Bucket: this.bucket, Key });
        const res = await this.send('get', key, () => this.client.send(cmd));
        if (!res?.Body) return null;
        let bytes: Uint8Array;
        try {
          bytes = await res.Body.transformToByteArray();
        } catch (err) {
          throw new BodyError(err);
        }
        if (res.ContentLength !== undefined && bytes.length !== res.ContentLength) {
          throw new BodyError(Object.assign(new Error('response body cut short'), { code: 'ECONNRESET' }));
        }
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      },
      (err) => err instanceof BodyError && isTransient(err.cause),
    ).catch((err) => {
      throw err instanceof BodyError ? new StoreError('get', key, err.cause) : err;
    });
  }

  async getStream(key: string): Promise<Readable | null> {
    const Key = this.full(key);
    const cmd = new GetObjectCommand({ Bucket: this.bucket, Key });
    const res = await this.send('get', key, () => this.client.send(cmd));
    if (!res?.Body) return null;
    // The rest of the same version of the object, from `offset` on.
    const reopen = async (offset: number) => {
      const range = new GetObjectCommand({ Bucket: this.bucket, Key, Range: `bytes=${offset}-`, IfMatch: res.ETag });
      const part = await this.client.send(range);
      if (!part.ContentRange?.startsWith(`bytes ${offset}-`)) {
        throw new Error(`ranged GET answered ${part.ContentRange ?? 'with the whole object'}`);
      }
      return part.Body as Readable;
    };
    return resumingBody(res.Body as Readable, res.ContentLength, reopen, this.retry);
  }

  async put(key: string, body: Buffer, opts: PutOptions = {}): Promise<PutResult> {
    const Key = this.full(key);
    const cmd = new PutObjectCommand({
      Bucket: this.bucket,
      Key,
      Body: body,
      ContentLength: body.length,
      ...(opts.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
      // Unquoted: Ceph RGW compares the header with the bare ETag and refuses the quoted form.
      ...(opts.ifMatch !== undefined ? { IfMatch: opts.ifMatch } : {}),
    });
    try {
      const res = await this.client.send(cmd);
      this.proven = true;
      return { etag: unquote(res.ETag) };
    } catch (err) {
      // 412 when the condition failed; 409 when a concurrent conditional write won the race.
      const code = errorCode(err);
      if (code === 'PreconditionFailed' || code === 'ConditionalRequestConflict' || httpStatus(err) === 412) throw new PreconditionFailedError(key, err);
      // If-Match on a key that does not exist: the condition fails too.
      if (opts.ifMatch !== undefined && code === 'NoSuchKey') throw new PreconditionFailedError(key, err);
      throw this.failure('put', key, err);
    }
  }

  /**
   * One PutObject up to the threshold, multipart above. Either way the body is a stream the
   * SDK cannot replay, so retries reopen it here. An object appears only when the upload
   * completes: a failed single PUT is discarded by the server (short body), and a failed
   * multipart upload is aborted by lib-storage (leavePartsOnError: false).
   */
  async putStream(key: string, open: () => Readable, size: number): Promise<void> {
    const Key = this.full(key);
    let body: Body | undefined;
    try {
      await withRetry(
        this.retry,
        async () => {
          body?.dispose();
          body = openBody(open, size);
          if (size <= this.threshold) await this.putOnce(Key, body, size);
          else await this.putMultipart(Key, body, size);
        },
        (err) => body?.failure() === undefined && isTransient(err),
      );
    } catch (err) {
      // The caller's own stream failed (or had the wrong length): its error, unwrapped.
      if (body?.failure() !== undefined) throw body.failure();
      throw this.failure('put', key, err);
    } finally {
      body?.dispose();
    }
  }

  private async putOnce(Key: string, body: Body, size: number): Promise<void> {
    // The SDK pipes the body into the request and would wait forever for the rest of a body
    // whose source failed: abort the request instead, so the server drops the partial body.
    const abort = new AbortController();
    body.stream.once('error', () => abort.abort());
    const cmd = new PutObjectCommand({ Bucket: this.bucket, Key, Body: body.stream, ContentLength: size });
    await this.client.send(cmd, { abortSignal: abort.signal });
  }

  private async putMultipart(Key: string, body: Body, size: number): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: body.stream, ContentLength: size },
      // 10,000 parts at most: very large bodies need larger parts.
      partSize: Math.max(this.partSize, Math.ceil(size / 10_000)),
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const cmd = new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) });
    const res = await this.send('stat', key, () => this.client.send(cmd));
    if (!res && !this.proven) await this.prove(key);
    if (!res) return null;
    return {
      key,
      size: res.ContentLength ?? 0,
      etag: unquote(res.ETag),
      lastModified: res.LastModified ?? new Date(0),
    };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    const base = this.root ? `${this.root}/` : '';
    let token: string | undefined;
    do {
      const cmd = new ListObjectsV2Command({ Bucket: this.bucket, Prefix: base + prefix, ContinuationToken: token });
      const res = await this.send('list', prefix, () => this.client.send(cmd));
      for (const o of res?.Contents ?? []) {
        if (!o.Key?.startsWith(base)) continue;
        yield {
          key: o.Key.slice(base.length),
          size: o.Size ?? 0,
          etag: unquote(o.ETag),
          lastModified: o.LastModified ?? new Date(0),
        };
      }
      token = res?.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  /** Only a request could tell. */
  existsLocally(): null {
    return null;
  }

  async delete(keys: string[]): Promise<void> {
    const full = keys.map((k) => this.full(k));
    const batches: string[][] = [];
    for (let i = 0; i < full.length; i += 1000) batches.push(full.slice(i, i + 1000));
    const run = async () => {
      for (let batch = batches.shift(); batch; batch = batches.shift()) await this.deleteBatch(batch);
    };
    await Promise.all(Array.from({ length: Math.min(4, batches.length) }, run));
  }

  private async deleteBatch(keys: string[]): Promise<void> {
    const Delete = { Objects: keys.map((Key) => ({ Key })), Quiet: true };
    const cmd = new DeleteObjectsCommand({ Bucket: this.bucket, Delete });
    const res = await this.send('delete', this.relative(keys[0] ?? ''), () => this.client.send(cmd));
    // DeleteObjects answers 200 even when some keys failed; a missing key is not a failure.
    const failed = (res?.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (failed.length) {
      const e = failed[0];
      const more = failed.length > 1 ? ` (and ${failed.length - 1} more)` : '';
      const cause = Object.assign(new Error(`${e.Code}: ${e.Message}${more}`), { code: e.Code });
      throw new StoreError('delete', this.relative(e.Key ?? ''), cause);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /**
   * Sends one command. Only "this key does not exist" becomes null: a GET answered with S3's
   * NoSuchKey error, or a HEAD's bare 404 (checked by `prove` until the endpoint has shown it
   * is S3). Any other 404 (a PUT, a LIST, a DELETE, a GET without S3's error body, a missing
   * bucket) is an error naming the endpoint and bucket: taken as "absent", an endpoint that
   * answers 404 to everything would look like an empty store that accepts every write.
   */
  private async send<T>(op: string, key: string, call: () => Promise<T>): Promise<T | null> {
    try {
      const res = await call();
      this.proven = true;
      return res;
    } catch (err) {
      const code = errorCode(err);
      if (op === 'get' && code === 'NoSuchKey') {
        this.proven = true;
        return null;
      }
      if (op === 'stat' && httpStatus(err) === 404 && (code === 'NotFound' || code === 'NoSuchKey')) return null;
      throw this.failure(op, key, err);
    }
  }

  /** After a HEAD's 404 on an endpoint not yet proven: one listing shows whether it is S3. */
  private async prove(key: string): Promise<void> {
    const cmd = new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.root ? `${this.root}/` : '', MaxKeys: 1 });
    try {
      await this.client.send(cmd);
      this.proven = true;
    } catch (err) {
      throw this.failure('stat', key, err);
    }
  }

  /** The StoreError for a failed request; a 404 that is not "no such key" says what it suggests. */
  private failure(op: string, key: string, err: unknown): StoreError {
    if (httpStatus(err) !== 404 || errorCode(err) === 'NoSuchBucket') return new StoreError(op, key, err);
    const verb = { get: 'GET', stat: 'HEAD', list: 'LIST', delete: 'DELETE', put: 'PUT' }[op] ?? op;
    const why = verb === 'GET' ? ' without S3\'s NoSuchKey error' : '';
    const cause = new Error(`the endpoint answered 404 to a ${verb}${why}: is ${this.endpoint} an S3 server, and does bucket ${this.bucket} exist there?`, { cause: err });
    return new StoreError(op, key, Object.assign(cause, { code: 'EndpointNotS3' }));
  }

  private full(key: string): string {
    checkKey(key);
    return this.root ? `${this.root}/${key}` : key;
  }

  private relative(full: string): string {
    return this.root && full.startsWith(`${this.root}/`) ? full.slice(this.root.length + 1) : full;
  }
}

/** Marks a failure while reading a GET body, the one case `get` retries itself. */
class BodyError extends Error {
  constructor(override readonly cause: unknown) {
    super('body read failed');
  }
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}

/** `s3://bucket/prefix (endpoint http://host:port)`, never with credentials. */
function describeLocation(bucket: string, prefix: string, endpoint?: string): string {
  let where = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
  if (endpoint) {
    let shown = endpoint;
    try {
      const u = new URL(endpoint);
      u.username = '';
      u.password = '';
      shown = u.href.replace(/\/$/, '');
    } catch {
      shown = endpoint.replace(/\/\/[^@/]*@/, '//');
    }
    where += ` (endpoint ${shown})`;
  }
  return where;
}
