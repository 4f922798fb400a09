import type { StoreConfig } from '../../config/types.js';
import { PassphraseError } from '../../crypto/keys.js';
import { checkPassphrase, parseFormat } from '../../sync/format.js';
import { FORMAT_KEY } from '../../sync/layout.js';
import { fail, ok, skip, why, type CheckResult } from './check.js';

/**
 * The passphrase against format.json's key check, as every cycle checks it first: a wrong or
 * missing one (or one set for a plain store) fails every run, while the store itself answers
 * fine. `body` is format.json as the federation check read it (null: not there).
 */
export function passphrase(storeCfg: StoreConfig, location: string, body: Buffer | null): CheckResult {
  if (!body) return skip(`no ${FORMAT_KEY} to check a passphrase against (see the federation check)`);
  const where = `${location}/${FORMAT_KEY}`;
  let format;
  try {
    format = parseFormat(body, where);
  } catch (err) {
    return skip(`${why(err)} (see the federation check)`);
  }
  try {
    checkPassphrase(format, storeCfg, where);
  } catch (err) {
    if (!(err instanceof PassphraseError)) throw err;
    const fix = format.encryption
      ? 'put the passphrase the other nodes of this federation use in passphrase_file (mode 0600), or in $FEDSYNC_PASSPHRASE'
      : 'remove passphrase_file (and $FEDSYNC_PASSPHRASE): this store is not encrypted';
    return fail(why(err), fix);
  }
  return ok(format.encryption ? `the passphrase opens ${FORMAT_KEY}'s key check` : 'the store is not encrypted, and no passphrase is set');
}
