/**
 * `fedsync doctor`: every check that tells a node set up right from one that will fail at
 * night, one line each, with the fix when it does not pass.
 */
import type { Config, SetConfig } from '../../config/types.js';
import type { Store } from '../../store/index.js';
import type { Check, CheckResult, Verdict } from './check.js';
import { why } from './check.js';
import { clockSkew } from './clock.js';
import { freeSpace } from './disk.js';
import { inotifyWatches } from './inotify.js';
import { logFile } from './logfile.js';
import { skippedPaths } from './names.js';
import { passphrase } from './passphrase.js';
import { owner, rootDir, rootMarker } from './root.js';
import { scheduled } from './schedule.js';
import { manifestIntegrity } from './sqlite.js';
import { stateDirPermissions } from './statedir.js';
import { probeStore, storeFormat, storeReadWrite } from './store.js';

export type { Check, CheckResult, Verdict } from './check.js';

export function nodeChecks(config: Config, sets: SetConfig[]): Check[] {
  return [
    { scope: 'node', name: 'state dir', run: () => stateDirPermissions(config.stateDir, sets.map((s) => s.name)) },
    { scope: 'node', name: 'disk', run: () => freeSpace(config.stateDir, 'state dir') },
    { scope: 'node', name: 'log file', run: () => logFile(config.logFile) },
    { scope: 'node', name: 'clock', run: () => clockSkew(config.store) },
    { scope: 'node', name: 'schedule', run: () => scheduled(config) },
  ];
}

/** The checks of one set; the store ones share one client, closed by the last. */
export function setChecks(config: Config, set: SetConfig): Check[] {
  let store: Store | null = null;
  const open = () => (store ??= probeStore(config, set));
  // format.json as the federation check read it, for the passphrase check after it.
  let format: Buffer | null = null;
  const remembering = (s: Store) => ({ location: s.location, get: async (key: string) => (format = await s.get(key)) });
  const checks: Check[] = [
    { scope: set.name, name: 'root', run: () => rootDir(set) },
    { scope: set.name, name: 'marker', run: () => rootMarker(set) },
    { scope: set.name, name: 'owner', run: () => owner(set) },
    { scope: set.name, name: 'disk', run: () => freeSpace(set.path, 'root') },
    { scope: set.name, name: 'manifest', run: () => manifestIntegrity(config.stateDir, set.name) },
    { scope: set.name, name: 'names', run: () => skippedPaths(config.stateDir, set.name) },
    { scope: set.name, name: 'store', run: () => storeReadWrite(open()) },
    {
      scope: set.name,
      name: 'federation',
      run: async () => {
        try {
          return await storeFormat(remembering(open()), { stateDir: config.stateDir, set: set.name });
        } finally {
          await store?.close();
        }
      },
    },
    { scope: set.name, name: 'passphrase', run: () => passphrase(config.store, open().location, format) },
  ];
  if (set.mode === 'lightweight') checks.push({ scope: set.name, name: 'inotify', run: () => inotifyWatches(set) });
  return checks;
}

const MARKS: Record<Verdict, [tty: string, plain: string]> = {
  ok: ['\x1b[32m✓\x1b[0m', 'ok  '],
  warn: ['\x1b[33m!\x1b[0m', 'WARN'],
  fail: ['\x1b[31m✗\x1b[0m', 'FAIL'],
  skip: ['-', 'skip'],
};

export function formatResult(check: { scope: string; name: string }, r: CheckResult, tty: boolean): string {
  const fix = r.fix && r.verdict !== 'ok' ? ` -- fix: ${r.fix}` : '';
  let mark = MARKS[r.verdict][tty ? 0 : 1];
  if (process.env.NO_COLOR) mark = mark.replace(/\x1b\[\d+m/g, '');
  return `${mark} ${check.scope}: ${check.name}: ${r.detail}${fix}`;
}

/** Runs the checks in order, printing each line as it finishes; true when none failed. */
export async function runChecks(checks: Check[], print: (line: string) => void, tty: boolean): Promise<boolean> {
  let passed = true;
  for (const c of checks) {
    let r: CheckResult;
    try {
      r = await c.run();
    } catch (err) {
      r = { verdict: 'fail', detail: `the check itself failed: ${why(err)}` };
    }
    if (r.verdict === 'fail') passed = false;
    print(formatResult(c, r, tty));
  }
  return passed;
}
