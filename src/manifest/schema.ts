/**
 * Manifest schema, one migration per version. `PRAGMA user_version` records how many have
 * run; a database from a newer fedsync is refused rather than guessed at.
 */
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  -- The federation state of every path this node knows, and what it last saw on its disk.
  CREATE TABLE files (
    path   TEXT PRIMARY KEY,
    kind   TEXT NOT NULL,
    digest TEXT,
    size   INTEGER NOT NULL,
    mode   INTEGER NOT NULL,
    mtime  INTEGER NOT NULL,
    target TEXT,
    vv     TEXT NOT NULL,
    hlc    TEXT NOT NULL,
    author TEXT NOT NULL,
    -- "size:mtime_ns:ctime_ns:ino" when last scanned or written; NULL when not on disk or
    -- unknown (forces a hash on the next scan).
    stat   TEXT
  ) WITHOUT ROWID;
  CREATE INDEX files_digest ON files (digest) WHERE digest IS NOT NULL;
  -- Local changes recorded but not yet committed by a head write. seq is the journal
  -- segment they go into; idx keeps their order inside it.
  CREATE TABLE outbox (
    seq    INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (seq, idx)
  ) WITHOUT ROWID;
  -- What this node knows of every other node, and how far it has read their journals.
  CREATE TABLE peers (
    node      TEXT PRIMARY KEY,
    name      TEXT NOT NULL DEFAULT '',
    role      TEXT NOT NULL DEFAULT '',
    cursor    INTEGER NOT NULL DEFAULT 0,
    head_etag TEXT,
    head_seq  INTEGER NOT NULL DEFAULT 0,
    heartbeat TEXT,
    error     TEXT
  ) WITHOUT ROWID;
  -- Blobs known to be in the store (stored by this node, or named by a committed record),
  -- so publishing needs no HEAD request per file.
  CREATE TABLE blobs (
    digest    TEXT PRIMARY KEY,
    stored_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  -- Concurrent live versions of a path that no record has superseded yet (JSON array of
  -- records with their own vectors); NULL when the entry alone says it all.
  ALTER TABLE files ADD COLUMN versions TEXT;
  `,
  `
  -- Housekeeping leader's cache of the blob digests each journal segment names (segments
  -- are immutable, so each is read once for garbage collection).
  CREATE TABLE segment_digests (
    key     TEXT PRIMARY KEY,
    digests TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  -- A remote state being put in place: noted just before the rename, cleared once the
  -- entry is recorded. Left behind by a crash in between, it tells the next scan that the
  -- file on disk is that state, not a local change.
  CREATE TABLE applying (
    path  TEXT PRIMARY KEY,
    entry TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  -- Whether the entry is on this node's disk. The entry is always the federation's state
  -- of the path; NULL here means it is placed (the disk holds it, "stat" is its stat).
  -- 'excluded': this node's exclude keeps the path out; kept, never placed. 'wanted': not
  -- placed yet (DESIGN rule 7), retried from retry_at; "base" is what this node last
  -- placed at the path (JSON entry with its stat and whether it lost a conflict; NULL when
  -- nothing), the version any local change there was made on.
  ALTER TABLE files ADD COLUMN absent TEXT;
  ALTER TABLE files ADD COLUMN base TEXT;
  ALTER TABLE files ADD COLUMN wanted_since INTEGER;
  ALTER TABLE files ADD COLUMN retry_at INTEGER;
  ALTER TABLE files ADD COLUMN tries INTEGER;
  ALTER TABLE files ADD COLUMN reason TEXT;
  CREATE INDEX files_absent ON files (absent) WHERE absent IS NOT NULL;
  `,
  `
  -- Paths on this node's disk that it does not publish because receivers would refuse them
  -- (DESIGN rule 8): warned about once, listed in status. "seen" is the scan that last
  -- found the path; a scan of its subtree that no longer finds it drops the row.
  CREATE TABLE skipped (
    path   TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since  INTEGER NOT NULL,
    seen   INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  -- Digests of files a scan hashed but did not record (its cycle was refused by the
  -- max-delete rail): the next scan takes a file's digest from here while its stat is the
  -- one it was hashed with, as it trusts the stat of recorded files.
  CREATE TABLE kept_hashes (
    path   TEXT PRIMARY KEY,
    stat   TEXT NOT NULL,
    digest TEXT NOT NULL,
    size   INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
];
