// The import rules of the source tree: layers run one way (cli → ops → watch/sync → store,
// manifest, crypto, config, fsutil, log), modules import no cycle, and none grows past 400
// lines. Imports are read from the source text, so the rules hold for type imports too.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = join(ROOT, 'src');
const MAX_LINES = 400;

/** Layers that may not import from the ones listed. */
const FORBIDDEN: Record<string, string[]> = {
  sync: ['ops', 'cli', 'watch'],
  store: ['ops', 'cli', 'watch', 'sync'],
  manifest: ['ops', 'cli', 'watch', 'sync'],
  config: ['ops', 'cli', 'watch', 'sync'],
  crypto: ['ops', 'cli', 'watch', 'sync'],
  fsutil: ['ops', 'cli', 'watch', 'sync'],
  log: ['ops', 'cli', 'watch', 'sync'],
  model: ['ops', 'cli', 'watch', 'sync'],
  util: ['ops', 'cli', 'watch', 'sync'],
};

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(relative(SRC, p).split('\\').join('/'));
  }
  return out;
}

/** Static imports and re-exports (at the start of a line, so not in comments), side-effect and dynamic imports. */
const IMPORT = /^(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]/gm;

/** The src/ modules a module imports (relative specifiers only; packages are not layers). */
function importsOf(mod: string): string[] {
  const text = readFileSync(join(SRC, mod), 'utf8');
  const out = new Set<string>();
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (!spec.startsWith('.')) continue;
    const target = relative(SRC, resolve(SRC, dirname(mod), spec)).split('\\').join('/').replace(/\.js$/, '.ts');
    out.add(target);
  }
  return [...out];
}

const modules = walk(SRC);
const graph = new Map(modules.map((m) => [m, importsOf(m)]));
const layer = (mod: string) => (mod.includes('/') ? mod.slice(0, mod.indexOf('/')) : '');

test('every relative import names a module of src/', () => {
  const missing = [...graph].flatMap(([m, deps]) => deps.filter((d) => !graph.has(d)).map((d) => `${m} → ${d}`));
  assert.deepEqual(missing, []);
});

test('layers import downward only', () => {
  const wrong: string[] = [];
  for (const [m, deps] of graph) {
    const banned = FORBIDDEN[layer(m)] ?? [];
    for (const d of deps) if (banned.includes(layer(d))) wrong.push(`${m} imports ${d}`);
  }
  assert.deepEqual(wrong, [], 'imports against the layers');
});

test('no import cycle among src/ modules', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (m: string) => {
    state.set(m, 'open');
    path.push(m);
    for (const d of graph.get(m) ?? []) {
      if (state.get(d) === 'open') cycles.push([...path.slice(path.indexOf(d)), d].join(' → '));
      else if (!state.has(d) && graph.has(d)) visit(d);
    }
    path.pop();
    state.set(m, 'done');
  };
  for (const m of modules) if (!state.has(m)) visit(m);
  assert.deepEqual(cycles, [], 'import cycles');
});

test(`no module over ${MAX_LINES} lines`, () => {
  const long = modules
    .map((m) => ({ m, lines: readFileSync(join(SRC, m), 'utf8').split('\n').length - 1 }))
    .filter((x) => x.lines > MAX_LINES)
    .map((x) => `${x.m}: ${x.lines} lines`);
  assert.deepEqual(long, []);
});
