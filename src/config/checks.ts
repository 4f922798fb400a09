/** The checks of single configuration values: each turns a raw TOML value into a typed one. */
import { isAbsolute, normalize, sep } from 'node:path';
import ignore from 'ignore';
import { formatStoreUrl, parseStoreUrl, StoreUrlError } from '../store/url.js';
import { DURATION_HINT, parseDuration } from './duration.js';
import { bad, describe, Problem, type Check } from './table.js';
import type { MaxDelete } from './types.js';

export const str = (v: unknown): string => (typeof v === 'string' ? v : bad(`expected a string, got ${describe(v)}`));
export const bool = (v: unknown): boolean =>
  typeof v === 'boolean' ? v : bad(`expected true or false, got ${describe(v)}`);
export const nonEmpty = (v: unknown): string => str(v).trim() || bad('must not be empty');

export const oneOf =
  <T extends string>(...values: T[]) =>
  (v: unknown): T => {
    const s = str(v);
    return values.includes(s as T)
      ? (s as T)
      : bad(`${JSON.stringify(s)} is not one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
  };

export const matching =
  (re: RegExp, what: string) =>
  (v: unknown): string => {
    const s = str(v);
    return re.test(s) ? s : bad(`${JSON.stringify(s)} is not ${what}`);
  };

/** An absolute path, normalised, without a trailing slash. */
export const absPath = (v: unknown): string => {
  const s = str(v);
  if (!isAbsolute(s)) bad(`${JSON.stringify(s)} is not an absolute path`);
  if (s.includes('\0')) bad('path contains a NUL character');
  const n = normalize(s);
  return n.length > 1 && n.endsWith(sep) ? n.slice(0, -1) : n;
};

export const setPath = (v: unknown): string => {
  const p = absPath(v);
  return p === '/' ? bad('"/" cannot be a sync set') : p;
};

export const duration =
  (positive: boolean) =>
  (v: unknown): number => {
    if (typeof v !== 'string') bad(`${typeof v === 'number' ? v : describe(v)} is not a duration ${DURATION_HINT}`);
    let ms: number;
    try {
      ms = parseDuration(v as string);
    } catch (e) {
      return bad((e as Error).message);
    }
    return positive && ms === 0 ? bad('must be longer than 0') : ms;
  };

export const maxDelete = (v: unknown): MaxDelete => {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return { kind: 'count', value: v };
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)%$/.exec(v) : null;
  if (m && Number(m[1]) <= 100) return { kind: 'fraction', value: Number(m[1]) / 100 };
  return bad(
    `${typeof v === 'string' ? JSON.stringify(v) : describe(v)} is neither a percentage ` +
      `("0%".."100%") nor a number of entries (an integer >= 0)`,
  );
};

const POSIX_NAME = '(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\\$?|\\d+)';
export const owner = matching(
  new RegExp(`^${POSIX_NAME}(?::${POSIX_NAME})?$`),
  'an owner (use "user", "user:group" or "uid:gid")',
);

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const setName = matching(NAME_RE, 'a valid set name (letters, digits, ".", "_", "-"; at most 64, starting with a letter or digit)');
// The node name ends up in conflict file names, so it gets the same alphabet (hostname length).
export const nodeName = matching(
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/,
  'a valid node name (letters, digits, ".", "_", "-"; set `node` if the hostname is not)',
);

/** gitignore patterns, one per array element; a pattern git would ignore or never match is an error. */
export const patterns: Check<string[]> = (v, key) => {
  if (!Array.isArray(v)) bad(`expected an array of gitignore patterns, got ${describe(v)}`);
  return (v as unknown[]).map((p, i) => {
    try {
      return gitignorePattern(p);
    } catch (e) {
      if (e instanceof Problem) e.key = `${key}[${i}]`;
      throw e;
    }
  });
};

function gitignorePattern(v: unknown): string {
  const p = str(v);
  const problem =
    p.trim() === ''
      ? 'is empty'
      : /[\r\n\0]/.test(p)
        ? 'contains a line break or NUL (give one pattern per array element)'
        : p.startsWith('#')
          ? 'is a comment to git, so it matches nothing (write "\\#" for a literal #)'
          : /^!\s*$/.test(p)
            ? 'negates nothing'
            : /(^|[^\\])(\\\\)*\\$/.test(p)
              ? 'ends with a lone backslash'
              : unclosedBracket(p)
                ? 'has an unclosed "[", so it matches nothing'
                : undefined;
  if (problem) bad(`${JSON.stringify(p)} is not a valid gitignore pattern: it ${problem}`);
  try {
    ignore().add({ pattern: p }).ignores('probe/path'); // compiles the rule
  } catch (e) {
    bad(`${JSON.stringify(p)} is not a valid gitignore pattern: ${(e as Error).message}`);
  }
  return p;
}

/** True when a `[` opens a bracket expression that never closes (git's wildmatch then fails). */
function unclosedBracket(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '\\') i++;
    else if (p[i] === '[') {
      let j = i + 1;
      if (p[j] === '!' || p[j] === '^') j++;
      if (p[j] === ']') j++; // a leading ] is a member
      for (; j < p.length && p[j] !== ']'; j++) {
        if (p[j] === '\\') j++;
        else if (p[j] === '[' && p[j + 1] === ':') {
          const close = p.indexOf(':]', j + 2);
          if (close >= 0) j = close + 1;
        }
      }
      if (j >= p.length) return true;
      i = j;
    }
  }
  return false;
}

export const STORE_URL_HINT = '(use "s3://bucket/prefix" or "file:///absolute/dir")';

/** `s3://bucket[/prefix]` or `file:///absolute/dir`, parsed by the store's own rules; canonical form. */
export const storeUrl = (v: unknown): string => {
  const s = str(v);
  try {
    return formatStoreUrl(parseStoreUrl(s));
  } catch (e) {
    return bad(`${JSON.stringify(s)} is not a store URL: ${e instanceof StoreUrlError ? e.why : (e as Error).message} ${STORE_URL_HINT}`);
  }
};

export const httpUrl = (v: unknown): string => {
  const s = str(v);
  let u: URL | undefined;
  try {
    u = new URL(s);
  } catch {
    /* reported below */
  }
  return u && (u.protocol === 'http:' || u.protocol === 'https:') && u.host
    ? s
    : bad(`${JSON.stringify(s)} is not an http(s) URL`);
};
