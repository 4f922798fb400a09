import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { StoreConfig } from '../config/types.js';
import { FileStore } from '../store/file/file.js';
import { blobName, newEncryption, openEncryption, PassphraseError, readPassphrase, type EncryptionParams } from '../crypto/keys.js';
import type { Manifest } from '../manifest/manifest.js';
import { EncryptedStore } from '../store/encrypted/encrypted.js';
import type { Store } from '../store/store.js';
import type { SetContext } from './context.js';
import { FORMAT_KEY } from './layout.js';

/** `format.json`: written once by the first node, never changed. */
export interface Format {
  fedsync: 'format';
  version: 1;
  set: string;
  created: string;
  encryption: EncryptionParams | null;
}

const CACHE_KEY = 'format';

function parse(body: Buffer, where: string): Format {
  let f: Partial<Format>;
  try {
    f = JSON.parse(body.toString('utf8')) as Partial<Format>;
  } catch {
    throw new Error(`${where} is not valid JSON`);
  }
  if (f.fedsync !== 'format') throw new Error(`${where} is not a fedsync format file`);
  if (f.version !== 1) throw new Error(`${where} has layout version ${String(f.version)}, which this fedsync does not know; upgrade fedsync`);
  return { ...f, encryption: f.encryption ?? null } as Format;
}

/**
 * Checks the passphrase against the format before anything else is read or written: a
 * wrong one, a missing one for an encrypted store, or one configured for a plain store are
 * each one clear error. Returns the key material, or null for a plain store.
 */
function checkPassphrase(format: Format, storeCfg: StoreConfig, where: string): ReturnType<typeof openEncryption> | null {
  const passphrase = readPassphrase(storeCfg.passphraseFile);
  if (format.encryption) {
    if (!passphrase) throw new PassphraseError(`${where} is encrypted: set passphrase_file in [store] (or $FEDSYNC_PASSPHRASE) to the passphrase the other nodes use`);
    return openEncryption(passphrase, format.encryption, where);
  }
  if (passphrase) throw new PassphraseError(`a passphrase is configured but ${where} is not encrypted; remove passphrase_file, or use a new store prefix for an encrypted federation`);
  return null;
}

/**
 * `fedsync init`: reads the set's format.json (checking the passphrase against it) or
 * prepares a new one. `commit` is called once the local state may be created, and a new
 * format is written only after it, so a refused init leaves nothing behind locally or
 * remotely. Two first nodes racing both write; each then keeps what the store holds.
 */
export async function initFormat(store: Store, storeCfg: StoreConfig, set: string, commit: () => Manifest): Promise<{ format: Format; created: boolean }> {
  const where = `${store.location}/${FORMAT_KEY}`;
  const body = await store.get(FORMAT_KEY);
  if (body) {
    const format = parse(body, where);
    checkPassphrase(format, storeCfg, where);
    commit().setMeta(CACHE_KEY, JSON.stringify(format));
    return { format, created: false };
  }
  const passphrase = readPassphrase(storeCfg.passphraseFile);
  const ours: Format = { fedsync: 'format', version: 1, set, created: new Date().toISOString(), encryption: passphrase ? newEncryption(passphrase).params : null };
  const manifest = commit();
  await store.put(FORMAT_KEY, Buffer.from(JSON.stringify(ours, null, 2) + '\n'));
  const stored = parse((await store.get(FORMAT_KEY)) ?? Buffer.from(JSON.stringify(ours)), where);
  checkPassphrase(stored, storeCfg, where);
  manifest.setMeta(CACHE_KEY, JSON.stringify(stored));
  return { format: stored, created: stored.created === ours.created };
}

/**
 * Before a cycle: the set's format, from the manifest's copy when there is one (so a cycle
 * costs no extra request), else from the store; with encryption, the passphrase is checked
 * and the store wrapped so everything written is encrypted and everything read verified.
 */
export async function openFormat(ctx: SetContext, storeCfg: StoreConfig): Promise<Format> {
  const where = `${ctx.store.location}/${FORMAT_KEY}`;
  const cached = ctx.manifest.getMeta(CACHE_KEY);
  // A daemon's session keeps its keys: the (deliberately slow) derivation runs once.
  if (cached && ctx.store instanceof EncryptedStore) return parse(Buffer.from(cached), 'cached format');
  let format: Format;
  // A file:// store is typically a shared mount: unmounted, its directory would look like an
  // empty federation and the node would split off from the others without a word.
  if (ctx.store instanceof FileStore && !existsSync(join(ctx.store.root, FORMAT_KEY))) {
    throw new Error(`${where} is missing: is the store's directory mounted? (run \`fedsync init\` for a new store)`);
  }
  if (cached) format = parse(Buffer.from(cached), 'cached format');
  else {
    const body = await ctx.store.get(FORMAT_KEY);
    if (!body) throw new Error(`${ctx.store.location} has no ${FORMAT_KEY}: run \`fedsync init\` on one node first`);
    format = parse(body, where);
  }
  const keys = checkPassphrase(format, storeCfg, where);
  if (!cached) ctx.manifest.setMeta(CACHE_KEY, JSON.stringify(format));
  if (keys && !(ctx.store instanceof EncryptedStore)) {
    ctx.store = new EncryptedStore(ctx.store, keys);
    ctx.blobKey = (d) => blobName(keys, d);
  }
  return format;
}
