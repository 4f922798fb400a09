import { loadConfig } from '../config/load.js';
import type { Config, SetConfig } from '../config/types.js';
import { createLogger, type RootLogger } from '../log/logger.js';

/** Exit codes: 1 a command failed, 2 bad configuration or usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** An error meant for the user: printed as one line, with its exit code. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

export interface GlobalOptions {
  config?: string;
}

export function setup(opts: GlobalOptions): { config: Config; log: RootLogger } {
  const config = loadConfig(opts.config);
  const log = createLogger({ file: config.logFile, level: config.logLevel, pretty: process.stderr.isTTY });
  return { config, log };
}

/** The sets a command acts on: the named one, or every set of the given mode (all when unset). */
export function selectSets(config: Config, name: string | undefined, mode?: SetConfig['mode']): SetConfig[] {
  if (name !== undefined) {
    const set = config.sets.find((s) => s.name === name);
    if (!set) throw new UserError(`no sync set named "${name}" in ${config.file} (sets: ${config.sets.map((s) => s.name).join(', ')})`, EXIT.usage);
    return [set];
  }
  return mode ? config.sets.filter((s) => s.mode === mode) : config.sets;
}

export function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}
