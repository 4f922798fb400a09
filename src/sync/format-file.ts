import { createHash } from 'node:crypto';
import type { EncryptionParams } from '../crypto/keys.js';

/** `format.json`: written once by the first node, never changed. */
export interface Format {
  fedsync: 'format';
  version: 1;
  set: string;
  created: string;
  encryption: EncryptionParams | null;
}

export function parseFormat(body: Buffer, where: string): Format {
  let f: Partial<Format>;
  try {
    f = JSON.parse(body.toString('utf8')) as Partial<Format>;
  } catch {
    throw new Error(`${where} is not valid JSON`);
  }
  if (!f || f.fedsync !== 'format') throw new Error(`${where} is not a fedsync format file`);
  if (f.version !== 1) throw new Error(`${where} has layout version ${String(f.version)}, which this fedsync does not know; upgrade fedsync`);
  return { ...f, encryption: f.encryption ?? null } as Format;
}

/** The format as canonical JSON (keys sorted at every level): equal formats, equal text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function sameFormat(a: Format, b: Format): boolean {
  return canonical(a) === canonical(b);
}

export const formatDigest = (f: Format) => createHash('sha256').update(canonical(f)).digest('hex');
const describe = (f: Format) => `created ${f.created}, ${f.encryption ? `encrypted, salt ${f.encryption.salt.slice(0, 8)}…` : 'not encrypted'}`;

/**
 * This node holds a format that is not the one in force: whatever it wrote with it, no peer
 * can read, and it cannot read theirs. Rejoining under a new id is the way back.
 */
export class FormatMismatchError extends Error {
  override name = 'FormatMismatchError';
  constructor(mine: Format, stored: Format, where: string, manifestFile: string, set: string) {
    super(`${formatMismatch(mine, stored, where)}; ${formatMismatchFix(manifestFile, set)}`);
  }
}

export function formatMismatch(mine: Format, stored: Format, where: string): string {
  return `this node's format (${describe(mine)}) is not the one in force at ${where} (${describe(stored)}): it must not sync with another format`;
}

export function formatMismatchFix(manifestFile: string, set: string): string {
  return `stop fedsync for set "${set}", move ${manifestFile} aside and run \`fedsync init --set ${set}\` (the node rejoins under the store's format with a new id; its files are kept and reconciled)`;
}

/** For `doctor`: what is wrong with a node's cached format (manifest meta) against the store's body, or null. */
export function cachedFormatProblem(cached: string | undefined, storeBody: Buffer, where: string): string | null {
  if (!cached) return null;
  const stored = parseFormat(storeBody, where);
  const mine = parseFormat(Buffer.from(cached), 'the cached format');
  return sameFormat(mine, stored) ? null : formatMismatch(mine, stored, where);
}
