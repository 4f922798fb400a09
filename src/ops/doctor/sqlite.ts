import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
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
    return fail(`${file} cannot be read as a database: ${why(err)}`, fix);
  } finally {
    db?.close();
  }
}
