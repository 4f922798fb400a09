// What must hold after a soak trial's quiescence. Each failure is collected as a violation
// (one line or a short block) rather than thrown, so a trial reports all of them at once.
//
// 1. Every node's tree is identical (content, mode, mtime; directories by mode). Where nodes
//    exclude paths, each node's tree equals the federation's (a node that excludes nothing)
//    outside what that node excludes: a path missing from a node that does not exclude it
//    is a divergence, whatever the others exclude.
// 2. Every file holds a content the test wrote (no partial download, no temp file) under a
//    name the test or fedsync's conflict copies make; nothing but files and directories.
// 3. Every content the test wrote and never destroyed itself is in the tree, at some path or in
//    a `*.sync-conflict-*` copy. One it destroyed may be gone, but if a kept journal segment
//    still names it, `fedsync history` must list it, and one such version (chosen by the seed)
//    must come back byte for byte with `fedsync restore --version ID --to DIR`.
// 4. No journal publishes a (path, vv) twice, and each is contiguous up to its head's seq
//    (a pruned prefix allowed): every journal in the store, also of ids no node runs as any
//    more. Not checked in encrypted trials (the test cannot read sealed segments).
// 5. Nothing outside the roots changed: each node's directory holds only its root, state dir,
//    log and config, and a sentinel file beside them is intact.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertJournalClean, diffTrees, sha256, snapshotTree, type Federation, type FedNode, type Rng, type Tree } from '../e2e/harness.js';
import type { Excluded } from './situations.js';
import type { World } from './world.js';

const NODE_DIR = new Set(['root', 'state', 'fedsync.log', 'fedsync.toml', 'passphrase']);

export interface OracleOptions {
  /** What a node excludes, or null. */
  excluded: (n: FedNode) => Excluded | null;
  /** The store is encrypted: its segments cannot be read by the test. */
  encrypted: boolean;
}

function outside(tree: Tree, ex: Excluded | null): Tree {
  return ex ? new Map([...tree].filter(([p, e]) => !ex(p, e.kind === 'dir'))) : tree;
}

/**
 * Where the nodes' trees differ: each node against the first that excludes nothing, both
 * outside what that node excludes. One message per differing node.
 */
export function divergences(fed: Federation, excluded: OracleOptions['excluded'], trees = fed.nodes.map((n) => ({ node: n, tree: n.snapshot() }))): string[] {
  const ref = trees.find((t) => !excluded(t.node)) ?? trees[0]!;
  const out: string[] = [];
  for (const t of trees) {
    if (t === ref) continue;
    const ex = excluded(t.node);
    const d = diffTrees(outside(ref.tree, ex), outside(t.tree, ex), ref.node.name, t.node.name);
    if (d.length) out.push(`trees differ, ${ref.node.name} vs ${t.node.name}${ex ? ` (outside what ${t.node.name} excludes)` : ''}, ${d.length} path(s):\n    ${d.slice(0, 10).join('\n    ')}`);
  }
  return out;
}

interface Version {
  id: string;
  path: string;
  kind: string;
  digest?: string;
}

/** Something beside the roots that no fedsync command may touch; returns its content. */
export function plantSentinel(fed: Federation, content: string): string {
  mkdirSync(join(fed.dir, 'outside'));
  writeFileSync(join(fed.dir, 'outside', 'sentinel'), content);
  return content;
}

export async function checkOracle(fed: Federation, w: World, rng: Rng, sentinel: string, violations: string[], opts: OracleOptions): Promise<void> {
  const v = (s: string) => violations.push(s);
  const trees = fed.nodes.map((n) => ({ node: n, name: n.name, tree: n.snapshot() }));

  // 1. identical trees (outside what each excludes)
  for (const d of divergences(fed, opts.excluded, trees)) v(d);

  // 2. only contents the test wrote, under names it or a conflict copy makes
  const present = new Set<string>();
  for (const { name, tree } of trees) {
    for (const [p, e] of tree) {
      if (e.kind === 'file') {
        present.add(e.sha256!);
        if (!w.written.has(e.sha256!)) v(`${name}: ${JSON.stringify(p)} holds content the test never wrote (${e.size} B): partial or temp file`);
      } else if (e.kind !== 'dir') v(`${name}: ${JSON.stringify(p)} is a ${e.kind}`);
      if (p.split('/').some((seg) => seg.startsWith('.'))) v(`${name}: a hidden (temp-looking) name in the tree: ${JSON.stringify(p)}`);
    }
  }

  // 4. journals, read straight from the bucket
  const published = new Set<string>();
  const names = new Map(fed.nodes.map((n) => [n.id, n.name]));
  const writers = opts.encrypted ? [] : (await fed.listObjects('heads/')).map((o) => o.key.slice('heads/'.length).replace(/\.json$/, ''));
  for (const id of writers) {
    // Also the ids no node runs as any more (a node that took a new id keeps its old journal).
    const writer = { id, name: names.get(id) ?? `(id ${id})` } as FedNode;
    try {
      await assertJournalClean(fed, writer, { pruned: true });
    } catch (err) {
      v((err as Error).message);
    }
    for (const seg of await fed.journal(id)) for (const r of seg.records) if (r.digest) published.add(r.digest);
  }
  if (opts.encrypted) w.note('oracle: encrypted store, journals not read by the test');

  // 3. nothing lost; what is gone from the tree but still published is restorable
  const first = fed.nodes[0]!;
  const h = await first.fedsync(['history', '--set', fed.setName, first.root, '--json']);
  let versions: Version[] = [];
  if (h.code !== 0) v(`fedsync history failed: exit ${h.code}: ${h.stderr.trim()}`);
  else versions = JSON.parse(h.stdout) as Version[];
  const listed = new Map(versions.filter((x) => x.digest).map((x) => [x.digest!, x]));
  const restorable: Version[] = [];
  for (const [digest, wr] of w.written) {
    if (present.has(digest)) continue;
    const what = `${digest.slice(0, 10)} (op ${wr.op} on ${wr.node} at ${JSON.stringify(wr.path)}, ${wr.size} B)`;
    if (!w.destroyed.has(digest)) v(`lost: ${what} is in no tree, and the test never destroyed it`);
    else if (listed.has(digest)) restorable.push(listed.get(digest)!);
    else if (published.has(digest)) v(`${what} is named by a kept journal segment but \`fedsync history\` does not list it`);
  }
  // One restore process per trial is most of the oracle's cost: every other trial.
  w.note(`oracle: ${present.size} contents in the trees, ${w.written.size} written, ${restorable.length} more listed by \`fedsync history\`, ${published.size} digests in kept journals`);
  if (restorable.length && rng.chance(0.5)) {
    const ver = rng.pick(restorable);
    const dest = join(fed.dir, 'restore');
    const r = await first.fedsync(['restore', '--set', fed.setName, first.abs(ver.path), '--version', ver.id, '--to', dest]);
    // A file's restore writes DEST itself; a directory's, the files under it.
    const found = r.code === 0 && existsSync(dest) && (statSync(dest).isFile() ? sha256(readFileSync(dest)) === ver.digest : [...snapshotTree(dest).values()].some((e) => e.sha256 === ver.digest));
    w.note(`oracle: restored ${JSON.stringify(ver.path)} version ${ver.id} from history: ${found ? 'ok' : 'FAILED'}`);
    if (!found) v(`restore of ${JSON.stringify(ver.path)} version ${ver.id} (${ver.digest!.slice(0, 10)}) did not bring it back: exit ${r.code}: ${r.stderr.trim()}${r.stdout.trim()}`);
  }

  // 5. nothing outside the roots
  for (const n of fed.nodes) {
    const extra = readdirSync(n.dir).filter((x) => !NODE_DIR.has(x));
    if (extra.length) v(`${n.name}: fedsync wrote outside its root: ${extra.join(', ')}`);
  }
  const outside = join(fed.dir, 'outside');
  const intact = readdirSync(outside).join() === 'sentinel' && readFileSync(join(outside, 'sentinel'), 'utf8') === sentinel;
  if (!intact) v('the directory beside the roots changed');
}
