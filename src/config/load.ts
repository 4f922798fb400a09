/**
 * Reading and validating the TOML configuration.
 *
 * Each table is described by a small schema: for every property of the resulting type, the
 * TOML key (snake_case of the property unless given), a default written as it would be in
 * TOML (so it goes through the same check as a configured value), and a check that turns the
 * raw TOML value into the typed one or throws a `Problem`. Every problem ends up as one
 * `ConfigError` whose message names the file and the key path (`sync[0].delay`; arrays of
 * tables are counted from 0).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, normalize, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ignore from 'ignore';
import { parse, TomlError } from 'smol-toml';
import { DURATION_HINT, parseDuration } from './duration.js';
import type { Adopt, Config, LogLevel, MaxDelete, Mode, Role, SetConfig, StoreConfig } from './types.js';
import { ConfigError } from './types.js';

export const DEFAULT_CONFIG_PATH = '/etc/fedsync/fedsync.toml';
export const CONFIG_ENV = 'FEDSYNC_CONFIG';

/** The config file to read: `-c` (made absolute), else `$FEDSYNC_CONFIG`, else the default. */
export function resolveConfigPath(path?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = path || env[CONFIG_ENV] || DEFAULT_CONFIG_PATH;
  return resolve(chosen);
}

/** Reads and validates the config file chosen by {@link resolveConfigPath}. */
export function loadConfig(path?: string): Config {
  const file = resolveConfigPath(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') {
      throw new ConfigError(
        `${file}: config file does not exist; create it first (every command, fedsync init ` +
          `included, needs one: see "Configuration" in README.md for an example), or name another ` +
          `with -c FILE or $${CONFIG_ENV}`,
        file,
      );
    }
    throw new ConfigError(`${file}: cannot read config file: ${err.message}`, file);
  }
  return parseConfig(text, file);
}

/** Validates the TOML `text` of the config file `file` (used in messages and `Config.file`). */
export function parseConfig(text: string, file: string): Config {
  let raw: Record<string, unknown>;
  try {
    raw = parse(text, { unsafeKeyBehaviour: 'throw' });
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const what = e.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '');
    throw new ConfigError(`${file}:${e.line}:${e.column}: TOML syntax error: ${what}`, file);
  }
  try {
    const top = readTable(raw, TOP, '');
    const config: Config = { file, ...top };
    checkPaths(config);
    return config;
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    const where = e.key && !e.inMessage ? `${e.key}: ` : '';
    throw new ConfigError(`${file}: ${where}${e.message}`, file, e.key);
  }
}

// ---------------------------------------------------------------------------------------------
// Schema machinery

/** A validation failure; `key` is filled in by the table that owns the value. */
class Problem extends Error {
  constructor(
    message: string,
    public key?: string,
    /** The message already names the key (unknown keys). */
    public inMessage = false,
  ) {
    super(message);
  }
}
const bad = (message: string): never => {
  throw new Problem(message);
};

type Check<T> = (value: unknown, key: string) => T;
interface Field<T> {
  /** The TOML key; defaults to the snake_case of the property. */
  key?: string;
  check: Check<T>;
  /** Raw TOML default, checked like a configured value. No default: optional (or required). */
  def?: unknown | (() => unknown);
  /** The key must be present; the text is a hint for the message. */
  required?: string;
}
type Schema<T> = { [K in keyof T]-?: Field<T[K]> };

const snake = (prop: string) => prop.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const tomlKeys = (schema: Schema<object>) =>
  Object.entries(schema as Record<string, Field<unknown>>).map(([prop, f]) => f.key ?? snake(prop));

function readTable<T extends object>(raw: unknown, schema: Schema<T>, path: string): T {
  const at = (key: string) => (path ? `${path}.${key}` : key);
  if (!isTable(raw)) bad(`expected a table, got ${describe(raw)}`);
  const table = raw as Record<string, unknown>;
  const known = tomlKeys(schema as Schema<object>);
  for (const key of Object.keys(table)) {
    if (!known.includes(key)) throw new Problem(unknownKey(key, at(key), known), at(key), true);
  }
  const out: Record<string, unknown> = {};
  for (const [prop, field] of Object.entries(schema as Record<string, Field<unknown>>)) {
    const key = field.key ?? snake(prop);
    let value = table[key];
    if (value === undefined) {
      if (field.required !== undefined) throw new Problem(`required key is missing${field.required}`, at(key));
      if (field.def === undefined) continue;
      value = typeof field.def === 'function' ? (field.def as () => unknown)() : field.def;
    }
    try {
      out[prop] = field.check(value, at(key));
    } catch (e) {
      if (e instanceof Problem && e.key === undefined) e.key = at(key);
      throw e;
    }
  }
  return out as T;
}

function unknownKey(key: string, full: string, known: string[]): string {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = distance(norm(key), norm(k));
    if (d < bestDist) [best, bestDist] = [k, d];
  }
  let hint = '';
  if (best !== undefined && bestDist <= Math.min(2, Math.floor(norm(key).length / 3))) {
    hint = ` (did you mean ${JSON.stringify(best)}?)`;
  } else {
    // A key in the wrong table, most often a top-level key written after a [table] header.
    const home = Object.entries(HOMES).find(([, keys]) => keys.includes(key))?.[0];
    if (home !== undefined) hint = ` (${key} belongs ${home})`;
  }
  return `unknown key ${JSON.stringify(full)}${hint}`;
}

/** Optimal string alignment distance (Levenshtein plus transpositions). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

const isTable = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function describe(v: unknown): string {
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return `${Number.isInteger(v) ? 'integer' : 'float'} ${v}`;
  if (typeof v === 'boolean') return `boolean ${v}`;
  if (v instanceof Date) return 'date';
  return Array.isArray(v) ? 'array' : 'table';
}

// ---------------------------------------------------------------------------------------------
// Checks

const str = (v: unknown): string => (typeof v === 'string' ? v : bad(`expected a string, got ${describe(v)}`));
const bool = (v: unknown): boolean =>
  typeof v === 'boolean' ? v : bad(`expected true or false, got ${describe(v)}`);
const nonEmpty = (v: unknown): string => str(v).trim() || bad('must not be empty');

const oneOf =
  <T extends string>(...values: T[]) =>
  (v: unknown): T => {
    const s = str(v);
    return values.includes(s as T)
      ? (s as T)
      : bad(`${JSON.stringify(s)} is not one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
  };

const matching =
  (re: RegExp, what: string) =>
  (v: unknown): string => {
    const s = str(v);
    return re.test(s) ? s : bad(`${JSON.stringify(s)} is not ${what}`);
  };

/** An absolute path, normalised, without a trailing slash. */
const absPath = (v: unknown): string => {
  const s = str(v);
  if (!isAbsolute(s)) bad(`${JSON.stringify(s)} is not an absolute path`);
  if (s.includes('\0')) bad('path contains a NUL character');
  const n = normalize(s);
  return n.length > 1 && n.endsWith(sep) ? n.slice(0, -1) : n;
};

const setPath = (v: unknown): string => {
  const p = absPath(v);
  return p === '/' ? bad('"/" cannot be a sync set') : p;
};

const duration =
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

const maxDelete = (v: unknown): MaxDelete => {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return { kind: 'count', value: v };
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)%$/.exec(v) : null;
  if (m && Number(m[1]) <= 100) return { kind: 'fraction', value: Number(m[1]) / 100 };
  return bad(
    `${typeof v === 'string' ? JSON.stringify(v) : describe(v)} is neither a percentage ` +
      `("0%".."100%") nor a number of entries (an integer >= 0)`,
  );
};

const POSIX_NAME = '(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\\$?|\\d+)';
const owner = matching(
  new RegExp(`^${POSIX_NAME}(?::${POSIX_NAME})?$`),
  'an owner (use "user", "user:group" or "uid:gid")',
);

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const setName = matching(NAME_RE, 'a valid set name (letters, digits, ".", "_", "-"; at most 64, starting with a letter or digit)');
// The node name ends up in conflict file names, so it gets the same alphabet (hostname length).
const nodeName = matching(
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/,
  'a valid node name (letters, digits, ".", "_", "-"; set `node` if the hostname is not)',
);

/** gitignore patterns, one per array element; a pattern git would ignore or never match is an error. */
const patterns: Check<string[]> = (v, key) => {
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

const STORE_URL_HINT = '(use "s3://bucket/prefix" or "file:///absolute/dir")';

/** `s3://bucket[/prefix]` or `file:///absolute/dir`; returned without a trailing slash. */
const storeUrl = (v: unknown): string => {
  const s = str(v);
  const notUrl = (why: string): never => bad(`${JSON.stringify(s)} is not a store URL: ${why} ${STORE_URL_HINT}`);
  const s3 = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(s);
  if (s3) {
    const [, bucket = '', prefix = ''] = s3;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$/.test(bucket)) notUrl(`bad bucket name ${JSON.stringify(bucket)}`);
    const parts = prefix.replace(/\/$/, '').split('/').filter((x, _i, all) => x !== '' || all.length > 1);
    if (parts.some((x) => x === '' || x === '.' || x === '..' || /[\\\0-\x1f]/.test(x))) notUrl('bad prefix');
    return `s3://${[bucket, ...parts].join('/')}`;
  }
  if (s.startsWith('file:')) {
    let dir: string;
    try {
      dir = fileURLToPath(s);
    } catch {
      return notUrl('a file URL needs three slashes and an absolute path');
    }
    if (!s.startsWith('file:///')) notUrl('a file URL needs three slashes and an absolute path');
    return pathToFileURL(absPath(dir)).href;
  }
  return notUrl('unknown scheme');
};

const httpUrl = (v: unknown): string => {
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

// ---------------------------------------------------------------------------------------------
// The schema

const STORE: Schema<StoreConfig> = {
  url: { check: storeUrl, required: ` ${STORE_URL_HINT}` },
  endpoint: { check: httpUrl },
  region: { check: nonEmpty },
  forcePathStyle: { check: bool },
  passphraseFile: { check: absPath },
};

const SET: Schema<SetConfig> = {
  name: { check: setName, required: '' },
  path: { check: setPath, required: '' },
  mode: { check: oneOf<Mode>('heavyweight', 'lightweight'), def: 'heavyweight' },
  exclude: { check: patterns, def: () => [] },
  role: { check: oneOf<Role>('both', 'publish', 'subscribe'), def: 'both' },
  delay: { check: duration(false), def: '1s' },
  poll: { check: duration(true), def: '5s' },
  rescan: { check: duration(true), def: '10m' },
  // No fixed default: see withModeDefaults.
  settle: { check: duration(false) },
  maxDelete: { check: maxDelete, def: '50%' },
  owner: { check: owner },
  history: { check: duration(true), def: '30d' },
  interval: { check: duration(true), def: '60s' },
  heartbeat: { check: duration(true), def: '10m' },
  nodeTimeout: { check: duration(true), def: '7d' },
  snapshotEvery: { check: duration(true), def: '1h' },
  gcGrace: { check: duration(true), def: '24h' },
  adopt: { check: oneOf<Adopt>('keep-both', 'remote', 'local'), def: 'keep-both' },
  allowExternalSymlinks: { check: bool, def: false },
};

const sets: Check<SetConfig[]> = (v, key) => {
  if (!Array.isArray(v) || !v.every(isTable)) {
    bad(`expected [[${key}]] tables (an array of tables), got ${isTable(v) ? `a single [${key}] table` : describe(v)}`);
  }
  const list = v as unknown[];
  if (list.length === 0) bad(`at least one [[${key}]] table is required`);
  return list.map((t, i) => withModeDefaults(readTable(t, SET, `${key}[${i}]`)));
};

/**
 * `settle` defaults by mode. A heavyweight scan knows nothing of writes in progress but a
 * file's change time, so a file changed in the last 2 s waits for the next cycle. A lightweight
 * daemon hears every write: a path quiet for `delay` is not being written, so waiting longer
 * would only slow propagation down.
 */
function withModeDefaults(s: SetConfig): SetConfig {
  const settle = (s.settle as number | undefined) ?? (s.mode === 'lightweight' ? s.delay : 2_000);
  return { ...s, settle };
}

const TOP: Schema<Omit<Config, 'file'>> = {
  node: { check: nodeName, def: () => hostname() },
  stateDir: { check: absPath, def: '/var/lib/fedsync' },
  logFile: { check: absPath },
  logLevel: {
    check: oneOf<LogLevel>('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'),
    def: 'info',
  },
  store: { check: (v, key) => readTable(v, STORE, key), required: ' (add a [store] table with url = "s3://bucket/prefix")' },
  sets: { key: 'sync', check: sets, required: ' (add one [[sync]] table per directory, with name and path)' },
};

/** For "x belongs in ..." hints on keys written in the wrong table. */
const HOMES: Record<string, string[]> = {
  'at the top level, before the first [table] header': tomlKeys(TOP as Schema<object>),
  'in the [store] table': tomlKeys(STORE as Schema<object>),
  'in a [[sync]] table': tomlKeys(SET as Schema<object>),
};

// ---------------------------------------------------------------------------------------------
// Cross-key checks

const inside = (child: string, parent: string) =>
  child === parent || child.startsWith(parent === '/' ? '/' : parent + '/');

function checkPaths(c: Config): void {
  const names = new Map<string, number>();
  c.sets.forEach((s, i) => {
    const prev = names.get(s.name);
    if (prev !== undefined) {
      throw new Problem(`${JSON.stringify(s.name)} is already the name of sync[${prev}]`, `sync[${i}].name`);
    }
    names.set(s.name, i);
  });
  // Places fedsync writes to or reads secrets from: none may be in a synchronised tree or hold one.
  const own: [string, string | undefined][] = [
    ['state_dir', c.stateDir],
    ['log_file', c.logFile],
    ['store.passphrase_file', c.store.passphraseFile],
    ['store.url', c.store.url.startsWith('file:') ? fileURLToPath(c.store.url) : undefined],
  ];
  c.sets.forEach((s, i) => {
    const key = `sync[${i}].path`;
    for (let j = 0; j < i; j++) {
      const o = c.sets[j]!.path;
      if (inside(s.path, o) || inside(o, s.path)) {
        const rel = s.path === o ? 'is the same as' : inside(s.path, o) ? 'is inside' : 'contains';
        throw new Problem(`${JSON.stringify(s.path)} ${rel} sync[${j}].path ${JSON.stringify(o)}`, key);
      }
    }
    for (const [what, p] of own) {
      if (p === undefined) continue;
      if (inside(s.path, p)) throw new Problem(`${JSON.stringify(s.path)} is inside ${what} ${JSON.stringify(p)}`, key);
      if (inside(p, s.path)) {
        throw new Problem(`${JSON.stringify(p)} is inside sync[${i}].path ${JSON.stringify(s.path)}`, what);
      }
    }
  });
}
