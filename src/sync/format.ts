import type { StoreConfig } from '../config/types.js';
import { blobName, newEncryption, openEncryption, PassphraseError, readPassphrase } from '../crypto/keys.js';
import type { Manifest } from '../manifest/manifest.js';
import { EncryptedStore, type Store } from '../store/index.js';
import type { SetContext } from './context.js';
import { createFormat } from './format-create.js';
import { formatDigest, FormatMismatchError, parseFormat, sameFormat, type Format } from './format-file.js';
import { blobKey, FORMAT_KEY } from './layout.js';

export type { Format } from './format-file.js';
export { cachedFormatProblem, formatMismatchFix, parseFormat } from './format-file.js';

/** Manifest meta: the format this node uses, and the digest of the one it confirmed with the store. */
const CACHE_KEY = 'format';
const CONFIRMED_KEY = 'format_confirmed';

export function cachedFormatJson(manifest: Pick<Manifest, 'getMeta'>): string | undefined {
  return manifest.getMeta(CACHE_KEY);
}

function remember(manifest: Manifest, format: Format): void {
  manifest.transaction(() => {
    manifest.setMeta(CACHE_KEY, JSON.stringify(format));
    manifest.setMeta(CONFIRMED_KEY, formatDigest(format));
  });
}

/**
 * Checks the passphrase against the format before anything else is read or written: a
 * wrong one, a missing one for an encrypted store, or one configured for a plain store are
 * each one clear error. Returns the key material, or null for a plain store.
 */
export function checkPassphrase(format: Format, storeCfg: StoreConfig, where: string): ReturnType<typeof openEncryption> | null {
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
 * creates it race-free (format-create.ts, DESIGN rule 10). `commit` is called once the local
 * state may be created, and a new format is proposed only after it, so a refused init leaves
 * nothing behind locally or remotely. A node that already holds another format fails here.
 */
export async function initFormat(store: Store, storeCfg: StoreConfig, set: string, commit: () => Manifest): Promise<{ format: Format; created: boolean }> {
  const where = `${store.location}/${FORMAT_KEY}`;
  const body = await store.get(FORMAT_KEY);
  if (body) {
    const format = parseFormat(body, where);
    checkPassphrase(format, storeCfg, where);
    const manifest = commit();
    confirmMine(manifest, format, where, set);
    remember(manifest, format);
    return { format, created: false };
  }
  const manifest = commit();
  const cached = cachedFormatJson(manifest);
  let ours: Format;
  if (cached) {
    // The store lost its format.json (or this is another prefix): propose the one this node
    // holds, so that if it is chosen nothing changes here; if another is, this node says so.
    ours = parseFormat(Buffer.from(cached), 'the cached format');
    checkPassphrase(ours, storeCfg, 'the cached format');
  } else {
    const passphrase = readPassphrase(storeCfg.passphraseFile);
    ours = { fedsync: 'format', version: 1, set, created: new Date().toISOString(), encryption: passphrase ? newEncryption(passphrase).params : null };
  }
  const stored = parseFormat(await createFormat(store, manifest, Buffer.from(JSON.stringify(ours, null, 2) + '\n')), where);
  confirmMine(manifest, stored, where, set);
  checkPassphrase(stored, storeCfg, where);
  remember(manifest, stored);
  return { format: stored, created: sameFormat(stored, ours) };
}

function confirmMine(manifest: Manifest, stored: Format, where: string, set: string): void {
  const cached = cachedFormatJson(manifest);
  if (!cached) return;
  const mine = parseFormat(Buffer.from(cached), 'the cached format');
  if (!sameFormat(mine, stored)) throw new FormatMismatchError(mine, stored, where, manifest.file, set);
}

/** The set's format as a session opened it, and the store and blob names to use with it. */
export interface OpenedFormat {
  format: Format;
  /** The store given, or an encrypting wrapper around it. */
  store: Store;
  blobKey: (digest: string) => string;
}

/**
 * When a session is built: the set's format, from the manifest's copy when there is one (so
 * it costs no request), else from the store; with encryption, the passphrase is checked
 * (the deliberately slow key derivation runs here, once a session) and the store wrapped so
 * everything written is encrypted and everything read verified. A cached copy never
 * confirmed against the store (a manifest from before confirmation was kept, or one edited)
 * is compared with format.json once, before anything is written.
 */
export async function openFormat(store: Store, manifest: Manifest, storeCfg: StoreConfig, set: string): Promise<OpenedFormat> {
  const where = `${store.location}/${FORMAT_KEY}`;
  const cached = manifest.getMeta(CACHE_KEY);
  checkFormatPresent(store);
  let format: Format;
  if (cached) {
    format = parseFormat(Buffer.from(cached), 'cached format');
    if (manifest.getMeta(CONFIRMED_KEY) !== formatDigest(format)) {
      const body = await store.get(FORMAT_KEY);
      if (!body) throw new Error(`${where} is missing, so this node's format cannot be confirmed: check the store URL and prefix`);
      const stored = parseFormat(body, where);
      if (!sameFormat(format, stored)) throw new FormatMismatchError(format, stored, where, manifest.file, set);
      manifest.setMeta(CONFIRMED_KEY, formatDigest(format));
    }
  } else {
    const body = await store.get(FORMAT_KEY);
    if (!body) throw new Error(`${store.location} has no ${FORMAT_KEY}: run \`fedsync init\` on one node first`);
    format = parseFormat(body, where);
  }
  const keys = checkPassphrase(format, storeCfg, where);
  if (!cached) remember(manifest, format);
  if (!keys) return { format, store, blobKey };
  return { format, store: new EncryptedStore(store, keys), blobKey: (d) => blobName(keys, d) };
}

/**
 * A file:// store is typically a shared mount: unmounted, its directory would look like an
 * empty federation and the node would split off from the others without a word. Checked
 * before every cycle, where it costs no request.
 */
export function checkFormatPresent(store: Store): void {
  if (store.existsLocally(FORMAT_KEY) === false) {
    throw new Error(`${store.location}/${FORMAT_KEY} is missing: is the store's directory mounted? (run \`fedsync init\` for a new store)`);
  }
}

/**
 * A peer's object failed authentication or did not decode: either it was tampered with, or
 * this node holds another format than the store's. The second must stop the node (it would
 * diverge silently otherwise), so format.json is read and compared, at most once a cycle and
 * only after such a failure: an idle cycle never pays for it.
 */
export function checkFormatInForce(ctx: SetContext): Promise<void> {
  let check = checked.get(ctx.stats);
  if (!check) {
    check = (async () => {
      const cached = ctx.manifest.getMeta(CACHE_KEY);
      const body = await ctx.store.get(FORMAT_KEY);
      if (!cached || !body) return;
      const where = `${ctx.store.location}/${FORMAT_KEY}`;
      const mine = parseFormat(Buffer.from(cached), 'cached format');
      const stored = parseFormat(body, where);
      if (!sameFormat(mine, stored)) throw new FormatMismatchError(mine, stored, where, ctx.manifest.file, ctx.set.name);
    })();
    checked.set(ctx.stats, check);
  }
  return check;
}
const checked = new WeakMap<object, Promise<void>>();
