/**
 * The schema machinery of the configuration: each table is described by a schema giving, for
 * every property of the resulting type, the TOML key (snake_case of the property unless
 * given), a default written as it would be in TOML (so it goes through the same check as a
 * configured value), and a check that turns the raw TOML value into the typed one or throws
 * a `Problem`. The loader turns a Problem into one ConfigError naming the file and key path.
 */

/** For each table (as a phrase: "in the [store] table"), the keys that belong in it. */
export type Homes = Record<string, string[]>;

/** A validation failure; `key` is filled in by the table that owns the value. */
export class Problem extends Error {
  constructor(
    message: string,
    public key?: string,
    /** The message already names the key (unknown keys). */
    public inMessage = false,
  ) {
    super(message);
  }
}
export const bad = (message: string): never => {
  throw new Problem(message);
};

export type Check<T> = (value: unknown, key: string) => T;
export interface Field<T> {
  /** The TOML key; defaults to the snake_case of the property. */
  key?: string;
  check: Check<T>;
  /** Raw TOML default, checked like a configured value. No default: optional (or required). */
  def?: unknown | (() => unknown);
  /** The key must be present; the text is a hint for the message. */
  required?: string;
}
export type Schema<T> = { [K in keyof T]-?: Field<T[K]> };

const snake = (prop: string) => prop.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export const tomlKeys = (schema: Schema<object>) =>
  Object.entries(schema as Record<string, Field<unknown>>).map(([prop, f]) => f.key ?? snake(prop));

/**
 * Reads one table by its schema. `homes` names, for each table, the keys that belong there,
 * so a key written in the wrong table gets a hint saying where it goes.
 */
export function readTable<T extends object>(raw: unknown, schema: Schema<T>, path: string, homes: Homes = {}): T {
  const at = (key: string) => (path ? `${path}.${key}` : key);
  if (!isTable(raw)) bad(`expected a table, got ${describe(raw)}`);
  const table = raw as Record<string, unknown>;
  const known = tomlKeys(schema as Schema<object>);
  for (const key of Object.keys(table)) {
    if (!known.includes(key)) throw new Problem(unknownKey(key, at(key), known, homes), at(key), true);
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

function unknownKey(key: string, full: string, known: string[], homes: Homes): string {
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
    const home = Object.entries(homes).find(([, keys]) => keys.includes(key))?.[0];
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

export const isTable = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

export function describe(v: unknown): string {
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return `${Number.isInteger(v) ? 'integer' : 'float'} ${v}`;
  if (typeof v === 'boolean') return `boolean ${v}`;
  if (v instanceof Date) return 'date';
  return Array.isArray(v) ? 'array' : 'table';
}
