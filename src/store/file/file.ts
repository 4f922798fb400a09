import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, type BigIntStats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { PreconditionFailedError, StoreError } from '../errors.js';
import { checkKey, checkPrefix, compareKeys, TEMP_DIR } from '../keys.js';
import { newRequestCounts, type ObjectInfo, type PutOptions, type PutResult, type RequestCounts, type Store } from '../store.js';
import { openBody, type Body } from '../length.js';

/**
 * A store in a local (or NFS) directory: one file per key. Writes go to a temp file inside
 * the store root (same filesystem, so rename is atomic), are fsynced, then renamed over the
 * key, so a reader sees the old object or the new one, never a torn one.
 */
export class FileStore implements Store {
  readonly requests: RequestCounts = newRequestCounts();
  readonly location: string;
  private readonly tmp: string;

  constructor(readonly root: string) {
    this.location = pathToFileURL(root).href;
    this.tmp = join(root, TEMP_DIR);
  }

  async get(key: string): Promise<Buffer | null> {
    const path = this.path(key);
    this.requests.get++;
    return this.run('get', key, async () => {
      try {
        return await fs.readFile(path);
      } catch (err) {
        if (isMissing(err)) return null;
        throw err;
      }
    });
  }

  async getStream(key: string): Promise<Readable | null> {
    const path = this.path(key);
    this.requests.get++;
    return this.run('get', key, async () => {
      // Open first so a missing key is a null here rather than an error event later.
      let handle: fs.FileHandle;
      try {
        handle = await fs.open(path, 'r');
        if ((await handle.stat()).isDirectory()) {
          await handle.close();
          return null;
        }
      } catch (err) {
        if (isMissing(err)) return null;
        throw err;
      }
      return createReadStream('', { fd: handle, autoClose: true });
    });
  }

  /**
   * `ifNoneMatch` is exact: the new file is linked into place, which fails when the key
   * exists. `ifMatch` is checked just before the rename: a file store has one writer per
   * mutable key (DESIGN), so the check only guards against a stale writer of the same key.
   */
  async put(key: string, body: Buffer, opts: PutOptions = {}): Promise<PutResult> {
    const path = this.path(key);
    this.requests.put++;
    return this.run('put', key, () =>
      this.writeAtomic(path, (fh) => fh.writeFile(body), {
        create: opts.ifNoneMatch === true,
        check: opts.ifMatch === undefined ? undefined : async () => {
          const cur = await statOrNull(path);
          if (!cur?.isFile() || info(key, cur).etag !== opts.ifMatch) throw new PreconditionFailedError(key, new Error(`the stored object is not ${opts.ifMatch}`));
        },
        refused: () => new PreconditionFailedError(key, new Error('an object is already stored under this key')),
      }),
    );
  }

  async putStream(key: string, open: () => Readable, size: number): Promise<void> {
    const path = this.path(key);
    this.requests.put++;
    let body: Body | undefined;
    try {
      await this.writeAtomic(path, async (fh) => {
        body = openBody(open, size);
        // A plain loop, not an fs.WriteStream on the handle: such a stream keeps a reference
        // on the FileHandle, and FileHandle.close() then waits for it forever.
        for await (const chunk of body.stream as AsyncIterable<Buffer>) {
          for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off)).bytesWritten;
        }
      });
    } catch (err) {
      // The caller's own stream failed (or had the wrong length): its error, unwrapped.
      if (body?.failure() !== undefined) throw body.failure();
      throw new StoreError('put', key, err);
    } finally {
      body?.dispose();
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const path = this.path(key);
    this.requests.head++;
    return this.run('stat', key, async () => {
      try {
        const st = await fs.stat(path, { bigint: true });
        return st.isFile() ? info(key, st) : null;
      } catch (err) {
        if (isMissing(err)) return null;
        throw err;
      }
    });
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    this.requests.list++;
    // Start at the deepest directory the prefix names; its last segment filters entry names.
    const cut = prefix.lastIndexOf('/') + 1;
    const base = prefix.slice(0, cut);
    const first = prefix.slice(cut);
    try {
      yield* this.walk(base, first);
    } catch (err) {
      throw new StoreError('list', prefix, err);
    }
  }

  /**
   * Depth-first, with each directory's entries sorted as `name` for files and `name/` for
   * directories: then the walk yields keys in the same byte order as a flat sort would
   * ("a-b" sorts before "a/x" because "-" < "/").
   */
  private async *walk(dir: string, namePrefix: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = await fs.readdir(join(this.root, dir), { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    const items = entries
      .filter((e) => e.name.startsWith(namePrefix) && e.name !== TEMP_DIR)
      .map((e) => ({ name: e.name, dir: e.isDirectory(), sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    // Stat files in small parallel batches: a blobs/xx directory may hold thousands.
    for (let i = 0; i < items.length; ) {
      if (items[i].dir) {
        yield* this.walk(`${dir}${items[i].name}/`, '');
        i++;
        continue;
      }
      let j = i;
      while (j < items.length && !items[j].dir && j - i < 64) j++;
      const batch = items.slice(i, j);
      const stats = await Promise.all(batch.map((it) => statOrNull(join(this.root, dir, it.name))));
      for (let k = 0; k < batch.length; k++) {
        const st = stats[k];
        // Vanished since readdir (a concurrent delete), or not a regular file: not an object.
        if (st?.isFile()) yield info(dir + batch[k].name, st);
      }
      i = j;
    }
  }

  async delete(keys: string[]): Promise<void> {
    const paths = keys.map((k) => this.path(k));
    // Counted like S3's DeleteObjects, which takes at most 1000 keys per request.
    this.requests.delete += Math.ceil(keys.length / 1000);
    const queue = paths.map((p, i) => ({ path: p, key: keys[i] }));
    const worker = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const { path, key } = item;
        await this.run('delete', key, async () => {
          try {
            await fs.unlink(path);
          } catch (err) {
            if (isMissing(err)) return;
            throw err;
          }
          await this.pruneDirs(dirname(path));
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, queue.length) }, worker));
  }

  async close(): Promise<void> {}

  /** Removes directories left empty by a delete, up to the root; stops at the first non-empty one. */
  private async pruneDirs(dir: string): Promise<void> {
    while (dir.length > this.root.length && dir.startsWith(this.root + sep)) {
      try {
        await fs.rmdir(dir);
      } catch {
        return; // not empty, gone already, or not ours to remove: all fine
      }
      dir = dirname(dir);
    }
  }

  /**
   * Writes a temp file, syncs it and renames it over `path` (or, with `create`, links it
   * there, which fails when `path` exists). Returns the new object's ETag, taken from the
   * temp file itself: the inode, size and mtime survive the rename.
   */
  private async writeAtomic(path: string, write: (fh: fs.FileHandle) => Promise<unknown>, cond: WriteCondition = {}): Promise<PutResult> {
    await fs.mkdir(this.tmp, { recursive: true });
    const tmp = join(this.tmp, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const fh = await fs.open(tmp, 'wx', 0o644);
    let etag: string;
    try {
      try {
        await write(fh);
        if (!cond.create) await keepMtimeRising(fh, path);
        await fh.sync();
        etag = info('', await fh.stat({ bigint: true })).etag;
      } finally {
        await fh.close();
      }
      await cond.check?.();
      if (cond.create) await linkInto(tmp, path, cond.refused!);
      else await renameInto(tmp, path);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    // Make the rename itself durable: the head is written after the blobs and segments it
    // names, and a crash must not keep the head while losing what it points to.
    await syncDir(dirname(path));
    return { etag };
  }

  existsLocally(key: string): boolean {
    return existsSync(this.path(key));
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  private async run<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw err instanceof StoreError ? err : new StoreError(op, key, err);
    }
  }
}

interface WriteCondition {
  /** Link into place, refusing an existing key, instead of renaming over it. */
  create?: boolean;
  /** Checked just before the rename; throws to refuse the write. */
  check?: () => Promise<void>;
  /** The error for a `create` whose key exists. */
  refused?: () => Error;
}

/** mkdir + link (atomic create-if-absent), then the temp name removed. */
async function linkInto(tmp: string, path: string, refused: () => Error): Promise<void> {
  try {
    await withParent(path, () => fs.link(tmp, path));
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code === 'EEXIST' ? refused() : err;
  }
  await fs.rm(tmp, { force: true });
}

function renameInto(tmp: string, path: string): Promise<void> {
  return withParent(path, () => fs.rename(tmp, path));
}

/**
 * mkdir + `place`, retried because a concurrent delete may prune the freshly made parent
 * directory between the two steps (or during mkdir itself).
 */
async function withParent(path: string, place: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.mkdir(dirname(path), { recursive: true });
      await place();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw err;
    }
  }
}

/**
 * The etag is inode-size-mtime, and ext4 hands the inode just freed by the previous rename
 * straight back (two inodes alternate over hundreds of rewrites), while its timestamps may
 * be as coarse as a few ms. So make each version's mtime strictly later than the one it
 * replaces: then an A-B-A rewrite within one clock tick cannot bring an old etag back.
 */
async function keepMtimeRising(fh: fs.FileHandle, path: string): Promise<void> {
  const prev = await statOrNull(path);
  if (!prev) return;
  const cur = await fh.stat({ bigint: true });
  if (cur.mtimeNs > prev.mtimeNs) return;
  const t = Number(prev.mtimeNs / 1000n) / 1e6 + 0.001; // seconds, 1 ms after the previous
  await fh.utimes(t, t);
}

async function syncDir(dir: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories (EINVAL, EISDIR); nothing more to do.
  } finally {
    await fh?.close();
  }
}

async function statOrNull(path: string): Promise<BigIntStats | null> {
  try {
    return await fs.stat(path, { bigint: true });
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

function info(key: string, st: BigIntStats): ObjectInfo {
  return {
    key,
    size: Number(st.size),
    // Every write is a rename of a new file, so the inode changes on each rewrite even when
    // size and (coarse, on ext4) mtime do not.
    etag: `${st.ino}-${st.size}-${st.mtimeNs}`,
    lastModified: new Date(Number(st.mtimeMs)),
  };
}

/** "No such object": the path, or one of its parents, is missing, or a parent is a file. */
function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
