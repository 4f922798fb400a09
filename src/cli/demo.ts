import { createHash, randomBytes } from 'node:crypto';
import { excludeMatcher } from '../config/exclude.js';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, lstatSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { createLogger } from '../log/logger.js';
import { runCycle } from '../sync/cycle.js';
import { initSet } from '../sync/init.js';
import { print } from './common.js';

const NODES = ['alpha', 'beta', 'gamma'] as const;

/**
 * `fedsync demo`: three nodes, one file:// store, real cycles through the same code `run`
 * uses. Shows publishing, a concurrent edit ending in a conflict copy, a deletion, and the
 * three trees converging.
 */
export async function demoCommand(opts: { keep?: boolean }): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'fedsync-demo-'));
  const log = createLogger({ level: 'warn', pretty: true });
  const configs = new Map<string, Config>();
  print(`fedsync demo in ${dir}`);
  print(`three nodes share the store file://${dir}/store; each has its own webroot and state\n`);
  for (const name of NODES) {
    const root = join(dir, name, 'www');
    mkdirSync(root, { recursive: true });
    const file = join(dir, name, 'fedsync.toml');
    const text = `node = "${name}"
state_dir = "${join(dir, name, 'state')}"

[store]
url = "file://${join(dir, 'store')}"

[[sync]]
name = "webroot"
path = "${root}"
mode = "heavyweight"
settle = "0s"
exclude = ["*.tmp", "cache/"]
`;
    writeFileSync(file, text);
    configs.set(name, parseConfig(text, file));
    await initSet(configs.get(name)!, configs.get(name)!.sets[0]!, log);
  }
  const root = (n: string) => configs.get(n)!.sets[0]!.path;
  const cycle = async (...names: string[]) => {
    for (const n of names) {
      const c = configs.get(n)!;
      const r = await runCycle(c, c.sets[0]!, log);
      if (!r.ok) throw r.error!;
      const s = r.record!.stats;
      print(`  ${n.padEnd(6)} cycle: published ${s.published}, applied ${s.applied}, deleted ${s.deleted}, conflicts ${s.conflicts}, ${r.record!.requests.get + r.record!.requests.put + r.record!.requests.list} requests`);
    }
  };
  const everyone = async () => {
    await cycle(...NODES);
    await cycle(...NODES);
  };

  print('1. alpha gets an upload, a page and an empty directory; beta a symlink');
  mkdirSync(join(root('alpha'), 'wp-content/uploads/2026/11'), { recursive: true });
  writeFileSync(join(root('alpha'), 'wp-content/uploads/2026/11/photo.jpg'), randomBytes(200_000));
  writeFileSync(join(root('alpha'), 'index.html'), '<h1>Hello from alpha</h1>\n');
  mkdirSync(join(root('alpha'), 'wp-content/cache'), { recursive: true });
  writeFileSync(join(root('alpha'), 'wp-content/cache/page.html'), 'excluded: never synced\n');
  mkdirSync(join(root('alpha'), 'wp-content/languages'));
  symlinkSync('wp-content/uploads', join(root('beta'), 'uploads'));
  await everyone();

  print('\n2. beta and gamma edit index.html at the same time, before either syncs');
  writeFileSync(join(root('beta'), 'index.html'), '<h1>Edited on beta</h1>\n');
  await new Promise((r) => setTimeout(r, 5));
  writeFileSync(join(root('gamma'), 'index.html'), '<h1>Edited on gamma</h1>\n');
  await everyone();

  print('\n3. alpha deletes the photo; gamma adds a file with spaces and unicode in its name');
  unlinkSync(join(root('alpha'), 'wp-content/uploads/2026/11/photo.jpg'));
  writeFileSync(join(root('gamma'), 'wp-content/uploads/2026/11/café menu.pdf'), randomBytes(5000));
  await everyone();

  print('\n4. the three trees:');
  // What `exclude` keeps out (alpha's page cache) stays local: compare what is synchronised.
  const excluded = excludeMatcher(configs.get('alpha')!.sets[0]!.exclude);
  const trees = NODES.map((n) => listTree(root(n)).filter((l) => !excluded(l.split('  ')[0]!.split(' -> ')[0]!, false)));
  for (const line of trees[0]!) print(`  ${line}`);
  const same = trees.every((t) => JSON.stringify(t) === JSON.stringify(trees[0]));
  print(`\n${same ? 'converged: alpha, beta and gamma hold identical trees' : 'NOT converged: the trees differ'}`);
  const conflict = trees[0]!.find((l) => l.includes('sync-conflict'));
  print(`alpha's wp-content/cache/ matched exclude = ["*.tmp", "cache/"] and stayed on alpha`);
  if (conflict) print(`the losing edit of index.html was kept, not lost: ${conflict.split('  ')[0]}`);
  if (opts.keep) print(`\nkept ${dir}: try \`fedsync -c ${join(dir, 'alpha', 'fedsync.toml')} status\``);
  else rmSync(dir, { recursive: true, force: true });
  return same ? 0 : 1;
}

/** Every entry under a root (the .fedsync marker aside), with a short content hash. */
function listTree(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, rel)).sort()) {
    if (rel === '' && name === '.fedsync') continue;
    const p = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, p));
    if (st.isDirectory()) {
      out.push(`${p}/`);
      out.push(...listTree(root, p));
    } else if (st.isSymbolicLink()) out.push(`${p} -> ${readlinkSync(join(root, p))}`);
    else out.push(`${p}  ${st.size} B  sha256 ${createHash('sha256').update(readFileSync(join(root, p))).digest('hex').slice(0, 12)}`);
  }
  return out;
}
