/**
 * Reading the TOML configuration: which file, TOML syntax, then the schema (schema.ts).
 * Every problem ends up as one `ConfigError` whose message names the file and the key path
 * (`sync[0].delay`; arrays of tables are counted from 0).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { checkPaths, HOMES, TOP } from './schema.js';
import { Problem, readTable } from './table.js';
import type { Config } from './types.js';
import { ConfigError } from './types.js';

export const DEFAULT_CONFIG_PATH = '/etc/fedsync/fedsync.toml';
export const CONFIG_ENV = 'FEDSYNC_CONFIG';

/** The config file to read: `-c` (made absolute), else `$FEDSYNC_CONFIG`, else the default. */
export function resolveConfigPath(path?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = path || env[CONFIG_ENV] || DEFAULT_CONFIG_PATH;
  return resolve(chosen);
}

/** Reads and validates the config file chosen by {@link resolveConfigPath}. */
export function loadConfig(path?: string): Config {
  const file = resolveConfigPath(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') {
      throw new ConfigError(
        `${file}: config file does not exist; create it first (every command, fedsync init ` +
          `included, needs one: see "Configuration" in README.md for an example), or name another ` +
          `with -c FILE or $${CONFIG_ENV}`,
        file,
      );
    }
    throw new ConfigError(`${file}: cannot read config file: ${err.message}`, file);
  }
  return parseConfig(text, file);
}

/** Validates the TOML `text` of the config file `file` (used in messages and `Config.file`). */
export function parseConfig(text: string, file: string): Config {
  let raw: Record<string, unknown>;
  try {
    raw = parse(text, { unsafeKeyBehaviour: 'throw' });
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const what = e.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '');
    throw new ConfigError(`${file}:${e.line}:${e.column}: TOML syntax error: ${what}`, file);
  }
  try {
    const top = readTable(raw, TOP, '', HOMES);
    const config: Config = { file, ...top };
    checkPaths(config);
    return config;
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    const where = e.key && !e.inMessage ? `${e.key}: ` : '';
    throw new ConfigError(`${file}: ${where}${e.message}`, file, e.key);
  }
}
