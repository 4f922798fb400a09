import type { Readable } from 'node:stream';

/** One object as a listing reports it. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** Changes whenever the object is rewritten; compared, never interpreted. */
  etag: string;
  lastModified: Date;
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
 * prefix and always use `/`. The sync protocol needs nothing else: every mutable key has a
 * single writer, so there is no locking or compare-and-swap here.
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
  /** Stores a small object whole; the object appears atomically. */
  put(key: string, body: Buffer): Promise<void>;
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
  /** Deletes the keys; keys that do not exist are not an error. */
  delete(keys: string[]): Promise<void>;
  /** Releases sockets and handles. */
  close(): Promise<void>;
}

export function newRequestCounts(): RequestCounts {
  return { get: 0, put: 0, list: 0, delete: 0, head: 0 };
}
