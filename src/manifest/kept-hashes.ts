import type { Statement } from 'better-sqlite3';
import type { Manifest } from './manifest.js';

/**
 * The manifest's side of the max-delete rail (DESIGN rule 5): how many files and symlinks
 * are live (directories are not counted), and the digests a refused cycle computed but
 * could not record, so that nothing already hashed is hashed again while the refusal stands.
 */
interface Statements {
  liveFiles: Statement<[], { n: number }>;
  get: Statement<[string, string], { digest: string; size: number }>;
  put: Statement<[string, string, string, number]>;
  any: Statement<[], { n: number }>;
  clear: Statement<[]>;
}

const prepared = new WeakMap<Manifest, Statements>();

function st(m: Manifest): Statements {
  let s = prepared.get(m);
  if (!s) {
    s = {
      liveFiles: m.db.prepare("SELECT count(*) AS n FROM files WHERE kind IN ('file', 'symlink') AND absent IS NULL"),
      get: m.db.prepare('SELECT digest, size FROM kept_hashes WHERE path = ? AND stat = ?'),
      put: m.db.prepare('INSERT INTO kept_hashes (path, stat, digest, size) VALUES (?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET stat = excluded.stat, digest = excluded.digest, size = excluded.size'),
      any: m.db.prepare('SELECT count(*) AS n FROM (SELECT 1 FROM kept_hashes LIMIT 1)'),
      clear: m.db.prepare('DELETE FROM kept_hashes'),
    };
    prepared.set(m, s);
  }
  return s;
}

/** Files and symlinks placed on this disk: the base of the max-delete rail. */
export function liveFiles(m: Manifest): number {
  return st(m).liveFiles.get()!.n;
}

/**
 * Looks up the digest kept for a file whose stat is still `stat`; null when none is kept
 * (almost always: a scan then makes no lookup per file).
 */
export function keptHashes(m: Manifest): ((path: string, stat: string) => { digest: string; size: number } | undefined) | null {
  const s = st(m);
  if (s.any.get()!.n === 0) return null;
  return (path, stat) => s.get.get(path, stat);
}

/** Keeps the digests of hashed files a refused cycle did not record. */
export function keepHashes(m: Manifest, files: { path: string; stat: string; digest: string; size: number }[]): void {
  const s = st(m);
  m.transaction(() => {
    for (const f of files) s.put.run(f.path, f.stat, f.digest, f.size);
  });
}

/** Once a scan is recorded its files' stats are in their entries: the kept digests go. */
export function dropKeptHashes(m: Manifest): void {
  const s = st(m);
  if (s.any.get()!.n > 0) s.clear.run();
}
