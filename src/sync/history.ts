import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, symlinkSync } from 'node:fs';
import { chmod, rm, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { IntegrityError, VerifyStream } from '../fsutil/hash.js';
import { utimesSeconds } from '../fsutil/stat.js';
import { mapLimit } from '../util/pool.js';
import type { SetContext } from './context.js';
import { ensureParents } from './disk.js';
import { listSnapshots, readSnapshot } from './housekeep/snapshot.js';
import { HEADS_PREFIX, JOURNAL_PREFIX, headNode, segmentOf } from './layout.js';
import { MARKER_DIR, pathProblem, type Entry } from './record.js';
import { decodeSegment } from './segment.js';
import { decodeHead } from './head.js';

/** One kept version of a path: from a journal record, or a snapshot entry. */
export interface Version {
  /** `<hlc>` of the version: unique per path, and what `restore --version` takes. */
  id: string;
  time: Date;
  node: string;
  entry: Entry;
}

/** Whether `p` is `base` or inside it (`base` '' is the whole tree). */
function within(p: string, base: string): boolean {
  return base === '' || p === base || p.startsWith(`${base}/`);
}

/**
 * Every version the store still holds of `path` and, for a directory, of everything under
 * it: the records of all kept journal segments plus the entries of all kept snapshots,
 * oldest first.
 */
export async function listVersions(ctx: SetContext, path: string): Promise<Version[]> {
  const base = path.replace(/^\/+|\/+$/g, '');
  if (base !== '' && pathProblem(base)) throw new Error(`invalid path "${path}": ${pathProblem(base)}`);
  const names = await nodeNames(ctx);
  const found = new Map<string, Version>();
  const add = (e: Entry) => {
    if (!within(e.path, base)) return;
    const key = `${e.path}\0${e.hlc}\0${e.author}`;
    if (!found.has(key)) found.set(key, { id: e.hlc, time: new Date(Number(e.hlc.slice(0, 13))), node: names.get(e.author) ?? e.author, entry: e });
  };
  const opts = { allowExternalSymlinks: ctx.set.allowExternalSymlinks };
  for (const name of await listSnapshots(ctx.store)) {
    try {
      const snap = await readSnapshot(ctx, name, opts);
      snap?.entries.forEach(add);
    } catch (err) {
      // One snapshot that does not read costs its own versions, not every path's history.
      ctx.log.warn({ snapshot: name, err: (err as Error).message }, 'skipping an unreadable snapshot');
    }
  }
  const keys: string[] = [];
  for await (const o of ctx.store.list(JOURNAL_PREFIX)) keys.push(o.key);
  await mapLimit(keys, 8, async (key) => {
    const seg = segmentOf(key);
    if (!seg) return;
    const skip = (err: unknown) => ctx.log.warn({ key, err: (err as Error).message }, 'skipping an unreadable segment');
    let body: Buffer | null;
    try {
      body = await ctx.store.get(key);
    } catch (err) {
      // An object this federation's key does not open (cut short, another writer's) is one
      // unreadable segment too; a store error still fails the command.
      if (!(err instanceof IntegrityError)) throw err;
      return skip(err);
    }
    if (!body) return;
    try {
      decodeSegment(body, seg.node, seg.seq, opts).records.forEach(add);
    } catch (err) {
      skip(err);
    }
  });
  return [...found.values()].sort((a, b) => (a.entry.hlc < b.entry.hlc ? -1 : a.entry.hlc > b.entry.hlc ? 1 : a.entry.path < b.entry.path ? -1 : 1));
}

async function nodeNames(ctx: SetContext): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const o of ctx.store.list(HEADS_PREFIX)) {
    const node = headNode(o.key);
    const body = node ? await ctx.store.get(o.key) : null;
    if (!node || !body) continue;
    try {
      out.set(node, decodeHead(body, node).name || node);
    } catch {
      // a broken head only loses its display name here
    }
  }
  return out;
}

export interface RestoreChoice {
  at?: Date;
  version?: string;
}

/**
 * For each path under `path`, the version to bring back: the one with `--version`'s id; or
 * the last one at or before `--at`; or, by default, the last one that was not a deletion
 * (what "restore a deleted file" means). Paths whose chosen state is a deletion are left out:
 * restoring never deletes.
 */
export function chooseVersions(versions: Version[], choice: RestoreChoice): Entry[] {
  const byPath = new Map<string, Entry>();
  for (const v of versions) {
    if (choice.version !== undefined && v.id !== choice.version) continue;
    if (choice.at && v.time.getTime() > choice.at.getTime()) continue;
    if (!choice.at && choice.version === undefined && v.entry.kind === 'deleted') continue;
    byPath.set(v.entry.path, v.entry);
  }
  return [...byPath.values()].filter((e) => e.kind !== 'deleted').sort((a, b) => (a.path < b.path ? -1 : 1));
}

/**
 * Writes the chosen versions under `destRoot` (the set's root for an in-place restore, or
 * `--to`), each file downloaded into a temp file beside its target, verified, given its mode
 * and mtime, and renamed into place. `rel` maps a version's path to its place under destRoot.
 */
export async function writeVersions(ctx: SetContext, entries: Entry[], destRoot: string, rel: (p: string) => string): Promise<number> {
  const inPlace = destRoot === ctx.set.path;
  const tmpDir = inPlace ? join(destRoot, MARKER_DIR, 'tmp') : destRoot;
  mkdirSync(tmpDir, { recursive: true });
  for (const e of entries.filter((x) => x.kind === 'dir')) {
    const target = rel(e.path);
    if (target) ensureParents(destRoot, `${target}/x`);
  }
  let written = 0;
  await mapLimit(
    entries.filter((e) => e.kind !== 'dir' && rel(e.path) !== ''),
    8,
    async (e) => {
      const target = rel(e.path);
      ensureParents(destRoot, target);
      const abs = join(destRoot, target);
      const tmp = join(inPlace ? tmpDir : dirname(abs), `.fedsync-restore-${randomBytes(6).toString('hex')}`);
      try {
        if (e.kind === 'symlink') symlinkSync(e.target!, tmp);
        else {
          const body = await ctx.store.getStream(ctx.blobKey(e.digest!));
          if (!body) throw new Error(`${e.path}: blob ${e.digest} is no longer in the store`);
          await pipeline(body, new VerifyStream(e.digest!, e.size, e.path), createWriteStream(tmp, { mode: 0o600 }));
          await chmod(tmp, e.mode);
          await utimes(tmp, utimesSeconds(e.mtime), utimesSeconds(e.mtime));
        }
        renameSync(tmp, abs);
        written++;
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    },
  );
  return written;
}
