#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node's test runner (TypeScript through tsx).
// `--only unit` skips the end-to-end tests (test/e2e, test/soak); `--only e2e` runs only
// them; other arguments are substrings that select test files.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const args = process.argv.slice(2);
let only = null;
const filters = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') only = args[++i];
  else filters.push(args[i]);
}

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

let files = [...walk(join(root, 'src'), []), ...walk(join(root, 'test'), [])].sort();
// The soak runs the built binary on a real store like the end-to-end tests: it is one of them.
const isE2e = (f) => f.startsWith('test/e2e/') || f.startsWith('test/soak/');
if (only === 'unit') files = files.filter((f) => !isE2e(f));
if (only === 'e2e') files = files.filter(isE2e);
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files selected');
  process.exit(1);
}
// Two files at a time: end-to-end tests spend most of their time waiting on child processes
// and the store, so a second file keeps the machine busy (FEDSYNC_TEST_CONCURRENCY overrides).
const concurrency = process.env.FEDSYNC_TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
