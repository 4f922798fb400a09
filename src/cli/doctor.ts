import { loadConfig } from '../config/load.js';
import { ConfigError } from '../config/types.js';
import { formatResult, nodeChecks, runChecks, setChecks } from '../ops/doctor/index.js';
import { EXIT, print, selectSets, type GlobalOptions } from './common.js';

/**
 * `fedsync doctor`: checks the config, this node and every set (store access, clock, root,
 * marker, disk, manifest, permissions, inotify). Exit 0 when nothing failed (warnings
 * allowed), 1 otherwise.
 */
export async function doctorCommand(opts: GlobalOptions & { set?: string }): Promise<number> {
  const tty = Boolean(process.stdout.isTTY);
  let config;
  try {
    config = loadConfig(opts.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    print(formatResult({ scope: 'node', name: 'config' }, { verdict: 'fail', detail: err.message, fix: 'correct the file (README.md lists every key)' }, tty));
    return EXIT.failed;
  }
  const sets = selectSets(config, opts.set);
  print(formatResult({ scope: 'node', name: 'config' }, { verdict: 'ok', detail: `${config.file}: node ${config.node}, ${config.sets.length} set(s)` }, tty));
  const checks = [...nodeChecks(config, sets), ...sets.flatMap((s) => setChecks(config, s))];
  return (await runChecks(checks, print, tty)) ? EXIT.ok : EXIT.failed;
}
