import Database from 'better-sqlite3';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { isUnwritable, stateFileError } from '../fsutil/state-error.js';
import type { Entry } from '../model/entry.js';
import { fileRow, fromRow, PLACED, statRow, type Absent, type Base, type FileRow, type LocalEntry, type Peer, type RawStatRow, type StatRow, type Wanted } from './rows.js';
import { MIGRATIONS } from './schema.js';

export { placedView, stateOf, type Absent, type Base, type LocalEntry, type Peer, type StatRow, type Wanted } from './rows.js';

/**
 * The node's SQLite database for one sync set. Synchronous by design (better-sqlite3): each
 * step of the protocol commits its local effects in one transaction.
 */
export class Manifest {
  readonly db: Database.Database;
  private readonly st;

  /**
   * Opens the database in WAL mode. A state directory that refuses writes (read-only, full,
   * immutable) fails here with SQLite's bare "unable to open database file": the error is
   * rewritten to name the file and the errno's remedy, so it is not taken for damage.
   */
  private static open(file: string): Database.Database {
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      db = new Database(file);
      chmodSync(file, 0o600);
      db.pragma('journal_mode = WAL');
      return db;
    } catch (err) {
      db?.close();
      throw isUnwritable(err) ? stateFileError(file, 'open', err) : err;
    }
  }

  constructor(readonly file: string) {
    this.db = Manifest.open(file);
    // NORMAL under WAL: a commit may be lost to a power cut (never corrupted), which keeps the
    // scan's bulk commits cheap. Commits that precede a store write use durableTransaction.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.st = {
      getMeta: this.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      getFile: this.db.prepare<[string], FileRow>('SELECT * FROM files WHERE path = ?'),
      allFiles: this.db.prepare<[], FileRow>('SELECT * FROM files'),
      allStats: this.db.prepare<[], RawStatRow>('SELECT path, kind, mode, stat, absent, base FROM files'),
      // A path and everything below it: '0' is the character after '/'.
      subtreeStats: this.db.prepare<[string, string, string], RawStatRow>('SELECT path, kind, mode, stat, absent, base FROM files WHERE path = ? OR (path >= ? AND path < ?)'),
      putFile: this.db.prepare(
        `INSERT INTO files (path, kind, digest, size, mode, mtime, target, vv, hlc, author, stat, versions, absent, base, wanted_since, retry_at, tries, reason)
         VALUES (@path, @kind, @digest, @size, @mode, @mtime, @target, @vv, @hlc, @author, @stat, @versions, @absent, @base, @wanted_since, @retry_at, @tries, @reason)
         ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, digest = excluded.digest, size = excluded.size,
           mode = excluded.mode, mtime = excluded.mtime, target = excluded.target, vv = excluded.vv,
           hlc = excluded.hlc, author = excluded.author, stat = excluded.stat, versions = excluded.versions,
           absent = excluded.absent, base = excluded.base, wanted_since = excluded.wanted_since,
           retry_at = excluded.retry_at, tries = excluded.tries, reason = excluded.reason`,
      ),
      // Only placed entries: content this node can copy from its own disk.
      byDigest: this.db.prepare<[string], FileRow>("SELECT * FROM files WHERE digest = ? AND kind = 'file' AND absent IS NULL"),
      setStat: this.db.prepare('UPDATE files SET stat = ? WHERE path = ? AND absent IS NULL'),
      countLive: this.db.prepare<[], { n: number }>("SELECT count(*) AS n FROM files WHERE kind != 'deleted' AND absent IS NULL"),
      countGlob: this.db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM files WHERE kind IN ('file', 'symlink') AND path GLOB ?"),
      absentRows: this.db.prepare<[string], FileRow>('SELECT * FROM files WHERE absent = ?'),
      wantedSummary: this.db.prepare<[], { n: number; since: number | null }>("SELECT count(*) AS n, min(wanted_since) AS since FROM files WHERE absent = 'wanted'"),
      addOutbox: this.db.prepare('INSERT INTO outbox (seq, idx, record) VALUES (?, ?, ?)'),
      outboxSeqs: this.db.prepare<[], { seq: number; n: number }>('SELECT seq, count(*) AS n FROM outbox GROUP BY seq ORDER BY seq'),
      outboxOf: this.db.prepare<[number], { idx: number; record: string }>('SELECT idx, record FROM outbox WHERE seq = ? ORDER BY idx'),
      dropOutboxRow: this.db.prepare('DELETE FROM outbox WHERE seq = ? AND idx = ?'),
      setOutboxRow: this.db.prepare('UPDATE outbox SET record = ? WHERE seq = ? AND idx = ?'),
      clearOutboxThrough: this.db.prepare('DELETE FROM outbox WHERE seq <= ?'),
      lastOutbox: this.db.prepare<[], { seq: number; idx: number }>('SELECT seq, idx FROM outbox ORDER BY seq DESC, idx DESC LIMIT 1'),
      peers: this.db.prepare<[], Record<string, unknown>>('SELECT * FROM peers ORDER BY node'),
      putPeer: this.db.prepare(
        `INSERT INTO peers (node, name, role, cursor, head_etag, head_seq, heartbeat, error)
         VALUES (@node, @name, @role, @cursor, @headEtag, @headSeq, @heartbeat, @error)
         ON CONFLICT(node) DO UPDATE SET name = excluded.name, role = excluded.role, cursor = excluded.cursor,
           head_etag = excluded.head_etag, head_seq = excluded.head_seq, heartbeat = excluded.heartbeat, error = excluded.error`,
      ),
      hasBlob: this.db.prepare<[string], { stored_at: number }>('SELECT stored_at FROM blobs WHERE digest = ?'),
      addBlob: this.db.prepare('INSERT INTO blobs (digest, stored_at) VALUES (?, ?) ON CONFLICT(digest) DO UPDATE SET stored_at = max(stored_at, excluded.stored_at)'),
      // Used once per applied path: prepared once, not per call.
      noteApplying: this.db.prepare('INSERT OR REPLACE INTO applying (path, entry) VALUES (?, ?)'),
      applying: this.db.prepare<[string], { entry: string }>('SELECT entry FROM applying WHERE path = ?'),
      clearApplying: this.db.prepare('DELETE FROM applying WHERE path = ?'),
      segmentDigests: this.db.prepare<[string], { digests: string }>('SELECT digests FROM segment_digests WHERE key = ?'),
      cacheSegmentDigests: this.db.prepare('INSERT OR REPLACE INTO segment_digests (key, digests) VALUES (?, ?)'),
    };
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new Error(`manifest ${this.file} was written by a newer fedsync (schema ${version}); upgrade fedsync`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * A transaction whose commit is on disk before it returns (synchronous = FULL for this
   * commit): for what must survive a power cut because a store write follows it (a seq
   * reserved before its segment is uploaded, a head about to be written, a new node id).
   * Under WAL the fsync of this commit also makes every earlier NORMAL commit durable, since
   * the WAL is written in order; the scan's bulk commits stay NORMAL and pay for no fsync.
   */
  durableTransaction<T>(fn: () => T): T {
    this.db.pragma('synchronous = FULL');
    try {
      return this.db.transaction(fn)();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  getMeta(key: string): string | undefined {
    return this.st.getMeta.get(key)?.value;
  }

  setMeta(key: string, value: string | number): void {
    this.st.setMeta.run(key, String(value));
  }

  getEntry(path: string): LocalEntry | undefined {
    const r = this.st.getFile.get(path);
    return r ? fromRow(r) : undefined;
  }

  allEntries(): Map<string, LocalEntry> {
    const out = new Map<string, LocalEntry>();
    for (const r of this.st.allFiles.iterate()) out.set(r.path, fromRow(r));
    return out;
  }

  /**
   * Kind, mode and stat of every path, or of the subtrees at `roots`: a scan over 100,000
   * unchanged files needs no more, and reads full entries only for what changed.
   */
  statIndex(roots?: string[]): Map<string, StatRow> {
    const out = new Map<string, StatRow>();
    if (!roots || roots.includes('')) {
      for (const r of this.st.allStats.iterate()) out.set(r.path, statRow(r));
      return out;
    }
    for (const root of roots) for (const r of this.st.subtreeStats.iterate(root, `${root}/`, `${root}0`)) out.set(r.path, statRow(r));
    return out;
  }

  /** Files whose content has this digest (candidates for a local copy instead of a download). */
  entriesWithDigest(digest: string): LocalEntry[] {
    return this.st.byDigest.all(digest).map(fromRow);
  }

  /**
   * Stores a path's state as placed on this disk with `stat`; `versions` only when given (a
   * new local change supersedes them all).
   */
  putEntry(e: Entry & { versions?: Entry[] }, stat: string | null): void {
    this.st.putFile.run({ ...fileRow(e, stat), ...PLACED });
  }

  /**
   * Stores a path's state as not placed here (see LocalEntry.absent), over `base`, what this
   * node last placed at the path.
   */
  putAbsent(e: Entry & { versions?: Entry[] }, absent: Absent, base: Base | null, wanted?: Wanted): void {
    let b: Base | null = null;
    if (base) {
      const { absent: _a, base: _b, wanted: _w, ...rest } = base;
      b = rest;
    }
    this.st.putFile.run({
      ...fileRow(e, null),
      absent,
      base: b ? JSON.stringify(b) : null,
      wanted_since: wanted?.since ?? null,
      retry_at: wanted?.retryAt ?? null,
      tries: wanted?.tries ?? null,
      reason: wanted?.reason ?? null,
    });
  }

  /** Entries not placed here for the given reason, in no particular order. */
  absentEntries(absent: Absent): LocalEntry[] {
    return this.st.absentRows.all(absent).map(fromRow);
  }

  /** How many entries are wanted, and since when the oldest is (ms; null when none). */
  wantedSummary(): { count: number; oldestSince: number | null } {
    const r = this.st.wantedSummary.get()!;
    return { count: r.n, oldestSince: r.since };
  }

  /** The stat of what is placed at the path: the entry's, or its base's when it is absent. */
  setStat(path: string, stat: string | null): void {
    if (this.st.setStat.run(stat, path).changes > 0) return;
    const e = this.getEntry(path);
    if (e?.absent && e.base) this.putAbsent(e, e.absent, { ...e.base, stat }, e.wanted);
  }

  liveCount(): number {
    return this.st.countLive.get()!.n;
  }

  /** Files and symlinks of the federation's state (placed here or not) whose path matches a SQLite GLOB pattern. */
  countMatching(glob: string): number {
    return this.st.countGlob.get(glob)!.n;
  }

  /** Queues records into the outbox at the given segment number, after what is there. */
  addToOutbox(seq: number, records: string[]): void {
    const last = this.st.lastOutbox.get();
    let idx = last && last.seq === seq ? last.idx + 1 : 0;
    for (const r of records) this.st.addOutbox.run(seq, idx++, r);
  }

  outboxSegments(): { seq: number; count: number }[] {
    return this.st.outboxSeqs.all().map((r) => ({ seq: r.seq, count: r.n }));
  }

  outboxRecords(seq: number): { idx: number; record: string }[] {
    return this.st.outboxOf.all(seq);
  }

  dropOutboxRecord(seq: number, idx: number): void {
    this.st.dropOutboxRow.run(seq, idx);
  }

  /** Rewrites a queued record (only ever one of a segment not stored yet). */
  setOutboxRecord(seq: number, idx: number, record: string): void {
    this.st.setOutboxRow.run(record, seq, idx);
  }

  clearOutboxThrough(seq: number): void {
    this.st.clearOutboxThrough.run(seq);
  }

  peers(): Peer[] {
    return this.st.peers.all().map((r) => ({
      node: r.node as string,
      name: r.name as string,
      role: r.role as string,
      cursor: r.cursor as number,
      headEtag: r.head_etag as string | null,
      headSeq: r.head_seq as number,
      heartbeat: r.heartbeat as string | null,
      error: r.error as string | null,
    }));
  }

  putPeer(p: Peer): void {
    this.st.putPeer.run(p);
  }

  /** When the blob was last known to be stored (ms), or undefined if not known at all. */
  blobStoredAt(digest: string): number | undefined {
    return this.st.hasBlob.get(digest)?.stored_at;
  }

  addBlob(digest: string, at = Date.now()): void {
    this.st.addBlob.run(digest, at);
  }

  /** Notes a remote state about to be renamed into place (see the `applying` table). */
  noteApplying(e: Entry): void {
    this.st.noteApplying.run(e.path, JSON.stringify(e));
  }

  /** The remote state a crash interrupted while it was put in place at `path`, if any. */
  applying(path: string): Entry | undefined {
    const r = this.st.applying.get(path);
    return r ? (JSON.parse(r.entry) as Entry) : undefined;
  }

  clearApplying(path: string): void {
    this.st.clearApplying.run(path);
  }

  /** Digests named by a journal segment, as cached by an earlier garbage collection. */
  segmentDigests(key: string): string[] | undefined {
    const r = this.st.segmentDigests.get(key);
    return r ? (JSON.parse(r.digests) as string[]) : undefined;
  }

  cacheSegmentDigests(key: string, digests: string[]): void {
    this.st.cacheSegmentDigests.run(key, JSON.stringify(digests));
  }

  /** Drops cache rows for segments no longer in the store. */
  forgetSegments(keep: Set<string>): void {
    const del = this.db.prepare('DELETE FROM segment_digests WHERE key = ?');
    this.transaction(() => {
      for (const { key } of this.db.prepare<[], { key: string }>('SELECT key FROM segment_digests').all()) if (!keep.has(key)) del.run(key);
    });
  }

  /**
   * Local upkeep: tombstones older than `before` (HLC wall ms) are forgotten, as are blob
   * notes older than `blobsBefore`; the WAL is folded back and the file shrunk when much of
   * it is free.
   */
  compact(before: number, blobsBefore: number): { tombstones: number } {
    const cut = `${String(before).padStart(13, '0')}-999999`;
    // Not a wanted one: its base may still be on disk, and forgotten it would look new there.
    const tombstones = this.db.prepare("DELETE FROM files WHERE kind = 'deleted' AND hlc < ? AND (absent IS NULL OR absent != 'wanted')").run(cut).changes;
    this.db.prepare('DELETE FROM blobs WHERE stored_at < ?').run(blobsBefore);
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    if (pages > 1000 && free * 4 > pages) this.db.exec('VACUUM');
    this.db.pragma('optimize');
    return { tombstones };
  }

  close(): void {
    this.db.close();
  }
}
