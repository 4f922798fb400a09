import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fail, ok, type CheckResult } from './check.js';

/**
 * The state dir holds every set's manifest (all paths, node ids) and status. Others may
 * traverse it (0711, so node_exporter can read fedsync.prom by name) but never list or write
 * it; each set's directory inside is 0700.
 */
export function stateDirPermissions(stateDir: string, sets: string[]): CheckResult {
  if (!existsSync(stateDir)) return fail(`${stateDir} does not exist`, 'run `fedsync init`');
  const st = statSync(stateDir);
  if (!st.isDirectory()) return fail(`${stateDir} is not a directory`, 'set state_dir to a directory');
  const problems: string[] = [];
  const fixes: string[] = [];
  if (st.mode & 0o066) {
    problems.push(`${stateDir} is mode ${mode(st.mode)}`);
    fixes.push(`chmod 0700 ${stateDir} (or 0711 to let node_exporter read fedsync.prom)`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) problems.push(`${stateDir} belongs to uid ${st.uid}, fedsync runs as ${uid}`);
  for (const set of sets) {
    const dir = join(stateDir, set);
    if (!existsSync(dir)) continue; // the manifest check says so
    const s = statSync(dir);
    if (s.mode & 0o077) {
      problems.push(`${dir} is mode ${mode(s.mode)}`);
      fixes.push(`chmod 0700 ${dir}`);
    }
    if (uid !== undefined && s.uid !== uid) problems.push(`${dir} belongs to uid ${s.uid}, fedsync runs as ${uid}`);
  }
  if (uid !== undefined && problems.some((p) => p.includes('belongs to'))) fixes.push(`chown -R ${uid} ${stateDir}, or run fedsync as its owner`);
  if (problems.length > 0) return fail(problems.join('; '), fixes.join('; '));
  return ok(`${stateDir} is ${mode(st.mode)}, set directories 0700`);
}

const mode = (m: number) => `0${(m & 0o777).toString(8)}`;
