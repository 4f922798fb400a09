/** The configuration's tables (top level, [store], [[sync]]) and the checks across keys. */
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { absPath, bool, duration, httpUrl, maxDelete, nodeName, nonEmpty, oneOf, owner, patterns, setName, setPath, STORE_URL_HINT, storeUrl } from './checks.js';
import { bad, isTable, Problem, readTable, tomlKeys, describe, type Check, type Homes, type Schema } from './table.js';
import type { Adopt, Config, LogLevel, Mode, Role, SetConfig, StoreConfig } from './types.js';

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
  onApply: { check: nonEmpty },
  onApplyTimeout: { check: duration(true), def: '60s' },
};

const sets: Check<SetConfig[]> = (v, key) => {
  if (!Array.isArray(v) || !v.every(isTable)) {
    bad(`expected [[${key}]] tables (an array of tables), got ${isTable(v) ? `a single [${key}] table` : describe(v)}`);
  }
  const list = v as unknown[];
  if (list.length === 0) bad(`at least one [[${key}]] table is required`);
  return list.map((t, i) => withModeDefaults(readTable(t, SET, `${key}[${i}]`, HOMES)));
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

export const TOP: Schema<Omit<Config, 'file'>> = {
  node: { check: nodeName, def: () => hostname() },
  stateDir: { check: absPath, def: '/var/lib/fedsync' },
  logFile: { check: absPath },
  logLevel: {
    check: oneOf<LogLevel>('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'),
    def: 'info',
  },
  store: { check: (v, key) => readTable(v, STORE, key, HOMES), required: ' (add a [store] table with url = "s3://bucket/prefix")' },
  sets: { key: 'sync', check: sets, required: ' (add one [[sync]] table per directory, with name and path)' },
};

/** For "x belongs in ..." hints on keys written in the wrong table. */
export const HOMES: Homes = {
  'at the top level, before the first [table] header': tomlKeys(TOP as Schema<object>),
  'in the [store] table': tomlKeys(STORE as Schema<object>),
  'in a [[sync]] table': tomlKeys(SET as Schema<object>),
};

const inside = (child: string, parent: string) =>
  child === parent || child.startsWith(parent === '/' ? '/' : parent + '/');

/** Checks that span keys: unique set names, and no set path overlapping another or fedsync's own files. */
export function checkPaths(c: Config): void {
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
