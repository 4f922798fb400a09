import type { Manifest } from './manifest.js';

/** A path found on disk and not published: receivers would refuse its record (DESIGN rule 8). */
export interface SkippedPath {
  path: string;
  reason: string;
  /** When it was first found (ms). */
  since: number;
}

/**
 * Records what one scan skipped, within the scan's scope (`roots`: the subtrees it walked,
 * undefined for the whole tree): new paths are added, known ones kept with their first date,
 * and those of the scope the scan no longer found (renamed, deleted, fixed) are dropped.
 * Returns the paths new to the list: the ones to warn about, once.
 */
export function noteSkipped(m: Manifest, found: { path: string; reason: string }[], roots: string[] | undefined, now = Date.now()): SkippedPath[] {
  const added: SkippedPath[] = [];
  const get = m.db.prepare<[string], { reason: string }>('SELECT reason FROM skipped WHERE path = ?');
  const put = m.db.prepare('INSERT INTO skipped (path, reason, since, seen) VALUES (?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET reason = excluded.reason, seen = excluded.seen');
  // A scan's id: later than any earlier one, even within one millisecond.
  const last = m.db.prepare<[], { seen: number | null }>('SELECT max(seen) AS seen FROM skipped').get()?.seen ?? 0;
  const gen = Math.max(now, last + 1);
  m.transaction(() => {
    for (const f of found) {
      const known = get.get(f.path);
      if (!known || known.reason !== f.reason) added.push({ path: f.path, reason: f.reason, since: now });
      put.run(f.path, f.reason, now, gen);
    }
    if (!roots || roots.includes('')) m.db.prepare('DELETE FROM skipped WHERE seen < ?').run(gen);
    else {
      // A path and everything below it: '0' is the character after '/'.
      const del = m.db.prepare('DELETE FROM skipped WHERE seen < ? AND (path = ? OR (path >= ? AND path < ?))');
      for (const r of roots) del.run(gen, r, `${r}/`, `${r}0`);
    }
  });
  return added;
}

/** How many paths are skipped, and the first `limit` of them in path order. */
export function skippedSummary(m: Manifest, limit: number): { count: number; paths: SkippedPath[] } {
  const count = m.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM skipped').get()?.n ?? 0;
  const paths = m.db.prepare<[number], SkippedPath>('SELECT path, reason, since FROM skipped ORDER BY path LIMIT ?').all(limit);
  return { count, paths };
}
