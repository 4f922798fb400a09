import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { isUnwritable, stateFileError } from '../fsutil/state-error.js';

/**
 * An exclusive lock held for the life of a cycle: an exclusive SQLite transaction on a
 * small file. SQLite takes it with a POSIX record lock, which the kernel releases when the
 * process dies, so a killed run never leaves a stale lock behind.
 */
export class Lock {
  private constructor(private readonly db: Database.Database) {}

  /** The lock, or null when another process holds it. */
  static tryAcquire(file: string): Lock | null {
    let db: Database.Database;
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      db = new Database(file, { timeout: 0 });
    } catch (err) {
      throw isUnwritable(err) ? stateFileError(file, 'open', err) : err;
    }
    try {
      db.pragma('journal_mode = DELETE');
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      return new Lock(db);
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') return null;
      throw isUnwritable(err) ? stateFileError(file, 'open', err) : err;
    }
  }

  release(): void {
    this.db.exec('ROLLBACK');
    this.db.close();
  }
}
