import { createHmac, hkdfSync, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/** What format.json says about encryption: enough to derive the keys and check them. */
export interface EncryptionParams {
  kdf: 'scrypt';
  n: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
  /** base64 HMAC proving a derived key right before anything else is read or written. */
  check: string;
  cipher: 'aes-256-gcm';
  chunk: number;
  names: 'hmac-sha256';
}

/** Separate keys per purpose (HKDF from the scrypt master key), so no key does two jobs. */
export interface Keys {
  /** Blob bodies. */
  contents: Buffer;
  /** Blob names: HMAC of the content digest. */
  names: Buffer;
  /** Heads, journal segments, snapshots, bundles. */
  meta: Buffer;
}

export const CHUNK = 64 * 1024;
const SCRYPT = { n: 2 ** 15, r: 8, p: 1 };
const CHECK_TEXT = 'fedsync key check v1';

export class PassphraseError extends Error {
  override name = 'PassphraseError';
}

function derive(passphrase: string, params: Pick<EncryptionParams, 'n' | 'r' | 'p' | 'salt'>): { keys: Keys; check: string } {
  const master = scryptSync(passphrase.normalize('NFC'), Buffer.from(params.salt, 'base64'), 32, {
    N: params.n,
    r: params.r,
    p: params.p,
    maxmem: 256 * params.n * params.r + 1024 * 1024,
  });
  const sub = (info: string) => Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `fedsync ${info}`, 32));
  const check = createHmac('sha256', sub('check')).update(CHECK_TEXT).digest('base64');
  return { keys: { contents: sub('contents'), names: sub('names'), meta: sub('meta') }, check };
}

/** Parameters and keys for a new encrypted store. */
export function newEncryption(passphrase: string): { params: EncryptionParams; keys: Keys } {
  const base = { ...SCRYPT, salt: randomBytes(16).toString('base64') };
  const { keys, check } = derive(passphrase, base);
  return { params: { kdf: 'scrypt', ...base, check, cipher: 'aes-256-gcm', chunk: CHUNK, names: 'hmac-sha256' }, keys };
}

/** The keys of an existing store; a wrong passphrase fails here, before any other request. */
export function openEncryption(passphrase: string, params: EncryptionParams, where: string): Keys {
  if (params.kdf !== 'scrypt' || params.cipher !== 'aes-256-gcm' || params.chunk !== CHUNK || params.names !== 'hmac-sha256') {
    throw new PassphraseError(`${where} uses encryption this fedsync does not know; upgrade fedsync`);
  }
  if (!(params.n >= 2 ** 10 && params.n <= 2 ** 20 && params.r >= 1 && params.r <= 32 && params.p >= 1 && params.p <= 16)) {
    throw new PassphraseError(`${where} has implausible key derivation parameters; refusing to use them`);
  }
  const { keys, check } = derive(passphrase, params);
  const a = Buffer.from(check, 'base64');
  const b = Buffer.from(params.check, 'base64');
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new PassphraseError(`wrong passphrase for ${where}: it must be the same on every node (check passphrase_file or $FEDSYNC_PASSPHRASE); nothing was read or written`);
  }
  return keys;
}

/** The name a blob is stored under when encrypted: the store learns no digest. */
export function blobName(keys: Keys, digest: string): string {
  const h = createHmac('sha256', keys.names).update(digest).digest('hex');
  return `blobs/${h.slice(0, 2)}/${h}`;
}

/**
 * The passphrase from `passphrase_file` (which must not be readable by group or others) or
 * from $FEDSYNC_PASSPHRASE; undefined when neither is set.
 */
export function readPassphrase(file: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (file) {
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch {
      throw new PassphraseError(`passphrase_file ${file} does not exist or cannot be read`);
    }
    if (mode & 0o077) {
      throw new PassphraseError(`passphrase_file ${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run \`chmod 600 ${file}\``);
    }
    const text = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    if (!text) throw new PassphraseError(`passphrase_file ${file} is empty`);
    return text;
  }
  const fromEnv = env.FEDSYNC_PASSPHRASE;
  return fromEnv ? fromEnv : undefined;
}
