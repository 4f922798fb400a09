import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Config, SetConfig } from '../../config/types.js';
import { openStore, type Store } from '../../store/index.js';
import { cachedFormatJson, cachedFormatProblem, formatMismatchFix } from '../../sync/format.js';
import { FORMAT_KEY } from '../../sync/layout.js';
import { manifestPath } from '../../sync/node.js';
import { fail, ok, why, type CheckResult } from './check.js';

/** Doctor gives up on a store that has not answered within this long (retries included). */
const PROBE_TIMEOUT_MS = 30_000;

/** Few attempts: the doctor should say "unreachable" in seconds, not after a minute of retries. */
export function probeStore(config: Config, set: SetConfig): Store {
  return openStore(config.store, set.name, { maxAttempts: 2, retryBaseMs: 100 });
}

/**
 * Writes, reads back and deletes `doctor/<host>-<random>` under the set's prefix: the three
 * permissions a cycle needs (s3:PutObject, s3:GetObject, s3:DeleteObject) and the network.
 */
export async function storeReadWrite(store: Store): Promise<CheckResult> {
  const key = `doctor/${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${randomBytes(6).toString('hex')}`;
  const body = randomBytes(32);
  try {
    await timeout(async () => {
      await store.put(key, body);
      const back = await store.get(key);
      if (!back || !back.equals(body)) throw new Error(`${key} read back ${back ? 'different bytes' : 'as missing'} right after it was written`);
      await store.delete([key]);
    });
    return ok(`${store.location}: wrote, read and deleted ${key}`);
  } catch (err) {
    return fail(`${store.location}: ${why(err)}`, storeFix(why(err)));
  }
}

/**
 * format.json, written by the first node's `fedsync init`, must be there and readable, and be
 * the format this node cached at init (DESIGN rule 10: a node holding another fails loudly).
 */
export async function storeFormat(store: Pick<Store, 'location' | 'get'>, local?: { stateDir: string; set: string }): Promise<CheckResult> {
  try {
    const body = await timeout(() => store.get(FORMAT_KEY));
    if (!body) return fail(`${store.location} has no ${FORMAT_KEY}`, 'run `fedsync init` on the first node of this set (it creates the federation)');
    const f = JSON.parse(body.toString('utf8')) as { fedsync?: string; version?: number };
    if (f.fedsync !== 'format' || f.version !== 1) return fail(`${store.location}/${FORMAT_KEY} is not a version 1 fedsync format file`, 'check the store URL and prefix; upgrade fedsync if another node is newer');
    if (local) {
      let cached: string | undefined;
      try {
        cached = cachedFormat(local.stateDir, local.set);
      } catch {
        return ok(`${FORMAT_KEY} present (layout version 1); not compared with this node's, whose manifest cannot be read (see the manifest check)`);
      }
      const problem = cachedFormatProblem(cached, body, `${store.location}/${FORMAT_KEY}`);
      if (problem) return fail(problem, formatMismatchFix(manifestPath(local.stateDir, local.set), local.set));
    }
    return ok(`${FORMAT_KEY} present (layout version 1)${local ? ', the one this node uses' : ''}`);
  } catch (err) {
    return fail(`${store.location}: ${why(err)}`, storeFix(why(err)));
  }
}

/** The format the node cached in its manifest (opened read-only, safe beside a running cycle). */
function cachedFormat(stateDir: string, set: string): string | undefined {
  const file = manifestPath(stateDir, set);
  if (!existsSync(file)) return undefined;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const get = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
    return cachedFormatJson({ getMeta: (key) => get.get(key)?.value });
  } finally {
    db.close();
  }
}

function storeFix(msg: string): string {
  if (/InvalidAccessKeyId|SignatureDoesNotMatch|CredentialsProviderError|Could not load credentials/i.test(msg)) {
    return 'check the credentials fedsync runs with (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, /root/.aws/credentials, or the instance role)';
  }
  if (/AccessDenied|Forbidden|403/.test(msg)) return 'the IAM policy needs s3:ListBucket on the bucket and s3:GetObject, s3:PutObject, s3:DeleteObject on the prefix';
  if (/NoSuchBucket/.test(msg)) return 'create the bucket, or fix the bucket name in [store] url';
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|timed out|socket/i.test(msg)) return 'check [store] endpoint and region, DNS, and that the firewall lets this node reach the endpoint';
  if (/EACCES|EPERM|EROFS/.test(msg)) return 'the store directory must be writable by the user fedsync runs as';
  return 'see docs/troubleshooting.md for this message';
}

async function timeout<T>(fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS / 1000} s`)), PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([fn(), limit]);
  } finally {
    clearTimeout(timer);
  }
}
