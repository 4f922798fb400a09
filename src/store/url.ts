import { isAbsolute, normalize } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkKey } from './keys.js';

/** A parsed store URL: one parser for the config check and for opening the store. */
export type StoreUrl = { kind: 's3'; bucket: string; prefix: string } | { kind: 'file'; dir: string };

const USAGE = 'expected s3://bucket[/prefix] or file:///absolute/dir';

/** A store URL that does not parse; `why` says what is wrong, without the URL. */
export class StoreUrlError extends Error {
  constructor(
    readonly url: string,
    readonly why: string,
  ) {
    super(`invalid store URL ${JSON.stringify(url)}: ${why} (${USAGE})`);
    this.name = 'StoreUrlError';
  }
}

/** Parses `s3://bucket[/prefix]` or `file:///absolute/dir` (host empty or localhost). */
export function parseStoreUrl(url: string): StoreUrl {
  const bad = (why: string) => new StoreUrlError(url, why);
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/.exec(url.trim());
  if (!m) throw bad('no scheme');
  const scheme = m[1]!.toLowerCase();
  if (scheme === 's3') {
    const rest = m[2]!;
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    // Credentials belong to the AWS chain (env, profile, role), never in a config file.
    if (bucket.includes('@') || bucket.includes(':')) throw bad('credentials or a port do not belong in the URL');
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$/.test(bucket)) throw bad(`bad bucket name ${JSON.stringify(bucket)}`);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
    if (prefix) {
      try {
        checkKey(prefix);
        if (/[\x00-\x1f]/.test(prefix)) throw new Error('control character');
      } catch {
        throw bad('bad prefix: it must be a relative path without empty, "." or ".." segments');
      }
    }
    return { kind: 's3', bucket, prefix };
  }
  if (scheme === 'file') {
    let dir: string;
    try {
      dir = fileURLToPath(url.trim());
    } catch (err) {
      throw bad(`a file URL needs three slashes and an absolute path (${(err as Error).message})`);
    }
    if (!isAbsolute(dir) || dir.includes('\0')) throw bad('the path must be absolute');
    return { kind: 'file', dir: normalize(dir).replace(/(.)\/+$/, '$1') };
  }
  throw bad(`unsupported scheme ${scheme}:`);
}

/** The canonical form of a parsed URL: no trailing slash, file paths normalised. */
export function formatStoreUrl(u: StoreUrl): string {
  if (u.kind === 'file') return pathToFileURL(u.dir).href;
  return `s3://${u.bucket}${u.prefix ? `/${u.prefix}` : ''}`;
}
