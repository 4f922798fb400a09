import type { Manifest } from '../manifest/manifest.js';
import type { Store } from '../store/store.js';
import { FORMAT_KEY } from './layout.js';

/** `format.json`: written once by the first node, never changed. */
export interface Format {
  fedsync: 'format';
  version: 1;
  set: string;
  created: string;
  encryption: null;
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
  return f as Format;
}

/** Reads format.json, creating it when this is the first node of the set (`fedsync init`). */
export async function ensureFormat(store: Store, manifest: Manifest, set: string): Promise<{ format: Format; created: boolean }> {
  const body = await store.get(FORMAT_KEY);
  if (body) {
    const format = parse(body, `${store.location}/${FORMAT_KEY}`);
    manifest.setMeta(CACHE_KEY, JSON.stringify(format));
    return { format, created: false };
  }
  const format: Format = { fedsync: 'format', version: 1, set, created: new Date().toISOString(), encryption: null };
  await store.put(FORMAT_KEY, Buffer.from(JSON.stringify(format, null, 2) + '\n'));
  manifest.setMeta(CACHE_KEY, JSON.stringify(format));
  return { format, created: true };
}

/**
 * The set's format, from the manifest's copy when there is one (so a cycle costs no extra
 * request), else from the store. A store without one was never initialised.
 */
export async function loadFormat(store: Store, manifest: Manifest): Promise<Format> {
  const cached = manifest.getMeta(CACHE_KEY);
  if (cached) return parse(Buffer.from(cached), 'cached format');
  const body = await store.get(FORMAT_KEY);
  if (!body) throw new Error(`${store.location} has no ${FORMAT_KEY}: run \`fedsync init\` on one node first`);
  const format = parse(body, `${store.location}/${FORMAT_KEY}`);
  manifest.setMeta(CACHE_KEY, JSON.stringify(format));
  return format;
}
