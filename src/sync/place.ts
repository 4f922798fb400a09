import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, createWriteStream, lchownSync, lstatSync, mkdirSync, readlinkSync, renameSync, rmdirSync, rmSync, symlinkSync, unlinkSync, utimesSync } from 'node:fs';
import { chmod, chown, copyFile, lutimes, open, rm } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { chunkFor, hashFile, VerifyStream } from '../fsutil/hash.js';
import { statKey, utimesSeconds } from '../fsutil/stat.js';
import { inDirOf } from '../fsutil/writable.js';
import type { SetContext } from './context.js';
import { conflictPath } from './conflict.js';
import { diskMatches, diskState, ensureParents, parentsAreDirs, RejectedRecord } from './disk.js';
import type { Decision } from './plan.js';
import type { Entry } from './record.js';

/**
 * Placing remote states on disk, one path at a time: fetching content into a temp file
 * (from the store, a bundle or a local copy), verifying it, and renaming it into place.
 */

/** What placing produced beside the paths themselves, for the caller to scan and publish. */
export interface Placed {
  /** Paths whose local version was moved aside; they must be scanned and published. */
  keptAside: string[];
  /** Directories created only because a record needed a parent. */
  madeParents: string[];
}

/** A leaf made ready to be put in place: its temp file, or null when it is changed in place. */
export interface Ready {
  d: Decision;
  tmp: string | null;
}

export class MissingBlob extends Error {
  override name = 'MissingBlob';
}

/** The file-system side of applying, one path at a time. */
export class Writer {
  /** Staged files already handed to a path (see copyStaged). */
  private readonly taken = new Set<string>();

  constructor(
    private readonly ctx: SetContext,
    private readonly tmpDir: string,
    private readonly owner: { uid: number; gid: number } | null,
    private readonly out: Placed,
  ) {}

  private abs(rel: string): string {
    return join(this.ctx.set.path, rel);
  }

  private tmpName(): string {
    return join(this.tmpDir, `${randomBytes(8).toString('hex')}.tmp`);
  }

  private parents(rel: string): void {
    this.out.madeParents.push(...ensureParents(this.ctx.set.path, rel));
  }

  /**
   * Whatever is at the path must be replaceable: exactly what the manifest recorded (the
   * version the remote record supersedes). Anything else is a local change nobody has seen:
   * it is moved aside as a conflict copy, so nothing is lost.
   */
  private clearWay(d: Decision): void {
    const disk = diskState(this.ctx.set.path, d.path);
    if (!disk) return;
    if (d.keepLocal || !diskMatches(d.local, disk)) {
      this.keepAside(d.path);
      return;
    }
    if (disk.kind === 'dir' && d.final.kind !== 'dir') {
      try {
        inDirOf(this.abs(d.path), () => rmdirSync(this.abs(d.path)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        this.keepAside(d.path);
      }
    } else if (d.final.kind === 'dir' && disk.kind !== 'dir') {
      inDirOf(this.abs(d.path), () => unlinkSync(this.abs(d.path)));
    }
  }

  private keepAside(rel: string): void {
    const { manifest, nodeName, set } = this.ctx;
    const copy = conflictPath(rel, nodeName, new Date(), (p) => diskState(set.path, p) !== null || (manifest.getEntry(p)?.kind ?? 'deleted') !== 'deleted');
    inDirOf(this.abs(rel), () => renameSync(this.abs(rel), this.abs(copy)));
    this.out.keptAside.push(copy);
    this.note(rel);
    this.note(copy);
    this.ctx.stats.conflicts++;
    this.ctx.log.warn({ path: rel, copy }, 'conflict: the local version is kept as a conflict copy');
  }

  /**
   * Keeps `v`, a beaten version that a former id of this node wrote before this disk went
   * back in time (plan.ts `heirCopies`), as a conflict copy beside `rel`, fetched from the
   * store. Like any conflict copy, the next scan publishes it as a new file.
   */
  async keepHeirCopy(rel: string, v: Entry): Promise<void> {
    const { manifest, nodeName, set } = this.ctx;
    const tmp = await this.download(v);
    try {
      this.finish(tmp, v);
      this.parents(rel);
      const copy = conflictPath(rel, nodeName, new Date(), (p) => diskState(set.path, p) !== null || (manifest.getEntry(p)?.kind ?? 'deleted') !== 'deleted');
      inDirOf(this.abs(copy), () => renameSync(tmp, this.abs(copy)));
      this.out.keptAside.push(copy);
      this.note(copy);
      this.ctx.stats.conflicts++;
      this.ctx.log.warn({ path: rel, copy, version: v.hlc }, 'conflict: a version this node published before its state went back in time is kept as a conflict copy');
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async remove(d: Decision): Promise<void> {
    const disk = diskState(this.ctx.set.path, d.path);
    if (disk && !diskMatches(d.local, disk)) {
      // Changed here since the last scan: a modification beats a deletion. The next scan
      // sees the file against the tombstone and publishes it as a new version.
      this.ctx.manifest.putEntry(d.final, null);
      return;
    }
    if (disk && d.keepLocal && disk.kind !== 'dir') {
      // This node's version lost a conflict to one that was then deleted: the deletion removes
      // the winner, never the loser's edit, which nobody else ever held. It stays as a
      // conflict copy (published by the next scan, like any conflict copy).
      this.keepAside(d.path);
      this.ctx.manifest.putEntry(d.final, null);
      return;
    }
    if (disk?.kind === 'dir') {
      try {
        inDirOf(this.abs(d.path), () => rmdirSync(this.abs(d.path)));
      } catch (err) {
        // Not empty: something here still lives in it. Keeping the directory is the only
        // safe choice; the next scan publishes it again.
        if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        this.ctx.manifest.putEntry(d.final, null);
        return;
      }
    } else if (disk) inDirOf(this.abs(d.path), () => unlinkSync(this.abs(d.path)));
    this.ctx.manifest.putEntry(d.final, null);
    this.ctx.stats.deleted++;
    if (disk) this.note(d.path);
  }

  async dir(d: Decision): Promise<void> {
    this.parents(d.path);
    this.clearWay(d);
    const abs = this.abs(d.path);
    inDirOf(abs, () => mkdirSync(abs, { recursive: true, mode: d.final.mode }));
    await chmod(abs, d.final.mode);
    if (this.owner) await chown(abs, this.owner.uid, this.owner.gid);
    this.ctx.manifest.putEntry(d.final, 'dir');
    this.ctx.stats.applied++;
    this.note(d.path);
  }

  /**
   * Fetches or creates what goes at a file or symlink path, in a temp file with its final
   * mode, owner and mtime. Content only changing mode or mtime is changed in place here.
   */
  async prepare(d: Decision, staged: string | undefined): Promise<Ready> {
    const e = d.final;
    this.parents(d.path);
    let tmp: string;
    if (e.kind === 'symlink') {
      tmp = this.tmpName();
      symlinkSync(e.target!, tmp);
      if (this.owner) lchownSync(tmp, this.owner.uid, this.owner.gid);
      await lutimes(tmp, utimesSeconds(e.mtime), utimesSeconds(e.mtime));
      return { d, tmp };
    }
    if (d.op === 'meta' && diskMatches(d.local, diskState(this.ctx.set.path, d.path)) && !d.keepLocal) {
      // Same bytes already here: only mode and mtime change, in place.
      this.finish(this.abs(d.path), e);
      return { d, tmp: null };
    }
    tmp = staged ?? (await this.download(e));
    try {
      this.finish(tmp, e);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return { d, tmp };
  }

  /**
   * Puts ready leaves in place. Their states are noted as `applying` in one commit before
   * any rename, so a crash after a rename and before the entries are recorded (one commit
   * after the last) is recognised by the next scan as this remote state, not a local change.
   * Each leaf's stat is taken right after its own rename, so what is recorded is what this
   * node wrote: an application writing one of them before the closing commit leaves a stat
   * that differs, and the next scan sees a local change instead of overwriting it later.
   * No await between a path's checks and its rename: nothing else can move under it.
   */
  install(ready: Ready[], failed: (r: Ready, err: unknown) => void): void {
    const { manifest } = this.ctx;
    manifest.transaction(() => {
      for (const r of ready) if (r.tmp) manifest.noteApplying(r.d.final);
    });
    const done: { d: Decision; stat: string | null }[] = [];
    for (const r of ready) {
      try {
        if (r.tmp) this.rename(r.d, r.tmp);
        done.push({ d: r.d, stat: this.statNow(r.d.path) });
      } catch (err) {
        if (r.tmp) rmSync(r.tmp, { force: true });
        failed(r, err);
      }
    }
    manifest.transaction(() => {
      for (const { d, stat } of done) {
        manifest.putEntry(d.final, stat);
        manifest.clearApplying(d.path);
      }
    });
    this.ctx.stats.applied += done.length;
    for (const { d } of done) this.note(d.path);
  }

  /** A path this node changed on disk from another node's record (the on_apply hook's list). */
  private note(rel: string): void {
    this.ctx.changed?.add(rel);
  }

  /** The stat key of what is at a path now (null: nothing, or not a file or symlink). */
  private statNow(rel: string): string | null {
    const st = lstatSync(this.abs(rel), { bigint: true, throwIfNoEntry: false });
    return st && (st.isFile() || st.isSymbolicLink()) ? statKey(st) : null;
  }

  private rename(d: Decision, tmp: string): void {
    const e = d.final;
    // Checked again here: while this leaf downloaded, another leaf may have turned a parent
    // into a symlink, which rename would follow.
    if (!parentsAreDirs(this.ctx.set.path, d.path)) throw new RejectedRecord(`a parent of "${d.path}" is no longer a directory`);
    if (e.kind === 'symlink' && !this.ctx.set.allowExternalSymlinks && linkLeaves(this.ctx.set.path, d.path, e.target!)) throw new RejectedRecord(`symlink target ${JSON.stringify(e.target)} leads outside the root through a link on disk`);
    this.clearWay(d);
    inDirOf(this.abs(d.path), () => renameSync(tmp, this.abs(d.path)));
  }

  /**
   * Mode, owner and mtime. Synchronous: three quick inode updates cost less than three trips
   * through the thread pool, and a bootstrap makes them for every file.
   */
  private finish(path: string, e: Entry): void {
    chmodSync(path, e.mode);
    if (this.owner) chownSync(path, this.owner.uid, this.owner.gid);
    utimesSync(path, utimesSeconds(e.mtime), utimesSeconds(e.mtime));
  }

  /** Fetches a blob into a temp file, verified against its digest and size, synced to disk. */
  private async download(e: Entry): Promise<string> {
    const body = await this.ctx.store.getStream(this.ctx.blobKey(e.digest!));
    if (!body) throw new MissingBlob(`blob ${e.digest} is not in the store`);
    const tmp = this.tmpName();
    try {
      await pipeline(body, new VerifyStream(e.digest!, e.size, `blob ${e.digest!.slice(0, 12)}`), createWriteStream(tmp, { mode: 0o600, highWaterMark: chunkFor(e.size) }));
      await syncFile(tmp);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    this.ctx.stats.bytesDown += e.size;
    return tmp;
  }

  /** Whether a staged file was handed to a path by copyStaged. */
  took(src: string): boolean {
    return this.taken.has(src);
  }

  /**
   * Content staged from a bundle (verified and synced), or null. The first path with that
   * content takes the staged file itself; any further path gets a copy of it. All copies are
   * made before any leaf is renamed into place, so the staged file is still there for them.
   */
  async copyStaged(src: string | undefined): Promise<string | null> {
    if (!src) return null;
    if (!this.taken.has(src)) {
      this.taken.add(src);
      return src;
    }
    const tmp = this.tmpName();
    await copyFile(src, tmp);
    await syncFile(tmp);
    return tmp;
  }

  /** A verified copy of content this node already has at another path, or null. */
  async copyLocal(e: Entry): Promise<string | null> {
    for (const src of this.ctx.manifest.entriesWithDigest(e.digest!)) {
      if (!diskMatches(src, diskState(this.ctx.set.path, src.path))) continue;
      const tmp = this.tmpName();
      try {
        await copyFile(this.abs(src.path), tmp);
        const h = await hashFile(tmp, e.size);
        if (h.digest === e.digest && h.size === e.size) {
          await syncFile(tmp);
          return tmp;
        }
      } catch {
        // The source moved under us; fall back to the store.
      }
      await rm(tmp, { force: true });
    }
    return null;
  }
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Whether a symlink at `rel` with `target` would resolve outside `root`, following the links on disk now. */
function linkLeaves(root: string, rel: string, target: string): boolean {
  let budget = 40;
  const inside = (p: string) => p === root || p.startsWith(root + sep);
  const walk = (base: string, parts: string[]): string | null => {
    let cur = base;
    for (let i = 0; i < parts.length; i++) {
      const seg = parts[i]!;
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        cur = dirname(cur);
        continue;
      }
      const next = join(cur, seg);
      let st;
      try {
        st = lstatSync(next);
      } catch {
        return resolve(next, ...parts.slice(i + 1));
      }
      if (!st.isSymbolicLink()) {
        cur = next;
        continue;
      }
      if (--budget < 0) return null;
      const t = readlinkSync(next);
      const via = walk(t.startsWith('/') ? '/' : cur, t.split('/'));
      if (via === null) return null;
      cur = via;
    }
    return cur;
  };
  const at = walk(dirname(join(root, rel)), target.split('/'));
  return at !== null && !inside(at);
}
