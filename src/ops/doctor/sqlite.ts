import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { isUnwritable, probeWritable, unwritableAdvice } from '../../fsutil/state-error.js';
import { manifestPath } from '../../sync/node.js';
import { fail, ok, why, type CheckResult } from './check.js';

/** `PRAGMA integrity_check` on the set's manifest, opened read-only (safe beside a running cycle). */
export function manifestIntegrity(stateDir: string, set: string): CheckResult {
  const file = manifestPath(stateDir, set);
  if (!existsSync(file)) return fail(`${file} does not exist`, `run \`fedsync init --set ${set}\``);
  const fix =
    `stop fedsync for this set, move ${file} aside and run \`fedsync init --set ${set}\`: the node rejoins under a new id ` +
    'and adopts the files that match the federation (differing ones are handled as `adopt` says)';
  let db: Database.Database | null = null;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    const problems = rows.map((r) => r.integrity_check).filter((m) => m !== 'ok');
    if (problems.length > 0) return fail(`${file} is damaged: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`, fix);
    return ok(`${file}: integrity ok`);
  } catch (err) {
    return unreadable(file, err, fix);
  } finally {
    db?.close();
  }
}

/**
 * A manifest SQLite cannot open is damaged only when SQLite says so (SQLITE_CORRUPT,
 * SQLITE_NOTADB): then rejoining is the way back. Otherwise the file system is the suspect
 * (a read-only or full state dir, an immutable directory: a read-only open of a WAL database
 * still needs to create its -shm file), and deleting the manifest would only lose state.
 */
function unreadable(file: string, err: unknown, rejoin: string): CheckResult {
  const code = (err as { code?: string }).code ?? '';
  if (/^SQLITE_(CORRUPT|NOTADB)/.test(code)) return fail(`${file} is damaged (${code}): ${why(err)}`, rejoin);
  const dir = dirname(file);
  const refused = (probeWritable(dir) as { code?: string } | null)?.code ?? (isUnwritable(err) ? code : null);
  if (refused !== null) {
    return fail(`${file} cannot be opened (${code || why(err)}): ${dir} refuses writes (${refused})`, `${unwritableAdvice(refused, dir)}; the manifest is not known to be damaged: keep it`);
  }
  return fail(`${file} cannot be read as a database: ${why(err)}`, rejoin);
}
