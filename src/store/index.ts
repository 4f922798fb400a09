import { isAbsolute, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoreConfig } from '../config/types.js';
import { FileStore } from './file/file.js';
import { checkKey } from './keys.js';
import { S3Store, type S3StoreOptions } from './s3/s3.js';
import type { Store } from './store.js';

export type { ObjectInfo, PutOptions, PutResult, RequestCounts, Store } from './store.js';
export { PreconditionFailedError, StoreError } from './errors.js';
export { LengthMismatchError } from './length.js';
export { FileStore } from './file/file.js';
export { S3Store, type S3StoreConfig, type S3StoreOptions } from './s3/s3.js';

export type StoreUrl = { kind: 's3'; bucket: string; prefix: string } | { kind: 'file'; dir: string };

const USAGE = 'expected s3://bucket[/prefix] or file:///absolute/dir';

/** Parses a store URL; throws an Error that quotes the URL and says what is accepted. */
export function parseStoreUrl(url: string): StoreUrl {
  const bad = (why: string) => new Error(`invalid store URL ${JSON.stringify(url)}: ${why} (${USAGE})`);
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/.exec(url.trim());
  if (!m) throw bad('no scheme');
  const scheme = m[1].toLowerCase();
  if (scheme === 's3') {
    const rest = m[2];
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    // Credentials belong to the AWS chain (env, profile, role), never in a config file.
    if (bucket.includes('@') || bucket.includes(':')) throw bad('credentials or a port do not belong in the URL');
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$/.test(bucket)) throw bad(`bad bucket name ${JSON.stringify(bucket)}`);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
    if (prefix) {
      try {
        checkKey(prefix);
      } catch {
        throw bad('the prefix must be a relative path without empty, "." or ".." segments');
      }
    }
    return { kind: 's3', bucket, prefix };
  }
  if (scheme === 'file') {
    let dir: string;
    try {
      dir = fileURLToPath(url.trim());
    } catch (err) {
      throw bad((err as Error).message);
    }
    if (!isAbsolute(dir)) throw bad('the path must be absolute');
    return { kind: 'file', dir: normalize(dir).replace(/(.)\/+$/, '$1') };
  }
  throw bad(`unsupported scheme ${scheme}:`);
}

/**
 * Opens the store for one sync set: rooted at `<url prefix>/<subPrefix>` (the set's name),
 * or at the URL itself when `subPrefix` is ''. Makes no request: a wrong endpoint or
 * bucket shows up as a StoreError on first use.
 */
export function openStore(cfg: StoreConfig, subPrefix: string, opts: S3StoreOptions = {}): Store {
  const url = parseStoreUrl(cfg.url);
  const sub = subPrefix.replace(/^\/+|\/+$/g, '');
  if (sub) checkKey(sub);
  if (url.kind === 'file') return new FileStore(sub ? join(url.dir, ...sub.split('/')) : url.dir);
  const prefix = [url.prefix, sub].filter(Boolean).join('/');
  return new S3Store(
    { bucket: url.bucket, prefix, endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: cfg.forcePathStyle },
    opts,
  );
}
