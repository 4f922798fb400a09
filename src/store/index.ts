import { join } from 'node:path';
import type { StoreConfig } from '../config/types.js';
import { FileStore } from './file/file.js';
import { checkKey } from './keys.js';
import { S3Store, type S3StoreOptions } from './s3/s3.js';
import type { Store } from './store.js';
import { parseStoreUrl } from './url.js';

export type { ObjectInfo, PutOptions, PutResult, RequestCounts, Store } from './store.js';
export { PreconditionFailedError, StoreError } from './errors.js';
export { LengthMismatchError } from './length.js';
export { FileStore } from './file/file.js';
export { EncryptedStore } from './encrypted/encrypted.js';
export { formatStoreUrl, parseStoreUrl, StoreUrlError, type StoreUrl } from './url.js';
export { S3Store, type S3StoreConfig, type S3StoreOptions } from './s3/s3.js';

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
