import { randomBytes } from 'node:crypto';
import type { Manifest } from '../manifest/manifest.js';
import { PreconditionFailedError } from '../store/errors.js';
import type { Store } from '../store/store.js';
import { FORMAT_CANDIDATES_PREFIX } from './layout.js';

/** Manifest meta: `honoured` or `ignored`, what the store did with a create over an existing key. */
export const CONDITIONAL_META = 'conditional_writes';

/**
 * Whether the store refuses `If-None-Match: *` over an existing key. Some S3-compatible
 * servers (s3rver among them) write anyway, so this is asked of the store itself, once, with a
 * throwaway key written twice, and remembered in the manifest: never a request per cycle.
 * `recheck` asks again (creating a store's format: what was learnt may be of another store).
 */
export async function conditionalWrites(store: Store, manifest: Manifest, opts: { recheck?: boolean } = {}): Promise<boolean> {
  const known = manifest.getMeta(CONDITIONAL_META);
  if (!opts.recheck && (known === 'honoured' || known === 'ignored')) return known === 'honoured';
  const key = `${FORMAT_CANDIDATES_PREFIX}probe-${randomBytes(16).toString('hex')}`;
  const body = Buffer.from('conditional write probe\n');
  let honoured = false;
  // The key is new and random: a refusal, even of the first write (a retry meeting its own
  // first attempt), can only come from a store that checks the condition.
  for (let i = 0; i < 2 && !honoured; i++) {
    try {
      await store.put(key, body, { ifNoneMatch: true });
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      honoured = true;
    }
  }
  await store.delete([key]);
  manifest.setMeta(CONDITIONAL_META, honoured ? 'honoured' : 'ignored');
  return honoured;
}
