import type { Readable } from 'node:stream';

/** One object as a listing reports it. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** Changes whenever the object is rewritten; compared, never interpreted. */
  etag: string;
  lastModified: Date;
}

/**
 * Conditions on a write (S3's `If-None-Match: *` and `If-Match`). A backend that honours them
 * refuses a write whose condition does not hold with a PreconditionFailedError; some
 * S3-compatible servers (s3rver among them) ignore them and write anyway, so the protocol
 * never depends on them alone (DESIGN rule 6 and 10: they are a second line).
 */
export interface PutOptions {
  /** Create only: refuse when an object is already stored under the key. */
  ifNoneMatch?: boolean;
  /** Replace only the object whose ETag is this (as a listing reports it). */
  ifMatch?: string;
}

/** What a write produced. */
export interface PutResult {
  /** The new object's ETag, as a later listing or stat reports it. */
  etag: string;
}

/** Counters every store keeps, by kind of request, for status, metrics and tests. */
export interface RequestCounts {
  get: number;
  put: number;
  list: number;
  delete: number;
  head: number;
}

/**
 * The one narrow interface every backend implements. Keys are relative to the store's
 * prefix and always use `/`. Every mutable key has a single writer, so the protocol needs
 * no locking; conditional writes (`PutOptions`) are used where a backend honours them.
 */
export interface Store {
  /** Where this store points, safe to print (never contains credentials). */
  readonly location: string;
  /** Requests made so far, by kind. */
  readonly requests: RequestCounts;
  /** A whole (small) object, or null when it does not exist. */
  get(key: string): Promise<Buffer | null>;
  /** An object's body as a stream, or null when it does not exist. */
  getStream(key: string): Promise<Readable | null>;
  /**
   * Stores a small object whole; the object appears atomically. With `opts`, only when the
   * condition holds (where the backend honours conditions), else PreconditionFailedError.
   * A write retried after a lost answer may meet its own first attempt: a caller that gets
   * PreconditionFailedError on a create reads the object back to tell its own bytes from
   * another writer's.
   */
  put(key: string, body: Buffer, opts?: PutOptions): Promise<PutResult>;
  /**
   * Stores a body read from `open()` of exactly `size` bytes, streamed (multipart when
   * large), never held whole in memory. `open` may be called again to retry. If the stream
   * errors, nothing is stored under `key` (a verifying stream relies on this).
   */
  putStream(key: string, open: () => Readable, size: number): Promise<void>;
  /** Metadata of one object, or null when it does not exist. */
  stat(key: string): Promise<ObjectInfo | null>;
  /** Every object whose key starts with `prefix`, recursively, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * Whether `key` exists, where the backend can tell without a request (a local directory:
   * one stat); null where only a request could tell. A directory store may be an unmounted
   * share whose empty mount point would otherwise pass for an empty store.
   */
  existsLocally(key: string): boolean | null;
  /** Deletes the keys; keys that do not exist are not an error. */
  delete(keys: string[]): Promise<void>;
  /** Releases sockets and handles. */
  close(): Promise<void>;
}

export function newRequestCounts(): RequestCounts {
  return { get: 0, put: 0, list: 0, delete: 0, head: 0 };
}
